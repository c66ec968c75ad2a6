//! The load routes: idle streams counted per connection and HTTP version, broadcasts that reach
//! every stream with a CLOCK_MONOTONIC stamp, steady-rate streams, and the bounds.

mod common;

use std::time::Duration;

use common::client;
use testserver::{Options, Server, monotonic_ns};

/// The `(seq, t)` of every complete `data: {"seq":S,"t":T}` line in `text` (a read can end
/// inside a line: that one is not counted until its end comes).
fn events(text: &str) -> Vec<(u64, u64)> {
    text.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .filter_map(|l| l.strip_prefix("data: {\"seq\":"))
        .map(|l| {
            let (seq, rest) = l.split_once(",\"t\":").expect("seq then t");
            (seq.parse().unwrap(), rest.trim_end_matches('}').parse().unwrap())
        })
        .collect()
}

/// A number field of the flat JSON `text`, e.g. `field(&stats, "open_streams")`.
fn field(text: &str, name: &str) -> u64 {
    let at = text.find(&format!("\"{name}\":")).unwrap_or_else(|| panic!("{name} in {text}"));
    let rest = &text[at + name.len() + 3..];
    rest[..rest.find(|c: char| !c.is_ascii_digit()).unwrap()].parse().unwrap()
}

async fn stats(c: &reqwest::Client, s: &Server) -> String {
    c.get(s.url("load/stats")).send().await.unwrap().text().await.unwrap()
}

/// Polls the stats until `open_streams` is `want` (or 10 s pass), and returns them.
async fn stats_when_open(c: &reqwest::Client, s: &Server, want: u64) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = stats(c, s).await;
        if field(&text, "open_streams") == want || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads `resp` until it holds `n` events (or 10 s pass).
async fn read_events(resp: &mut reqwest::Response, n: usize) -> Vec<(u64, u64)> {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events(&text).len() < n {
        match tokio::time::timeout_at(deadline, resp.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(std::str::from_utf8(&chunk).unwrap()),
            _ => break,
        }
    }
    events(&text)
}

#[tokio::test]
async fn broadcast_reaches_every_idle_stream_over_both_versions() {
    let s = Server::start();
    let h1 = client(&s).http1_only().build().unwrap();
    let h2 = client(&s).http2_prior_knowledge().build().unwrap();
    let mut streams = Vec::new();
    for c in [&h1, &h1, &h1, &h2, &h2] {
        // The head arrives although no event was written.
        let r = c.get(s.url("load/stream")).send().await.unwrap();
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        streams.push(r);
    }
    let text = stats(&h1, &s).await;
    assert_eq!(field(&text, "open_streams"), 5, "{text}");
    assert_eq!((field(&text, "http1"), field(&text, "http2")), (3, 1), "{text}");
    assert_eq!(field(&text, "broadcasts"), 0, "{text}");

    let before = monotonic_ns();
    let r = h1.post(s.url("load/broadcast?n=2")).send().await.unwrap().text().await.unwrap();
    assert_eq!(r, "{\"seq\":2,\"streams\":5}\n");
    for resp in &mut streams {
        let got = read_events(resp, 2).await;
        let after = monotonic_ns();
        assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2]);
        assert!(got.iter().all(|&(_, t)| before <= t && t <= after), "{got:?} {before} {after}");
    }

    // A stream opened later gets only the broadcasts after it.
    let mut late = h1.get(s.url("load/stream")).send().await.unwrap();
    h1.post(s.url("load/broadcast")).send().await.unwrap();
    assert_eq!(read_events(&mut late, 1).await.iter().map(|e| e.0).collect::<Vec<_>>(), [3]);

    // Closed streams are no longer counted, nor their connections.
    drop(streams);
    drop(late);
    let text = stats_when_open(&h1, &s, 0).await;
    assert_eq!(field(&text, "open_streams"), 0, "{text}");
    assert_eq!((field(&text, "http1"), field(&text, "http2")), (0, 0), "{text}");
    assert_eq!((field(&text, "opened"), field(&text, "broadcasts")), (6, 3), "{text}");
}

#[tokio::test]
async fn paced_broadcasts_come_one_at_a_time() {
    let s = Server::start_with(Options::new().threads(2)).unwrap();
    let c = client(&s).http1_only().build().unwrap();
    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(c.get(s.url("load/stream")).send().await.unwrap());
    }
    // Written as fast as the streams take them, one event per write.
    let r = c.post(s.url("load/broadcast?n=200&paced=1")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "{\"seq\":200,\"streams\":3}\n");
    for resp in &mut streams {
        let got = read_events(resp, 200).await;
        assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), (1..=200).collect::<Vec<_>>());
    }
    // 20 ms apart: event i is not written before i * 20 ms after the request (a lower bound:
    // a busy machine may write later, never sooner).
    let before = monotonic_ns();
    c.post(s.url("load/broadcast?n=4&every_us=20000")).send().await.unwrap();
    for resp in &mut streams {
        let got = read_events(resp, 4).await;
        assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), [201, 202, 203, 204]);
        for (i, &(_, t)) in got.iter().enumerate() {
            assert!(t >= before + i as u64 * 20_000_000, "{i}: {got:?} {before}");
        }
    }
}

#[tokio::test]
async fn rate_stream_sends_count_events_no_sooner_than_due() {
    let s = Server::start();
    let c = client(&s).build().unwrap();
    let mut r = c.get(s.url("load/rate?hz=100&count=20")).send().await.unwrap();
    let got = read_events(&mut r, 20).await;
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), (1..=20).collect::<Vec<_>>());
    assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "stamps never go back: {got:?}");
    // Event 20 is due 190 ms after event 1: the pacing may run late on a busy machine, never
    // early (a lower bound only).
    assert!(got[19].1 - got[0].1 >= 185_000_000, "{got:?}");
    assert!(r.chunk().await.unwrap().is_none(), "the stream ends after `count` events");
    assert_eq!(field(&stats(&c, &s).await, "rate_streams"), 0);
}

#[tokio::test]
async fn load_streams_are_bounded_in_number_and_time() {
    let s = Server::start_with(Options::new().max_load_streams(2).max_load_secs(2)).unwrap();
    let c = client(&s).http1_only().build().unwrap();
    let a = c.get(s.url("load/stream")).send().await.unwrap();
    let b = c.get(s.url("load/rate?hz=1&count=0")).send().await.unwrap();
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let text = stats(&c, &s).await;
    assert_eq!((field(&text, "open_streams"), field(&text, "rate_streams")), (1, 1), "{text}");
    for path in ["load/stream", "load/rate"] {
        let r = c.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert!(r.text().await.unwrap().contains("at most 2"));
    }
    // Both end by themselves at the server's bound, though `secs` asks for more.
    let (a, b) = (a.text(), b.text());
    let (a, b) = tokio::time::timeout(Duration::from_secs(20), async { (a.await, b.await) })
        .await
        .expect("the streams end at the time bound");
    assert_eq!(a.unwrap(), "");
    assert!(events(&b.unwrap()).len() >= 2);
    let mut short = c.get(s.url("load/stream?secs=1")).send().await.unwrap();
    let t0 = std::time::Instant::now();
    assert!(short.chunk().await.unwrap().is_none());
    assert!(t0.elapsed() >= Duration::from_millis(900), "secs=1 holds the stream a second");
    assert_eq!(field(&stats_when_open(&c, &s, 0).await, "rate_streams"), 0);
}

#[tokio::test]
async fn bad_load_requests_are_refused_clearly() {
    let s = Server::start();
    let c = client(&s).build().unwrap();
    let r = c.get(s.url("load/broadcast")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.text().await.unwrap().contains("POST"));
    for hz in ["0", "-3", "abc", "1e9"] {
        let r = c.get(s.url(&format!("load/rate?hz={hz}"))).send().await.unwrap();
        assert_eq!(r.status(), 400, "hz={hz}");
    }
    let text = stats(&c, &s).await;
    assert_eq!(field(&text, "max_streams"), testserver::DEFAULT_MAX_STREAMS as u64);
    assert_eq!(field(&text, "max_secs"), testserver::DEFAULT_MAX_SECS);
}
