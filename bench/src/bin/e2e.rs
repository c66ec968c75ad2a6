//! Loopback end-to-end benchmark: testserver → client, ours against the peers.
//!
//!     cargo build --release -p testserver
//!     cargo run --profile bench -p eventsource-bench --bin e2e [-- --runs 5 --idle 5000]
//!
//! Clients, each counting the messages of one `/stream` response until N:
//! - `ours/push`: `EventSource::with_handler` (callbacks on the library's runtime thread), on
//!   the lean transport (the built-in HTTP/1.1 client)
//! - `ours/pull`: `EventSource::with_options` drained with `try_recv_many(8192)`, blocking in
//!   `recv_timeout` only when nothing is queued (lean transport)
//! - `ours/stream`: the same source consumed one event at a time through its `futures::Stream`
//!   (`StreamExt::next().await` on a 2-worker tokio runtime) (lean transport)
//! - `ours/recv`: the same source consumed one event at a time with blocking `recv_timeout`
//!   (lean transport)
//! - `default/push`, `default/pull`: push and pull on the default transport (reqwest, over
//!   HTTP/1.1 here)
//! - `sse-stream/reqwest`: reqwest 0.12 body → `sse_stream::SseStream` (a parser, no
//!   EventSource), consumed in a task spawned on a 2-worker runtime: its best configuration
//!   (consumed from a thread outside the runtime, as `block_on` does, every chunk wakes that
//!   thread: several µs per event)
//! - `reqwest-eventsource`: reqwest 0.12 + `eventsource-stream` (an EventSource-like client),
//!   likewise in a spawned task
//!
//! The testserver runs as its own process, so its CPU is not counted in the client's; the
//! client's CPU is the whole process's (every thread) from `getrusage`. The server's CPU per
//! event is shown beside it (its threads' `schedstat`): on a 2-core machine the two share the
//! cores, so the server's cost bounds what any client's speed can show in events/s. Runs
//! alternate between clients; the best run of each is quoted (a shared 2-core machine is noisy:
//! the best run is the least disturbed).
//! `--clients a,b` keeps only the clients whose names contain one of the words (the
//! `sse-stream/reqwest` baseline always runs: the ratios are against it; `--no-peer` leaves it
//! out too, for profiling one client).
//! `--idle K` also measures the resident memory of K idle open sources: ours on each transport
//! (HTTP/1.1, HTTP/2 multiplexed to one origin, HTTPS) and reqwest-eventsource.
//! `--scale F` multiplies every workload's event count (a quick run); `--json PATH` also writes
//! the rows and the idle figures as one JSON object (for bench/report).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use eventsource_bench::{cpu_seconds, json_string};
use eventsource_core::{Event, EventSource, Options, Recv, TransportKind};
use futures::StreamExt;

struct Workload {
    name: &'static str,
    query: &'static str,
    events: u64,
}

const WORKLOADS: &[Workload] = &[
    Workload { name: "small (16 B), 16 KiB writes", query: "size=16", events: 2_000_000 },
    Workload { name: "LLM token (64 B), 16 KiB writes", query: "size=64", events: 1_000_000 },
    Workload { name: "1 KB JSON, 16 KiB writes", query: "size=1024", events: 300_000 },
    Workload { name: "small, one write per event", query: "size=16&chunk=event", events: 300_000 },
    Workload {
        name: "1 KB JSON, one write per event",
        query: "size=1024&chunk=event",
        events: 150_000,
    },
];

type Client = fn(&str, u64) -> u64;

const CLIENTS: &[(&str, Client)] = &[
    ("ours/push", ours_push),
    ("ours/pull", ours_pull),
    ("ours/stream", ours_stream),
    ("ours/recv", ours_recv),
    ("default/push", default_push),
    ("default/pull", default_pull),
    ("sse-stream/reqwest", sse_stream_reqwest),
    ("reqwest-eventsource", reqwest_eventsource),
];

fn main() {
    let mut runs = 3;
    let mut idle = 0usize;
    let mut filter = String::new();
    let mut only: Vec<String> = Vec::new();
    let mut no_peer = false;
    let mut scale = 1.0f64;
    let mut json: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--idle" => idle = args.next().and_then(|v| v.parse().ok()).expect("--idle K"),
            "--clients" => {
                let v = args.next().expect("--clients a,b");
                only = v.split(',').map(str::to_owned).collect();
            }
            "--no-peer" => no_peer = true,
            "--scale" => scale = args.next().and_then(|v| v.parse().ok()).expect("--scale F"),
            "--json" => json = Some(args.next().expect("--json PATH")),
            "--idle-one" => {
                let mut next = || args.next().expect("--idle-one KIND K URL");
                let (kind, k, url) = (next(), next(), next());
                raise_fd_limit();
                return idle_one(&kind, k.parse().expect("K"), &url);
            }
            "--bench" => {} // passed by `cargo bench`
            f => filter = f.to_owned(),
        }
    }
    raise_fd_limit();
    let peer_index = CLIENTS.iter().position(|(n, _)| *n == "sse-stream/reqwest").expect("peer");
    let selected: Vec<usize> = (0..CLIENTS.len())
        .filter(|&i| {
            let wanted = only.is_empty() || only.iter().any(|w| CLIENTS[i].0.contains(w.as_str()));
            if i == peer_index { !no_peer } else { wanted }
        })
        .collect();
    let server = TestServer::start();
    // The figures are only comparable within one run on a shared machine: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    println!("testserver at {}; best of {runs} runs per cell; load average {load}\n", server.base);
    let mut rows: Vec<String> = Vec::new();
    let mut idle_rows: Vec<String> = Vec::new();
    println!(
        "| workload | client | events/s | MB/s of data | CPU µs/event | server CPU µs/event | vs sse-stream/reqwest |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for w in WORKLOADS.iter().filter(|w| w.name.contains(&filter)) {
        let events = ((w.events as f64 * scale) as u64).max(1000);
        let url = format!("{}/stream?count={events}&{}", server.base, w.query);
        let mut best: Vec<Option<Sample>> = vec![None; CLIENTS.len()];
        for _ in 0..runs {
            for &i in &selected {
                let s = measure(CLIENTS[i].1, &url, events, &server);
                if best[i].as_ref().is_none_or(|b| s.secs < b.secs) {
                    best[i] = Some(s);
                }
            }
        }
        let peer = best[peer_index].as_ref().map(|s| s.secs).unwrap_or(f64::NAN);
        for &i in &selected {
            let name = CLIENTS[i].0;
            let s = best[i].as_ref().expect("measured");
            let (rate, mb_s) = (events as f64 / s.secs, s.bytes as f64 / s.secs / 1e6);
            let (cpu, server_cpu) =
                (s.cpu / events as f64 * 1e6, s.server_cpu / events as f64 * 1e6);
            println!(
                "| {} | {name} | {rate:.0} | {mb_s:.0} | {cpu:.3} | {server_cpu:.3} | {:.2}× |",
                w.name,
                peer / s.secs,
            );
            rows.push(format!(
                "{{\"workload\":{},\"query\":{},\"client\":{},\"events\":{events},\
                 \"events_per_s\":{rate:.1},\"mb_per_s\":{mb_s:.2},\"cpu_us_per_event\":{cpu:.4},\
                 \"server_cpu_us_per_event\":{server_cpu:.4}}}",
                json_string(w.name),
                json_string(w.query),
                json_string(name)
            ));
        }
    }
    if idle > 0 {
        println!("\n| idle open sources | client | RSS per source |\n|---|---|---:|");
        let url = format!("{}/stream?count=1&hold=1", server.base);
        for (kind, label) in [
            ("lean", "ours, lean"),
            ("default", "ours, default (HTTP/1.1)"),
            ("h2c", "ours, default (HTTP/2 to one origin, h2c)"),
            ("reqwest-eventsource", "reqwest-eventsource"),
        ] {
            let per = idle_in_a_fresh_process(kind, idle, &url);
            println!("| {idle} | {label} | {per} KiB |");
            idle_rows.push(idle_json(kind, label, idle, &per));
        }
        // Over TLS, through a TLS front in its own process (which holds two sockets a source:
        // half as many sources keep it under the open-files limit).
        let front = TestServer::tls_front(&server.base);
        let url = format!("{}/stream?count=1&hold=1", front.base);
        let k = idle / 2;
        for (kind, label) in
            [("lean-tls", "ours, lean, HTTPS"), ("default-tls", "ours, default, HTTPS")]
        {
            let per = idle_in_a_fresh_process(kind, k, &url);
            println!("| {k} | {label} | {per} KiB |");
            idle_rows.push(idle_json(kind, label, k, &per));
        }
    }
    if let Some(path) = json {
        let text = format!(
            "{{\"command\":{},\"loadavg\":{},\"runs\":{runs},\"scale\":{scale},\
             \"rows\":[\n{}\n],\"idle\":[\n{}\n]}}\n",
            json_string(&std::env::args().collect::<Vec<_>>().join(" ")),
            json_string(&load),
            rows.join(",\n"),
            idle_rows.join(",\n")
        );
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("--json {path}: {e}"));
    }
}

/// One idle figure as JSON: `kib_per_source` is null when the measurement failed.
fn idle_json(kind: &str, label: &str, k: usize, per: &str) -> String {
    let (value, error) = match per.parse::<f64>() {
        Ok(v) => (format!("{v}"), String::new()),
        Err(_) => ("null".to_owned(), format!(",\"error\":{}", json_string(per))),
    };
    format!(
        "{{\"kind\":{},\"label\":{},\"sources\":{k},\"kib_per_source\":{value}{error}}}",
        json_string(kind),
        json_string(label)
    )
}

/// Each idle figure comes from a process of its own: memory freed by an earlier measurement
/// would be reused by the next, and hide its growth.
fn idle_in_a_fresh_process(kind: &str, k: usize, url: &str) -> String {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args(["--idle-one", kind, &k.to_string(), url])
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run the idle measurement");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() { text } else { format!("failed ({text})") }
}

/// `--idle-one KIND K URL`: prints the RSS growth per source, in KiB, of K idle sources.
fn idle_one(kind: &str, k: usize, url: &str) {
    let per = match kind {
        "lean" => idle_ours(url, k, lean()),
        "default" => idle_ours(url, k, Options::default()),
        "h2c" => idle_ours(url, k, Options::default().http2_prior_knowledge(true)),
        "lean-tls" => idle_ours(url, k, lean().accept_invalid_certs(true)),
        "default-tls" => idle_ours(url, k, Options::default().accept_invalid_certs(true)),
        "reqwest-eventsource" => idle_reqwest_eventsource(url, k),
        other => panic!("unknown idle kind {other}"),
    };
    println!("{per:.1}");
}

#[derive(Clone)]
struct Sample {
    secs: f64,
    cpu: f64,
    server_cpu: f64,
    bytes: u64,
}

fn measure(client: Client, url: &str, n: u64, server: &TestServer) -> Sample {
    let (cpu0, server0) = (cpu_seconds(), server.cpu_seconds());
    let t0 = Instant::now();
    let bytes = client(url, n);
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, server_cpu) = (cpu_seconds() - cpu0, server.cpu_seconds() - server0);
    Sample { secs, cpu, server_cpu, bytes }
}

/// The lean transport: the figures the rows `ours/*` have always measured.
fn lean() -> Options {
    Options::default().transport(TransportKind::Lean)
}

fn ours_push(url: &str, n: u64) -> u64 {
    push(url, n, lean())
}

fn default_push(url: &str, n: u64) -> u64 {
    push(url, n, Options::default())
}

fn ours_pull(url: &str, n: u64) -> u64 {
    pull(url, n, lean())
}

fn default_pull(url: &str, n: u64) -> u64 {
    pull(url, n, Options::default())
}

fn push(url: &str, n: u64, options: Options) -> u64 {
    let (tx, rx) = mpsc::channel();
    let (mut seen, mut bytes) = (0u64, 0u64);
    let es = EventSource::with_handler(url, options, move |e: Event| {
        if let Event::Message(m) = e {
            seen += 1;
            bytes += m.data.len() as u64;
            if seen == n {
                let _ = tx.send(bytes);
            }
        }
    })
    .expect("source");
    let bytes = rx.recv_timeout(Duration::from_secs(300)).expect("ours/push timed out");
    es.close();
    bytes
}

fn pull(url: &str, n: u64, options: Options) -> u64 {
    let es = EventSource::with_options(url, options).expect("source");
    let (mut seen, mut bytes) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(8192);
    while seen < n {
        // What is queued, in one go; block only when nothing is.
        if es.try_recv_many(&mut batch, 8192) == 0 {
            match es.recv_timeout(Some(Duration::from_secs(60))) {
                Recv::Event(e) => batch.push(e),
                _ => panic!("ours/pull: no event for 60 s"),
            }
        }
        for e in batch.drain(..) {
            if let Event::Message(m) = e {
                seen += 1;
                bytes += m.data.len() as u64;
            }
        }
    }
    es.close();
    bytes
}

/// One event at a time through `futures::Stream` on a tokio runtime (as most Rust users will).
fn ours_stream(url: &str, n: u64) -> u64 {
    peer_runtime().block_on(async {
        let mut es = EventSource::with_options(url, lean()).expect("source");
        let bytes = sum_messages(&mut es, n, |e| match e {
            Event::Message(m) => Some(m.data.len()),
            _ => None,
        })
        .await;
        es.close();
        bytes
    })
}

/// One event at a time with the blocking `recv_timeout`.
fn ours_recv(url: &str, n: u64) -> u64 {
    let es = EventSource::with_options(url, lean()).expect("source");
    let (mut seen, mut bytes) = (0u64, 0u64);
    while seen < n {
        match es.recv_timeout(Some(Duration::from_secs(60))) {
            Recv::Event(Event::Message(m)) => {
                seen += 1;
                bytes += m.data.len() as u64;
            }
            Recv::Event(_) => {}
            _ => panic!("ours/recv: no event for 60 s"),
        }
    }
    es.close();
    bytes
}

/// 10,000 idle sources need 10,000 sockets (the testserver, a child, inherits the limit).
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) == 0 && r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
    }
}

fn peer_runtime() -> tokio::runtime::Runtime {
    // Two workers, like our internal runtime (a current-thread runtime measured slower for both peers).
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The data bytes of the first `n` messages of an async client's stream (`data`: a message
/// item's data length, `None` for other items); fewer if the stream ends first.
async fn sum_messages<S: futures::Stream + Unpin>(
    stream: &mut S,
    n: u64,
    data: impl Fn(S::Item) -> Option<usize>,
) -> u64 {
    let (mut seen, mut bytes) = (0u64, 0u64);
    while seen < n {
        let Some(item) = stream.next().await else { break };
        if let Some(len) = data(item) {
            seen += 1;
            bytes += len as u64;
        }
    }
    bytes
}

/// Runs `f` as a task spawned on a 2-worker runtime (the peers' best configuration: the body
/// is consumed on a runtime thread, not by a thread outside it).
fn spawned<F: std::future::Future<Output = u64> + Send + 'static>(f: F) -> u64 {
    let rt = peer_runtime();
    rt.block_on(async { rt.spawn(f).await.expect("peer task") })
}

fn sse_stream_reqwest(url: &str, n: u64) -> u64 {
    let url = url.to_owned();
    spawned(async move {
        let url = url.as_str();
        let client = reqwest::Client::new();
        let resp = client
            .get(url)
            .header("Accept", "text/event-stream")
            .header("Cache-Control", "no-cache")
            .send()
            .await
            .expect("request");
        let mut events = sse_stream::SseStream::from_bytes_stream(resp.bytes_stream());
        sum_messages(&mut events, n, |item| item.expect("sse").data.map(|d| d.len())).await
    })
}

fn reqwest_eventsource(url: &str, n: u64) -> u64 {
    use reqwest_eventsource::{Event as PeerEvent, EventSource as PeerSource};
    let url = url.to_owned();
    spawned(async move {
        let mut es = PeerSource::get(url.as_str());
        let bytes = sum_messages(&mut es, n, |item| match item {
            Ok(PeerEvent::Message(m)) => Some(m.data.len()),
            _ => None,
        })
        .await;
        es.close();
        bytes
    })
}

fn rss_kib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// RSS growth per source for `k` sources that each got their one event and now sit idle.
fn idle_ours(url: &str, k: usize, options: Options) -> f64 {
    let warm = EventSource::with_options(url, options.clone()).expect("source");
    let _ = warm.recv_timeout(Some(Duration::from_secs(5)));
    let before = rss_kib();
    let sources: Vec<_> =
        (0..k).map(|_| EventSource::with_options(url, options.clone()).expect("source")).collect();
    let mut buf = Vec::new();
    let (mut messages, mut errors) = (0, 0);
    for es in &sources {
        // Up to the one message: open, or error events and a reconnection when a connection
        // attempt failed (10,000 connects at once can overflow the server's accept backlog).
        loop {
            match es.recv_timeout(Some(Duration::from_secs(30))) {
                Recv::Event(Event::Message(_)) => {
                    messages += 1;
                    break;
                }
                Recv::Event(Event::Error(_)) => errors += 1,
                Recv::Event(_) => {}
                _ => break,
            }
        }
        es.try_recv_many(&mut buf, 16);
        buf.clear();
    }
    if errors > 0 {
        eprintln!("idle: {errors} connection attempts failed and were retried");
    }
    assert_eq!(messages, k, "not every idle source got its event (open-files limit?)");
    std::thread::sleep(Duration::from_millis(500));
    let per = (rss_kib() - before) / k as f64;
    drop(sources);
    per
}

fn idle_reqwest_eventsource(url: &str, k: usize) -> f64 {
    use reqwest_eventsource::{Event as PeerEvent, EventSource as PeerSource};
    let rt = peer_runtime();
    let before = rss_kib();
    let (tx, rx) = mpsc::channel();
    let mut tasks = Vec::new();
    for _ in 0..k {
        let tx = tx.clone();
        let url = url.to_owned();
        tasks.push(rt.spawn(async move {
            let mut es = PeerSource::get(&url);
            let mut told = false;
            while let Some(item) = es.next().await {
                if let (Ok(PeerEvent::Message(_)), false) = (item, told) {
                    told = true;
                    let _ = tx.send(());
                }
            }
        }));
    }
    for _ in 0..k {
        rx.recv_timeout(Duration::from_secs(60)).expect("peer source did not get its event");
    }
    std::thread::sleep(Duration::from_millis(500));
    let per = (rss_kib() - before) / k as f64;
    for t in tasks {
        t.abort();
    }
    per
}

/// The release testserver as a child process (stdin piped so it exits with us).
struct TestServer {
    child: Child,
    base: String,
}

impl TestServer {
    fn start() -> TestServer {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = std::env::var("TESTSERVER")
            .unwrap_or_else(|_| root.join("target/release/testserver").display().to_string());
        TestServer::spawn(
            Command::new(&bin).arg("--exit-on-eof"),
            "cargo build --release -p testserver",
        )
    }

    /// `tls_front` (built beside this binary) in front of the testserver at `base`.
    fn tls_front(base: &str) -> TestServer {
        let bin = std::env::current_exe().expect("own path").with_file_name("tls_front");
        let backend = base.trim_start_matches("http://");
        let hint = "cargo build --profile bench -p eventsource-bench --bin tls_front";
        TestServer::spawn(Command::new(bin).arg(backend), hint)
    }

    /// CPU time of the server's threads so far.
    fn cpu_seconds(&self) -> f64 {
        eventsource_bench::process_cpu_seconds(self.child.id())
    }

    /// A server that prints `listening on URL` and exits when its standard input closes.
    fn spawn(cmd: &mut Command, hint: &str) -> TestServer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?} ({hint}): {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().trim_start_matches("listening on ").to_owned();
        TestServer { child, base }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
