//! `/resume`: numbered events resumed after `Last-Event-ID`, connections cut at seeded points.
//! Checked on the wire with a plain client that reconnects the way a conforming one does.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::get;
use testserver::Server;

/// How a response ended on the wire.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum End {
    /// The chunked terminator came.
    Clean,
    /// EOF without the terminator.
    Cut,
    /// A TCP RST.
    Reset,
}

/// One GET with an optional `Last-Event-ID`: the status, the decoded body and how it ended.
fn fetch(port: u16, target: &str, last_event_id: Option<&str>) -> (u16, Vec<u8>, End) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let id = last_event_id.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
    write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{id}\r\n").unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let reset = loop {
        match s.read(&mut buf) {
            Ok(0) => break false,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break true,
            Err(e) => panic!("{e}"),
        }
    };
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head") + 4;
    let status = String::from_utf8_lossy(&raw[9..12]).parse().unwrap();
    // De-chunk what came; a cut may leave a partial chunk (its bytes still count).
    let mut body = Vec::new();
    let mut rest = &raw[head_end..];
    let mut terminated = false;
    while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        if size == 0 {
            terminated = true;
            break;
        }
        let data = &rest[eol + 2..];
        body.extend_from_slice(&data[..size.min(data.len())]);
        rest = &data[(size + 2).min(data.len())..];
    }
    let end = match (terminated, reset) {
        (true, _) => End::Clean,
        (false, true) => End::Reset,
        (false, false) => End::Cut,
    };
    (status, body, end)
}

/// The complete events of a body (a partial one at the end is dropped, as a client does):
/// `(id, data)` pairs.
fn events(body: &[u8]) -> Vec<(u64, String)> {
    let text = String::from_utf8_lossy(body);
    let complete = match text.rfind("\n\n") {
        Some(i) => &text[..i + 2],
        None => "",
    };
    complete
        .split("\n\n")
        .filter_map(|block| {
            let mut id = None;
            let mut data = None;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().ok();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = Some(v.to_owned());
                }
            }
            Some((id?, data?))
        })
        .collect()
}

#[test]
fn without_drops_it_is_every_event_then_204() {
    let s = Server::start();
    let (status, body, end) = fetch(s.port(), "/resume?t=a&count=5&drops=0&retry=7", None);
    assert_eq!((status, end), (200, End::Clean));
    assert!(body.starts_with(b"retry: 7\nid: 1\ndata: 1 \xC3\xA9\xF0\x9F\x98\x80\n\n"));
    let evs = events(&body);
    assert_eq!(evs.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(evs[4].1, "5 é😀");
    let (_, body, _) = fetch(s.port(), "/resume?t=a&count=5&drops=0", Some("3"));
    assert_eq!(events(&body).iter().map(|e| e.0).collect::<Vec<_>>(), [4, 5]);
    assert_eq!(fetch(s.port(), "/resume?t=a&count=5&drops=0", Some("5")).0, 204);
    assert_eq!(fetch(s.port(), "/resume?t=a&count=5&drops=0", Some("9")).0, 204);
}

#[test]
fn bad_requests_say_why() {
    let s = Server::start();
    let r = get(s.port(), "/resume?count=5");
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("needs ?t=TOKEN"));
    let (status, body, _) = fetch(s.port(), "/resume?t=b&count=5", Some("x1"));
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("\"x1\" is not an id"));
}

#[test]
fn a_resuming_client_gets_every_event_once_across_every_kind_of_cut() {
    let s = Server::start();
    let (count, drops) = (2000, 40);
    let target = format!("/resume?t=c&count={count}&drops={drops}&seed=5");
    let mut last: Option<u64> = None;
    let mut got = Vec::new();
    let mut ends = Vec::new();
    let mut partial_cuts = 0;
    let mut utf8_cuts = 0;
    loop {
        let id = last.map(|n| n.to_string());
        let (status, body, end) = fetch(s.port(), &target, id.as_deref());
        if status == 204 {
            break;
        }
        assert_eq!(status, 200);
        let evs = events(&body);
        let tail_len =
            body.len() - body.windows(2).rposition(|w| w == b"\n\n").map_or(0, |i| i + 2);
        partial_cuts += usize::from(tail_len > 0);
        utf8_cuts += usize::from(std::str::from_utf8(&body).is_err());
        for (id, data) in evs {
            assert_eq!(data, format!("{id} é😀"));
            got.push(id);
            last = Some(id);
        }
        ends.push(end);
        assert!(ends.len() <= drops + 1, "more connections than drops + 1");
    }
    assert_eq!(got, (1..=count).collect::<Vec<u64>>(), "every id once, in order");
    assert_eq!(ends.len(), drops + 1);
    assert_eq!(ends.last(), Some(&End::Clean), "the last connection ends cleanly");
    let cut_ends = &ends[..drops];
    for kind in [End::Clean, End::Cut, End::Reset] {
        assert!(cut_ends.contains(&kind), "no {kind:?} among the drops: {cut_ends:?}");
    }
    assert!(partial_cuts >= drops / 2, "{partial_cuts} cuts inside an event");
    assert!(utf8_cuts > 0, "no cut inside a UTF-8 sequence");
    // One more try with the last id: 204.
    assert_eq!(fetch(s.port(), &target, Some(&count.to_string())).0, 204);
}

#[test]
fn lingering_connections_wait_before_their_cut() {
    let s = Server::start();
    let target = "/resume?t=d&count=100&drops=2&linger=1000&every=2";
    let start = std::time::Instant::now();
    let (_, body, _) = fetch(s.port(), target, None);
    assert!(start.elapsed() < Duration::from_millis(1000), "connection 1 does not linger");
    let last = events(&body).last().map(|e| e.0.to_string());
    let start = std::time::Instant::now();
    fetch(s.port(), target, last.as_deref());
    assert!(start.elapsed() >= Duration::from_millis(1000), "connection 2 lingers");
}
