//! Scale and latency on loopback, ours against the Rust peers: resident memory per idle open
//! source, time to open N sources, broadcast events/s and CPU per event, and the latency from
//! the server's write to the user's callback.
//!
//!     cargo build --release -p testserver
//!     cargo build --profile bench -p eventsource-bench --bin scale
//!     target/release/scale [--quick] [--json PATH] [--n 1,100,1000,10000] [--clients a,b]
//!                        [--http 1.1,2] [--h2-max-streams N] [--skip scale,rate,broadcast] [--runs R]
//!
//! Clients, each in its best configuration (events reach user code on the runtime the client
//! runs on, two worker threads each): `ours-default` and `ours-lean`
//! (`EventSource::with_handler` on the default reqwest transport and on the lean one),
//! `reqwest-eventsource` and LaunchDarkly's `eventsource-client` (a stream consumed by a task
//! spawned on a 2-worker tokio runtime, one shared HTTP client for all sources). Over HTTP/2
//! every source of a client goes to one origin with h2c prior knowledge (the lean transport is
//! HTTP/1.1 only).
//!
//! Every measurement runs in a fresh process (this binary again, `--one ...`): memory freed by
//! an earlier one would be reused by the next and hide its growth. The testserver (`/load/*`
//! routes) stamps each event with CLOCK_MONOTONIC just before its write; the callback reads
//! the same clock first thing. The record schema of `--json` is in bench/README.md.

use std::io::{BufRead, BufReader, Read, Write};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use eventsource_bench::{cpu_seconds, heap_kib, json_string, process_cpu_seconds};
use eventsource_core::{Event, EventSource, Options, TransportKind};
use futures::StreamExt;

// ---------------------------------------------------------------------------------------------
// The clients.

struct ClientInfo {
    /// The name on the command line and in the tables.
    key: &'static str,
    /// The crate, and the crate whose version is recorded.
    client: &'static str,
    transport: &'static str,
    h2: bool,
}

const CLIENTS: &[ClientInfo] = &[
    ClientInfo { key: "ours-default", client: "eventsource-core", transport: "reqwest", h2: true },
    ClientInfo { key: "ours-lean", client: "eventsource-core", transport: "lean", h2: false },
    ClientInfo {
        key: "reqwest-eventsource",
        client: "reqwest-eventsource",
        transport: "reqwest",
        h2: true,
    },
    ClientInfo {
        key: "ld-eventsource-client",
        client: "eventsource-client",
        transport: "hyper",
        h2: true,
    },
];

fn info(key: &str) -> &'static ClientInfo {
    CLIENTS.iter().find(|c| c.key == key).unwrap_or_else(|| panic!("unknown client {key}"))
}

/// Opens sources whose events go to the global callbacks below.
trait Driver {
    fn open(&mut self, url: &str);
}

struct Ours {
    options: Options,
    sources: Vec<EventSource>,
}

impl Driver for Ours {
    fn open(&mut self, url: &str) {
        let es = EventSource::with_handler(url, self.options.clone(), |e: Event| match e {
            Event::Open => on_open(),
            Event::Message(m) => on_message(&m.data),
            Event::Error(e) => on_error(&e.error),
        })
        .expect("source");
        self.sources.push(es);
    }
}

/// Two workers, like our internal runtime.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

struct ReqwestEs {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Driver for ReqwestEs {
    fn open(&mut self, url: &str) {
        use reqwest_eventsource::{Event as E, EventSource as Es};
        let request = self.client.get(url);
        self.tasks.push(self.rt.spawn(async move {
            let mut es = Es::new(request).expect("a GET can be cloned");
            while let Some(item) = es.next().await {
                match item {
                    Ok(E::Open) => on_open(),
                    Ok(E::Message(m)) => on_message(&m.data),
                    Err(e) => on_error(&e),
                }
            }
        }));
    }
}

struct Ld<T> {
    rt: tokio::runtime::Runtime,
    transport: T,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl<T: launchdarkly_sdk_transport::HttpTransport + Clone> Driver for Ld<T> {
    fn open(&mut self, url: &str) {
        use eventsource_client::{Client as _, ClientBuilder, SSE};
        let client =
            ClientBuilder::for_url(url).expect("url").build_with_transport(self.transport.clone());
        self.tasks.push(self.rt.spawn(async move {
            let mut stream = client.stream();
            while let Some(item) = stream.next().await {
                match item {
                    Ok(SSE::Connected(_)) => on_open(),
                    Ok(SSE::Event(e)) => on_message(&e.data),
                    Ok(SSE::Comment(_)) => {}
                    Err(e) => on_error(&format!("{e:?}")),
                }
            }
        }));
    }
}

fn driver(key: &str, h2: bool) -> Box<dyn Driver> {
    let ours = |options: Options| Box::new(Ours { options, sources: Vec::new() });
    match (key, h2) {
        ("ours-default", false) => ours(Options::default()),
        ("ours-default", true) => ours(Options::default().http2_prior_knowledge(true)),
        ("ours-lean", false) => ours(Options::default().transport(TransportKind::Lean)),
        ("reqwest-eventsource", _) => {
            let b = reqwest::Client::builder().no_proxy();
            let b = if h2 { b.http2_prior_knowledge() } else { b.http1_only() };
            Box::new(ReqwestEs { rt: runtime(), client: b.build().unwrap(), tasks: Vec::new() })
        }
        ("ld-eventsource-client", false) => {
            let builder = launchdarkly_sdk_transport::HyperTransport::builder().disable_proxy();
            let transport = builder.build_http().expect("transport");
            Box::new(Ld { rt: runtime(), transport, tasks: Vec::new() })
        }
        ("ld-eventsource-client", true) => {
            let builder = launchdarkly_sdk_transport::HyperTransport::builder().disable_proxy();
            let transport = builder.build_with_connector(H2c::new()).expect("transport");
            Box::new(Ld { rt: runtime(), transport, tasks: Vec::new() })
        }
        (k, _) => panic!("{k} has no HTTP/2"),
    }
}

/// hyper-util's connector, saying that each connection negotiated HTTP/2: the legacy client
/// then speaks h2c with prior knowledge on it (LaunchDarkly's transport has no such option).
#[derive(Clone)]
struct H2c(hyper_util::client::legacy::connect::HttpConnector);

impl H2c {
    /// The connector `build_http` uses.
    fn new() -> H2c {
        H2c(hyper_util::client::legacy::connect::HttpConnector::new())
    }
}

struct H2cIo(hyper_util::rt::TokioIo<tokio::net::TcpStream>);

impl tower_service::Service<hyper::Uri> for H2c {
    type Response = H2cIo;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<H2cIo, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: hyper::Uri) -> Self::Future {
        let connecting = self.0.call(uri);
        Box::pin(async move { Ok(H2cIo(connecting.await?)) })
    }
}

impl hyper_util::client::legacy::connect::Connection for H2cIo {
    fn connected(&self) -> hyper_util::client::legacy::connect::Connected {
        self.0.connected().negotiated_h2()
    }
}

impl hyper::rt::Read for H2cIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for H2cIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}

// ---------------------------------------------------------------------------------------------
// What every client's callback does: count, and when asked, the latency of the event.

/// A count that a thread can wait for, woken by the increment that reaches the target.
struct Counter {
    n: AtomicU64,
    want: AtomicU64,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Counter {
    const fn new() -> Counter {
        Counter {
            n: AtomicU64::new(0),
            want: AtomicU64::new(u64::MAX),
            lock: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    fn add(&self) {
        let n = self.n.fetch_add(1, Relaxed) + 1;
        if n == self.want.load(Relaxed) {
            let _g = self.lock.lock().unwrap();
            self.cv.notify_all();
        }
    }

    fn get(&self) -> u64 {
        self.n.load(Relaxed)
    }

    fn reset(&self) {
        self.n.store(0, Relaxed);
    }

    /// Waits until the count is at least `want`; false once it has not moved for `stall`.
    fn wait_progress(&self, want: u64, stall: Duration) -> bool {
        let (mut last, mut since) = (self.get(), Instant::now());
        while !self.wait(want, Duration::from_millis(250)) {
            let now = self.get();
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= stall {
                return false;
            }
        }
        true
    }

    /// Waits until the count is at least `want`; false on timeout.
    fn wait(&self, want: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock.lock().unwrap();
        self.want.store(want, Relaxed);
        while self.n.load(Relaxed) < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self.cv.wait_timeout(g, left).unwrap().0;
        }
        true
    }
}

/// How long a wait goes on without progress before the measurement is given up.
const STALL: Duration = Duration::from_secs(10);
/// How long the first of N sources may take to open: a client that connects all N before
/// reading any response (as httpx-sse does) shows no open for more than 10 s at N = 10,000.
const STALL_FIRST_OPEN: Duration = Duration::from_secs(60);

static OPENED: Counter = Counter::new();
static MESSAGES: Counter = Counter::new();
static ERRORS: AtomicU64 = AtomicU64::new(0);
static FIRST_ERROR: Mutex<String> = Mutex::new(String::new());
static RECORD: AtomicBool = AtomicBool::new(false);
/// Each callback thread's latency samples (ns), uncontended: one buffer per thread.
static BUFFERS: Mutex<Vec<Arc<Mutex<Vec<u64>>>>> = Mutex::new(Vec::new());

thread_local! {
    static SAMPLES: Arc<Mutex<Vec<u64>>> = {
        let buf = Arc::<Mutex<Vec<u64>>>::default();
        BUFFERS.lock().unwrap().push(buf.clone());
        buf
    };
}

fn on_open() {
    OPENED.add();
}

fn on_message(data: &str) {
    if RECORD.load(Relaxed) {
        let now = monotonic_ns();
        if let Some(t) = stamp(data) {
            SAMPLES.with(|s| s.lock().unwrap().push(now.saturating_sub(t)));
        }
    }
    MESSAGES.add();
}

/// Counts the error; the first one's text goes into the records.
fn on_error(e: &dyn std::fmt::Display) {
    if ERRORS.fetch_add(1, Relaxed) == 0 {
        *FIRST_ERROR.lock().unwrap() = e.to_string();
    }
}

/// The `t` of `{"seq":S,"t":T}`.
fn stamp(data: &str) -> Option<u64> {
    let at = data.rfind("\"t\":")? + 4;
    let digits = &data[at..];
    digits[..digits.find('}')?].parse().ok()
}

fn take_samples() -> Vec<u64> {
    let mut all = Vec::new();
    for buf in BUFFERS.lock().unwrap().iter() {
        all.append(&mut buf.lock().unwrap());
    }
    all
}

fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the struct we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---------------------------------------------------------------------------------------------
// One measurement, in a process of its own: `scale --one CLIENT HTTP TASK N BASE SERVER_PID K=V...`

struct One {
    client: String,
    h2: bool,
    n: u64,
    base: String,
    server_pid: u32,
    params: Vec<(String, String)>,
    /// This process's command line: it reproduces the measurement.
    run: String,
}

impl One {
    fn param(&self, name: &str) -> u64 {
        let v = self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        v.and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("--one needs {name}=NUMBER"))
    }

    /// A record of this measurement (the parent adds `command`).
    fn record(&self, metric: &str, value: f64, unit: &str) -> Record {
        let c = info(&self.client);
        let mut r = Record::default();
        r.text("face", "rust")
            .text("client", c.client)
            .text("client_version", &crate_version(c.client));
        r.text("transport", c.transport);
        if c.client == "eventsource-core" {
            r.text(
                "transport_version",
                &crate_version(if c.transport == "lean" {
                    "eventsource-core"
                } else {
                    "reqwest@0.13"
                }),
            );
        } else if c.transport == "reqwest" {
            r.text("transport_version", &crate_version("reqwest@0.12"));
        } else {
            r.text("transport_version", &crate_version("hyper"));
        }
        r.text("key", c.key).text("http", if self.h2 { "2" } else { "1.1" }).raw("tls", "false");
        r.text("metric", metric).num("n", self.n as f64).num("value", value).text("unit", unit);
        r.raw("ok", "true");
        r
    }

    fn failed(&self, metric: &str, why: &str) -> Record {
        let mut r = self.record(metric, f64::NAN, "");
        r.raw("ok", "false").text("error", why);
        r
    }

    fn emit(&self, mut r: Record) {
        r.text("run", &self.run)
            .num("time", unix_time())
            .num("errors", ERRORS.load(Relaxed) as f64);
        let first = FIRST_ERROR.lock().unwrap().clone();
        if !first.is_empty() {
            r.text("first_error", &first);
        }
        println!("REC\t{}", r.json());
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A first source on the plain `/stream` (not a load stream), so that the runtime, the
    /// HTTP client and its pool exist before the "before" figures are taken.
    fn warm_up(&self, d: &mut dyn Driver) {
        d.open(&self.url("/stream?count=1&hold=1"));
        let ok =
            OPENED.wait(1, Duration::from_secs(20)) && MESSAGES.wait(1, Duration::from_secs(20));
        assert!(ok, "the warm-up source got no event");
        OPENED.reset();
        MESSAGES.reset();
    }

    /// Opens N load streams; the time until every source saw its open, or None on timeout.
    fn open_all(&self, d: &mut dyn Driver) -> Option<f64> {
        let url = self.url("/load/stream");
        let t0 = Instant::now();
        for _ in 0..self.n {
            d.open(&url);
        }
        // Until all are open, or no source opened for a while (a client that queues requests
        // behind the server's HTTP/2 stream limit never opens the rest).
        let opened =
            OPENED.wait_progress(1, STALL_FIRST_OPEN) && OPENED.wait_progress(self.n, STALL);
        opened.then(|| t0.elapsed().as_secs_f64())
    }
}

fn one(args: &[String]) {
    raise_fd_limit();
    let [client, http, task, n, base, pid, rest @ ..] = args else {
        panic!("--one CLIENT HTTP TASK N BASE SERVER_PID K=V...")
    };
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
    let one = One {
        client: client.clone(),
        h2: http == "2",
        n: n.parse().expect("N"),
        base: base.clone(),
        server_pid: pid.parse().expect("SERVER_PID"),
        params: rest
            .iter()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.into(), v.into()))
            .collect(),
        run: format!("{exe} --one {}", args.join(" ")),
    };
    let mut d = driver(client, one.h2);
    one.warm_up(&mut *d);
    match task.as_str() {
        "scale" => scale(&one, &mut *d),
        "rate" => latency_rate(&one, &mut *d),
        "broadcast" => latency_broadcast(&one, &mut *d),
        t => panic!("unknown task {t}"),
    }
    // Exit without tearing down thousands of sources: the kernel closes the sockets.
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

/// Open N idle sources, broadcast one event, measure; then `rounds` write-paced broadcasts.
fn scale(one: &One, d: &mut dyn Driver) {
    let n = one.n;
    let settle = Duration::from_millis(one.param("settle_ms"));
    let (rss_before, heap_before) = (rss_kib(), heap_kib());
    let Some(open_secs) = one.open_all(d) else {
        let why = format!("{} of {n} sources opened", OPENED.get());
        one.emit(one.failed("open_ms", &why));
        return;
    };
    let mut r = one.record("open_ms", open_secs * 1e3, "ms");
    r.num("errors_while_opening", ERRORS.load(Relaxed) as f64);
    one.emit(r);

    std::thread::sleep(settle);
    let rss_open = rss_kib();
    let stats = control(&one.base, "GET", "/load/stats");
    let (h1, h2) = (json_num(&stats, "http1"), json_num(&stats, "http2"));
    let mut r = one.record("connections", h1 + h2, "connections");
    r.num("http1_connections", h1).num("http2_connections", h2);
    r.num("server_open_streams", json_num(&stats, "open_streams"));
    one.emit(r);

    // Every source gets one event, then idles: the memory of a source that has seen traffic.
    control(&one.base, "POST", "/load/broadcast?n=1");
    if !MESSAGES.wait_progress(n, STALL) {
        let why = format!("{} of {n} sources got the first broadcast", MESSAGES.get());
        one.emit(one.failed("idle_kib_per_source", &why));
        return;
    }
    std::thread::sleep(settle);
    let (rss_idle, heap_idle) = (rss_kib(), heap_kib());
    let mut r = one.record("idle_kib_per_source", (rss_idle - rss_before) / n as f64, "KiB");
    r.num("rss_before_kib", rss_before).num("rss_open_kib", rss_open).num("rss_idle_kib", rss_idle);
    r.num("open_kib_per_source", (rss_open - rss_before) / n as f64);
    if let (Some(before), Some(idle)) = (heap_before, heap_idle) {
        r.num("heap_before_kib", before).num("heap_idle_kib", idle);
        r.num("heap_kib_per_source", (idle - before) / n as f64);
    }
    one.emit(r);

    // Write-paced broadcasts: one event per write, as fast as every stream takes them.
    let rounds = one.param("rounds");
    let total = n * rounds;
    MESSAGES.reset();
    take_samples();
    RECORD.store(true, Relaxed);
    let (cpu0, server0, t0) = (cpu_seconds(), process_cpu_seconds(one.server_pid), Instant::now());
    control(&one.base, "POST", &format!("/load/broadcast?n={rounds}&paced=1"));
    let done = MESSAGES.wait_progress(total, STALL);
    let secs = t0.elapsed().as_secs_f64();
    let (cpu, server_cpu) = (cpu_seconds() - cpu0, process_cpu_seconds(one.server_pid) - server0);
    RECORD.store(false, Relaxed);
    if !done {
        let why = format!("{} of {total} broadcast events arrived", MESSAGES.get());
        one.emit(one.failed("broadcast_events_per_s", &why));
        return;
    }
    let lat = Latency::of(take_samples());
    let per = |s: f64| s / total as f64 * 1e6;
    let mut r = one.record("broadcast_events_per_s", total as f64 / secs, "events/s");
    r.num("events", total as f64).num("rounds", rounds as f64).num("secs", secs);
    r.num("cpu_us_per_event", per(cpu)).num("server_cpu_us_per_event", per(server_cpu));
    lat.fields(&mut r);
    one.emit(r);
    let mut r = one.record("cpu_us_per_event", per(cpu), "us");
    r.num("server_cpu_us_per_event", per(server_cpu)).num("events", total as f64);
    one.emit(r);
}

/// One source on `/load/rate`: `count` events at `hz`; the first `skip` are not counted.
fn latency_rate(one: &One, d: &mut dyn Driver) {
    let (hz, count, skip) = (one.param("hz"), one.param("count"), one.param("skip"));
    RECORD.store(true, Relaxed);
    d.open(&one.url(&format!("/load/rate?hz={hz}&count={count}")));
    if !MESSAGES.wait_progress(count, STALL) {
        let why = format!("{} of {count} events arrived", MESSAGES.get());
        one.emit(one.failed("latency_rate_us", &why));
        return;
    }
    // Samples from both runtime threads: order them by arrival is not needed, only the warm-up
    // cut, which is by count.
    let mut samples = take_samples();
    samples.drain(..(skip as usize).min(samples.len()));
    let lat = Latency::of(samples);
    let mut r = one.record("latency_rate_us", lat.p99, "us");
    r.num("hz", hz as f64).num("events", count as f64).num("skipped", skip as f64);
    lat.fields(&mut r);
    one.emit(r);
}

/// N sources, one broadcast to warm them, then `rounds` broadcasts `every_us` apart.
fn latency_broadcast(one: &One, d: &mut dyn Driver) {
    let n = one.n;
    let (rounds, every_us) = (one.param("rounds"), one.param("every_us"));
    if one.open_all(d).is_none() {
        let why = format!("{} of {n} sources opened", OPENED.get());
        one.emit(one.failed("latency_broadcast_us", &why));
        return;
    }
    control(&one.base, "POST", "/load/broadcast?n=1");
    if !MESSAGES.wait_progress(n, STALL) {
        one.emit(one.failed("latency_broadcast_us", "the warm-up broadcast did not arrive"));
        return;
    }
    MESSAGES.reset();
    take_samples();
    RECORD.store(true, Relaxed);
    control(&one.base, "POST", &format!("/load/broadcast?n={rounds}&every_us={every_us}"));
    if !MESSAGES.wait_progress(n * rounds, STALL) {
        let why = format!("{} of {} events arrived", MESSAGES.get(), n * rounds);
        one.emit(one.failed("latency_broadcast_us", &why));
        return;
    }
    let lat = Latency::of(take_samples());
    let mut r = one.record("latency_broadcast_us", lat.p99, "us");
    r.num("rounds", rounds as f64).num("every_us", every_us as f64);
    lat.fields(&mut r);
    one.emit(r);
}

struct Latency {
    samples: usize,
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

impl Latency {
    /// Percentiles in µs (nearest rank) of latencies in ns.
    fn of(mut ns: Vec<u64>) -> Latency {
        ns.sort_unstable();
        let len = ns.len();
        let at = |q: f64| {
            if len == 0 {
                return f64::NAN;
            }
            let rank = ((q * len as f64).ceil() as usize).clamp(1, len);
            ns[rank - 1] as f64 / 1e3
        };
        let mean = ns.iter().sum::<u64>() as f64 / len.max(1) as f64 / 1e3;
        Latency { samples: len, p50: at(0.5), p99: at(0.99), p999: at(0.999), max: at(1.0), mean }
    }

    fn fields(&self, r: &mut Record) {
        r.num("samples", self.samples as f64).num("p50_us", self.p50).num("p99_us", self.p99);
        r.num("p999_us", self.p999).num("max_us", self.max).num("mean_us", self.mean);
    }
}

/// One request to the testserver over a connection of its own; the JSON of the answer.
fn control(base: &str, method: &str, path: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("control connection");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("control request");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("control answer");
    assert!(text.starts_with("HTTP/1.1 200"), "{method} {path}: {text}");
    match (text.find('{'), text.rfind('}')) {
        (Some(a), Some(b)) if a < b => text[a..=b].to_owned(),
        _ => panic!("{method} {path}: no JSON in {text}"),
    }
}

fn rss_kib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or("VmRSS: 0 kB");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0.0)
}

/// The soft open-files limit, raised to the hard one.
fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur as u64
    }
}

fn unix_time() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64().floor())
}

/// The version Cargo.lock resolved for `name` (`name@MAJOR.MINOR` picks among several).
fn crate_version(spec: &str) -> String {
    let (name, prefix) = spec.split_once('@').unwrap_or((spec, ""));
    let lock = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    let want = format!("name = \"{name}\"\nversion = \"{prefix}");
    text.find(&want)
        .and_then(|at| text[at..].lines().nth(1))
        .and_then(|l| l.split('"').nth(1))
        .unwrap_or("?")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// Records: flat JSON objects, written by hand (the schema is in bench/README.md).

#[derive(Default)]
struct Record {
    fields: Vec<(String, String)>,
}

impl Record {
    fn raw(&mut self, name: &str, json: &str) -> &mut Record {
        self.fields.retain(|(n, _)| n != name);
        self.fields.push((name.to_owned(), json.to_owned()));
        self
    }

    fn text(&mut self, name: &str, value: &str) -> &mut Record {
        self.raw(name, &json_string(value))
    }

    fn num(&mut self, name: &str, value: f64) -> &mut Record {
        let v = if !value.is_finite() {
            "null".to_owned()
        } else if value.fract() == 0.0 && value.abs() < 1e15 {
            format!("{value:.0}")
        } else {
            format!("{:.6}", value).trim_end_matches('0').to_owned()
        };
        self.raw(name, &v)
    }

    fn json(&self) -> String {
        let body: Vec<String> =
            self.fields.iter().map(|(n, v)| format!("{}:{v}", json_string(n))).collect();
        format!("{{\"schema\":1,{}}}", body.join(","))
    }
}

/// A number field of a flat JSON object (NaN when absent or null).
fn json_num(json: &str, name: &str) -> f64 {
    let key = format!("\"{name}\":");
    let Some(at) = json.find(&key) else { return f64::NAN };
    let rest = &json[at + key.len()..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    rest[..end].trim().parse().unwrap_or(f64::NAN)
}

/// A string field of a flat JSON object, still escaped.
fn json_text<'a>(json: &'a str, name: &str) -> &'a str {
    let key = format!("\"{name}\":\"");
    let Some(at) = json.find(&key) else { return "" };
    let rest = &json[at + key.len()..];
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' if !escaped => return &rest[..i],
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
    }
    rest
}

// ---------------------------------------------------------------------------------------------
// The parent: runs every measurement in a fresh process, prints the tables, writes the records.

struct Plan {
    quick: bool,
    sizes: Vec<u64>,
    clients: Vec<&'static ClientInfo>,
    versions: Vec<bool>,
    skip: Vec<String>,
    json: Option<String>,
    h2_max_streams: Option<u32>,
    runs: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--one") {
        return one(&args[1..]);
    }
    let mut plan = Plan {
        quick: false,
        sizes: Vec::new(),
        clients: CLIENTS.iter().collect(),
        versions: vec![false, true],
        skip: Vec::new(),
        json: None,
        h2_max_streams: None,
        runs: 1,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value =
            || it.next().unwrap_or_else(|| usage(&format!("{a} needs a value"))).clone();
        match a.as_str() {
            "--quick" => plan.quick = true,
            "--json" => plan.json = Some(value()),
            "--n" => {
                plan.sizes = value()
                    .split(',')
                    .map(|v| v.parse().unwrap_or_else(|_| usage("--n 1,100")))
                    .collect()
            }
            "--clients" => {
                let v = value();
                plan.clients = v
                    .split(',')
                    .map(|k| {
                        CLIENTS
                            .iter()
                            .find(|c| c.key == k)
                            .unwrap_or_else(|| usage(&format!("unknown client {k}")))
                    })
                    .collect();
            }
            "--http" => {
                plan.versions = value()
                    .split(',')
                    .map(|v| match v {
                        "1.1" => false,
                        "2" => true,
                        _ => usage("--http 1.1,2"),
                    })
                    .collect()
            }
            "--runs" => {
                plan.runs =
                    value().parse().ok().filter(|&r| r > 0).unwrap_or_else(|| usage("--runs R"))
            }
            "--skip" => plan.skip = value().split(',').map(str::to_owned).collect(),
            "--h2-max-streams" => {
                plan.h2_max_streams =
                    Some(value().parse().unwrap_or_else(|_| usage("--h2-max-streams N")))
            }
            "--bench" => {} // passed by `cargo bench`
            "--help" | "-h" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if plan.sizes.is_empty() {
        plan.sizes = if plan.quick { vec![1, 100, 1000] } else { vec![1, 100, 1000, 10_000] };
    }
    run(plan, &args);
}

fn usage(why: &str) -> ! {
    eprintln!(
        "{why}\nusage: scale [--quick] [--json PATH] [--n 1,100,1000,10000] [--clients {}]\n\
         \x20            [--http 1.1,2] [--h2-max-streams N] [--skip scale,rate,broadcast] [--runs R]",
        CLIENTS.iter().map(|c| c.key).collect::<Vec<_>>().join(",")
    );
    std::process::exit(2)
}

struct Job {
    client: &'static ClientInfo,
    h2: bool,
    task: &'static str,
    n: u64,
    params: Vec<String>,
}

fn run(plan: Plan, args: &[String]) {
    let limit = raise_fd_limit();
    let server = TestServer::start(plan.h2_max_streams);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    let command = format!("scale {}", args.join(" ")).trim_end().to_owned();
    println!("testserver at {}; open-files limit {limit}; load average {load}", server.base);

    let q = plan.quick;
    let mut jobs = Vec::new();
    let pairs: Vec<(&'static ClientInfo, bool)> = plan
        .versions
        .iter()
        .flat_map(|&h2| plan.clients.iter().filter(move |c| !h2 || c.h2).map(move |&c| (c, h2)))
        .collect();
    if !plan.skip.iter().any(|s| s == "scale") {
        for &n in &plan.sizes {
            // Each source needs a socket in the client and one in the server (which inherits
            // the limit), plus a margin for the runtime, the pool and the warm-up source.
            if n + 200 > limit {
                println!("skipping N={n}: the open-files limit is {limit} (raise the hard limit)");
                continue;
            }
            let events = if q { 20_000 } else { 100_000 };
            let rounds = (events / n).clamp(10, 100_000);
            let settle = if q { 200 } else { 500 };
            for &(client, h2) in &pairs {
                let params = vec![format!("rounds={rounds}"), format!("settle_ms={settle}")];
                jobs.push(Job { client, h2, task: "scale", n, params });
            }
        }
    }
    if !plan.skip.iter().any(|s| s == "rate") {
        let count = if q { 200 } else { 2000 };
        for &(client, h2) in &pairs {
            let params = vec!["hz=200".into(), format!("count={count}"), "skip=10".into()];
            jobs.push(Job { client, h2, task: "rate", n: 1, params });
        }
    }
    if !plan.skip.iter().any(|s| s == "broadcast") {
        let (n, rounds, every_us) = if q { (100, 20, 20_000) } else { (1000, 50, 50_000) };
        for &(client, h2) in &pairs {
            let params = vec![format!("rounds={rounds}"), format!("every_us={every_us}")];
            jobs.push(Job { client, h2, task: "broadcast", n, params });
        }
    }

    let mut out = plan.json.as_ref().map(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap_or_else(|e| panic!("--json {p}: {e}"))
    });
    let mut records: Vec<String> = Vec::new();
    let t0 = Instant::now();
    let total = jobs.len() * plan.runs;
    // Runs alternate (every job once, then again) so that a noisy minute hits them all alike.
    for (i, (run, job)) in (0..plan.runs).flat_map(|r| jobs.iter().map(move |j| (r, j))).enumerate()
    {
        server.wait_idle();
        let http = if job.h2 { "2" } else { "1.1" };
        eprint!("[{}/{total}] {} HTTP/{http} {} N={} ... ", i + 1, job.client.key, job.task, job.n);
        let started = Instant::now();
        let got = run_one(job, &server);
        eprintln!("{:.1} s", started.elapsed().as_secs_f64());
        for rec in got {
            let rec = format!(
                "{},\"repeat\":{run},\"server_h2_max_streams\":{},\"command\":{},\"loadavg\":{},\"cpus\":{}}}",
                rec.trim_end_matches('}'),
                plan.h2_max_streams.unwrap_or(200),
                json_string(&command),
                json_string(&load),
                std::thread::available_parallelism().map_or(0, |n| n.get())
            );
            if let Some(f) = &mut out {
                writeln!(f, "{rec}").expect("--json: write");
            }
            records.push(rec);
        }
    }
    drop(server);
    println!("{total} measurements in {:.0} s", t0.elapsed().as_secs_f64());
    if plan.runs > 1 {
        println!("each cell: the run with the median value of {} runs", plan.runs);
    }
    print_tables(&plan, &records);
    if let Some(p) = &plan.json {
        println!("\nrecords appended to {p}");
    }
}

/// Runs one job in a fresh process; its records (a failure record if it died).
fn run_one(job: &Job, server: &TestServer) -> Vec<String> {
    let exe = std::env::current_exe().expect("own path");
    let http = if job.h2 { "2" } else { "1.1" };
    let mut args = vec![
        "--one".to_owned(),
        job.client.key.to_owned(),
        http.to_owned(),
        job.task.to_owned(),
        job.n.to_string(),
        server.base.clone(),
        server.child.id().to_string(),
    ];
    args.extend(job.params.iter().cloned());
    let out = Command::new(exe)
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run a measurement");
    let text = String::from_utf8_lossy(&out.stdout);
    let recs: Vec<String> =
        text.lines().filter_map(|l| l.strip_prefix("REC\t")).map(str::to_owned).collect();
    if out.status.success() && !recs.is_empty() {
        return recs;
    }
    let mut r = Record::default();
    r.text("face", "rust")
        .text("client", job.client.client)
        .text("transport", job.client.transport);
    r.text("key", job.client.key).text("http", http).raw("tls", "false");
    r.text("metric", job.task).num("n", job.n as f64).num("value", f64::NAN).text("unit", "");
    r.raw("ok", "false").text("error", &format!("the measurement process failed: {}", out.status));
    r.text("run", &args.join(" "));
    let mut all = recs;
    all.push(r.json());
    all
}

fn print_tables(plan: &Plan, records: &[String]) {
    let rows: Vec<(&str, &str)> = {
        let mut rows = Vec::new();
        for h2 in [false, true] {
            for c in &plan.clients {
                if plan.versions.contains(&h2) && (!h2 || c.h2) {
                    rows.push((c.key, if h2 { "2" } else { "1.1" }));
                }
            }
        }
        rows
    };
    // The run with the median value (a failed run if none succeeded).
    let find = |key: &str, http: &str, metric: &str, n: Option<u64>| {
        let mut all: Vec<&String> = records
            .iter()
            .filter(|r| {
                json_text(r, "key") == key
                    && json_text(r, "http") == http
                    && json_text(r, "metric") == metric
                    && n.is_none_or(|n| json_num(r, "n") == n as f64)
            })
            .collect();
        let failed = all.first().copied();
        all.retain(|r| r.contains("\"ok\":true"));
        all.sort_by(|a, b| json_num(a, "value").total_cmp(&json_num(b, "value")));
        all.get(all.len() / 2).copied().or(failed)
    };
    let cell = |r: Option<&String>, f: &dyn Fn(&str) -> String| match r {
        Some(r) if r.contains("\"ok\":true") => f(r),
        Some(_) => "failed".to_owned(),
        None => "".to_owned(),
    };
    let sizes: Vec<u64> = {
        let mut s: Vec<u64> = records
            .iter()
            .filter(|r| json_text(r, "metric") == "open_ms")
            .map(|r| json_num(r, "n") as u64)
            .collect();
        s.sort_unstable();
        s.dedup();
        s
    };
    let header = |title: &str| {
        println!("\n### {title}\n");
        let cols: Vec<String> = sizes.iter().map(|n| format!("N={n}")).collect();
        println!("| client | HTTP | {} |", cols.join(" | "));
        println!("|---|---|{}", "---:|".repeat(sizes.len()));
    };
    let table = |title: &str, metric: &str, f: &dyn Fn(&str) -> String| {
        header(title);
        for &(key, http) in &rows {
            let cells: Vec<String> =
                sizes.iter().map(|&n| cell(find(key, http, metric, Some(n)), f)).collect();
            println!("| {key} | {http} | {} |", cells.join(" | "));
        }
    };
    if !sizes.is_empty() {
        table(
            "Resident memory per idle source (KiB; RSS growth / N, after one event each)",
            "idle_kib_per_source",
            &|r| format!("{:.1}", json_num(r, "value")),
        );
        table(
            "Live heap per idle source (KiB; the allocator's in-use bytes' growth / N)",
            "idle_kib_per_source",
            &|r| match r.contains("\"heap_kib_per_source\"") {
                true => format!("{:.1}", json_num(r, "heap_kib_per_source")),
                false => "?".to_owned(),
            },
        );
        table("Time to open N sources (ms, until every source saw its open)", "open_ms", &|r| {
            format!("{:.1}", json_num(r, "value"))
        });
        table("Connections the server saw (N sources to one origin)", "connections", &|r| {
            format!("{:.0}", json_num(r, "value"))
        });
        table(
            "Broadcast: events/s (write-paced, one event per write)",
            "broadcast_events_per_s",
            &|r| format!("{:.0}", json_num(r, "value")),
        );
        table(
            "Broadcast: client CPU µs per event (server's in brackets)",
            "cpu_us_per_event",
            &|r| {
                format!(
                    "{:.2} ({:.2})",
                    json_num(r, "value"),
                    json_num(r, "server_cpu_us_per_event")
                )
            },
        );
    }
    let lat = |r: &str| {
        format!(
            "{:.0} / {:.0} / {:.0} ({})",
            json_num(r, "p50_us"),
            json_num(r, "p99_us"),
            json_num(r, "p999_us"),
            json_num(r, "samples")
        )
    };
    println!("\n### Latency, server write → callback: p50 / p99 / p99.9 µs (samples)\n");
    let bn = records
        .iter()
        .find(|r| json_text(r, "metric") == "latency_broadcast_us")
        .map_or(0.0, |r| json_num(r, "n"));
    println!("| client | HTTP | one source at 200 events/s | broadcast to {bn} sources |");
    println!("|---|---|---:|---:|");
    for &(key, http) in &rows {
        let a = cell(find(key, http, "latency_rate_us", None), &lat);
        let b = cell(find(key, http, "latency_broadcast_us", None), &lat);
        println!("| {key} | {http} | {a} | {b} |");
    }
    // Each failed measurement once, with how many of its runs failed and the first's reason.
    let mut failed: Vec<(String, usize, &String)> = Vec::new();
    for f in records.iter().filter(|r| r.contains("\"ok\":false")) {
        let what = format!(
            "{} HTTP/{} {} N={}",
            json_text(f, "key"),
            json_text(f, "http"),
            json_text(f, "metric"),
            json_num(f, "n")
        );
        match failed.iter_mut().find(|(w, _, _)| *w == what) {
            Some((_, count, _)) => *count += 1,
            None => failed.push((what, 1, f)),
        }
    }
    if !failed.is_empty() {
        println!("\nFailed (runs of {}):", plan.runs);
        for (what, count, f) in failed {
            let first = json_text(f, "first_error");
            let first =
                if first.is_empty() { String::new() } else { format!("; first error: {first}") };
            println!("- {what}: {count}× ({}{first})", json_text(f, "error"));
        }
    }
}

/// The release testserver as a child process (stdin piped so it exits with us).
struct TestServer {
    child: Child,
    base: String,
}

impl TestServer {
    fn start(h2_max_streams: Option<u32>) -> TestServer {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let bin = std::env::var("TESTSERVER")
            .unwrap_or_else(|_| root.join("target/release/testserver").display().to_string());
        let mut cmd = Command::new(&bin);
        cmd.args(["--exit-on-eof", "--max-load-streams", "20000", "--max-load-secs", "600"]);
        if let Some(n) = h2_max_streams {
            cmd.args(["--max-concurrent-streams", &n.to_string()]);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap_or_else(|e| {
                panic!("cannot start {bin} (cargo build --release -p testserver): {e}")
            });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().trim_start_matches("listening on ").to_owned();
        TestServer { child, base }
    }

    /// Waits (up to 30 s) until the streams of the last measurement are gone.
    fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let stats = control(&self.base, "GET", "/load/stats");
            if json_num(&stats, "open_streams") == 0.0 && json_num(&stats, "rate_streams") == 0.0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("(the server still holds streams of the last measurement)");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
