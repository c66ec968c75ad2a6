//! The library's private tokio runtime, and what `fork()` does to it.
//!
//! Every face (C, Python, Node, a Rust program without tokio) needs the connections to run
//! somewhere without asking the caller for a runtime, so the core owns one, created lazily on
//! first use and shared by all sources in the process. Two worker threads are plenty: the work
//! is network-bound, and callbacks of one source never run concurrently anyway.
//!
//! Fork safety. A child made by `fork()` has none of the parent's threads, so the parent's
//! runtime is dead there (Python `multiprocessing` with `fork`, gunicorn `--preload`, Celery
//! prefork). A `pthread_atfork` child handler bumps [`generation`]: the child's first use of
//! the library builds a runtime of its own (the parent's is left alone: its threads cannot be
//! joined), and a source made before the fork sees that it belongs to another generation and
//! reports itself CLOSED (see `source/`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};

use once_cell::sync::OnceCell;
use tokio::runtime::{Builder, Handle, Runtime};

/// The process's runtime (a child of a fork builds its own, in `CHILD`).
static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// A forked child's runtime and the fork generation it was built in.
struct Child {
    runtime: Runtime,
    generation: u32,
}

/// The newest child runtime (leaked, never freed).
static CHILD: AtomicPtr<Child> = AtomicPtr::new(std::ptr::null_mut());
/// Bumped in the child of every `fork()` that follows the first runtime.
static GENERATION: AtomicU32 = AtomicU32::new(0);
/// Held while a child runtime is built (only this module takes it).
static BUILDING: Mutex<()> = Mutex::new(());

/// The process's fork generation: 0 until a `fork()` after the library started its runtime.
pub(crate) fn generation() -> u32 {
    GENERATION.load(Ordering::Acquire)
}

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

/// The runtime of this process (built on first use, and again in a forked child).
pub(crate) fn handle() -> &'static Handle {
    let generation = generation();
    if generation == 0 {
        return RUNTIME
            .get_or_init(|| {
                #[cfg(unix)]
                // SAFETY: registers a handler that only does an atomic add (async-signal-safe);
                // children inherit it.
                unsafe {
                    libc::pthread_atfork(None, None, Some(after_fork_in_child));
                }
                new_runtime()
            })
            .handle();
    }
    match child() {
        Some(c) if c.generation == generation => c.runtime.handle(),
        _ => build_child(generation),
    }
}

fn child() -> Option<&'static Child> {
    // SAFETY: `CHILD` is null or a leaked `Child`, never freed.
    unsafe { CHILD.load(Ordering::Acquire).as_ref() }
}

#[cold]
fn build_child(generation: u32) -> &'static Handle {
    // A fork while another thread held this lock leaves it locked in the child; it is held
    // only while a child runtime is built, and a poisoned one is fine to take.
    let _guard = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = child()
        && c.generation == generation
    {
        return c.runtime.handle();
    }
    let leaked: &'static mut Child =
        Box::leak(Box::new(Child { runtime: new_runtime(), generation }));
    CHILD.store(leaked, Ordering::Release);
    leaked.runtime.handle()
}

fn new_runtime() -> Runtime {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 2);
    Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("eventsource-rt")
        .enable_all()
        .build()
        .expect("eventsource: cannot start the internal tokio runtime (out of threads or memory?)")
}
