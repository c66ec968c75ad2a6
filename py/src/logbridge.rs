//! The core's log records (`log` crate, target `eventsource_native`) go to Python's `logging`,
//! logger `eventsource_native`, through `pyo3-log`; those of its dependencies (reqwest,
//! rustls, ...) to child loggers (`eventsource_native.reqwest.connect`).
//!
//! Why a layer over `pyo3-log`: a record is made on a runtime thread, and asking Python
//! whether it is wanted means taking the GIL there, which can stall that thread (and every
//! connection it serves) for a whole GIL switch interval while Python code runs. So the level
//! is read on Python's side instead: at import and whenever an `EventSource` is made (the
//! caller holds the GIL then), and kept in `log::max_level()`. A disabled record costs one
//! relaxed load in the core's log macro and never touches Python. An enabled one takes the GIL
//! on the runtime thread (pyo3-log then calls the logger's `makeRecord` and `handle`). The core
//! never logs while it holds one of its locks, so a thread waiting for the GIL cannot hold up
//! a Python thread that waits for the core. Records stop at interpreter exit (an `atexit`
//! hook), as a thread that takes the GIL while the interpreter finalizes is not safe.

use std::sync::atomic::{AtomicBool, Ordering};

use log::LevelFilter;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyCFunction;

/// The Python logger that gets the core's records.
const LOGGER: &str = "eventsource_native";

/// Set by the `atexit` hook: no more calls into Python.
static EXITING: AtomicBool = AtomicBool::new(false);

struct Bridge {
    inner: pyo3_log::Logger,
}

impl log::Log for Bridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level() && !EXITING.load(Ordering::Acquire)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // try_attach: no Python call from a thread that may not attach (interpreter not
        // initialized, a GC traversal on this thread).
        let target = record.target();
        if target == LOGGER || target.starts_with("eventsource_native::") {
            Python::try_attach(|_| self.inner.log(record));
            return;
        }
        // A dependency's record (reqwest, rustls, ...) goes to a child logger of ours, e.g.
        // `eventsource_native.reqwest.connect`, so one logger tree holds the whole library.
        let target = format!("{LOGGER}::{target}");
        let args = *record.args();
        let ours = log::Record::builder()
            .args(args)
            .level(record.level())
            .target(&target)
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build();
        Python::try_attach(|_| self.inner.log(&ours));
    }

    fn flush(&self) {}
}

/// Reads the effective level of the `eventsource_native` logger into `log::max_level()`.
/// A failure (logging misconfigured) turns the records off rather than raising.
pub fn refresh(py: Python<'_>) {
    let level = level_of(py).unwrap_or(LevelFilter::Off);
    log::set_max_level(level);
}

fn level_of(py: Python<'_>) -> PyResult<LevelFilter> {
    static PY_LOGGER: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let logger = PY_LOGGER.get_or_try_init(py, || {
        py.import("logging")?.call_method1("getLogger", (LOGGER,)).map(Bound::unbind)
    })?;
    let logger = logger.bind(py);
    // Python's numbers: TRACE (pyo3-log's 5), DEBUG 10, INFO 20, WARNING 30, ERROR 40.
    for (filter, number) in [
        (LevelFilter::Trace, 5),
        (LevelFilter::Debug, 10),
        (LevelFilter::Info, 20),
        (LevelFilter::Warn, 30),
        (LevelFilter::Error, 40),
    ] {
        if logger.call_method1("isEnabledFor", (number,))?.is_truthy()? {
            return Ok(filter);
        }
    }
    Ok(LevelFilter::Off)
}

/// Installs the bridge (once per process) and the `atexit` hook, and reads the level.
pub fn install(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    // Called by `atexit`, before the interpreter finalizes. Not a module attribute: nothing
    // else should call it.
    let stop = PyCFunction::new_closure(py, None, None, |_, _| {
        EXITING.store(true, Ordering::Release);
        log::set_max_level(LevelFilter::Off);
    })?;
    // Cache the logger object, not its level: the level is ours to keep (see `refresh`).
    let inner = pyo3_log::Logger::new(py, pyo3_log::Caching::Loggers)?.filter(LevelFilter::Trace);
    // Fails only if this module was loaded before in the process (a second interpreter): the
    // bridge installed then serves both.
    let _ = log::set_boxed_logger(Box::new(Bridge { inner }));
    py.import("atexit")?.call_method1("register", (stop,))?;
    refresh(py);
    Ok(())
}
