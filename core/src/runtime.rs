//! The library's private tokio runtime.
//!
//! Every face (C, Python, Node, a Rust program without tokio) needs the connections to run
//! somewhere without asking the caller for a runtime, so the core owns one, created lazily on
//! first use and shared by all sources in the process. Two worker threads are plenty: the work
//! is network-bound, and callbacks of one source never run concurrently anyway.

use once_cell::sync::Lazy;
use tokio::runtime::{Builder, Runtime};

static RUNTIME: Lazy<Runtime> = Lazy::new(|| {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 2);
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("eventsource-rt")
        .enable_all()
        .build()
        .expect("eventsource: cannot start the internal tokio runtime (out of threads or memory?)")
});

pub(crate) fn handle() -> &'static tokio::runtime::Handle {
    RUNTIME.handle()
}
