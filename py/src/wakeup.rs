//! One wake-up per event loop, shared by all the sources that loop serves.
//!
//! Why: a descriptor pair per source (a pipe each) made a process with N asyncio sources hold
//! 3N descriptors with the sockets, so a 20,000 limit stopped at ~6,600 sources. Here a loop has
//! one [`Notifier`]: an eventfd (a pipe where there is none) and a ready list. A source's core
//! notifier (called on a runtime thread, without the GIL, when its queue goes from empty to
//! non-empty or it finishes) pushes the source's token onto the ready list, and writes to the
//! descriptor only when the list was empty: one write wakes the loop for every source that
//! became ready meanwhile. The loop's reader calls [`Notifier::drain`] and looks at each ready
//! source's queue, in the order they became ready.
//!
//! A token is on the list at most once (its `pending` flag, read and written under the list's
//! lock); `drain` clears the flags before the caller looks at the queues, so an event queued
//! after that look lists the token again, and one queued before it is seen by the look (the
//! lock orders the two): no wake-up is lost. The descriptor belongs to the shared state, which each watching
//! source's notifier also holds, so a late notification never writes to a closed (or reused)
//! descriptor: it closes when the `Notifier` and every watch of it are gone.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::lock;

/// Tokens are never reused, so a stale one on the ready list (its source unwatched meanwhile)
/// names nobody.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

fn os_error(e: std::io::Error) -> PyErr {
    match e.raw_os_error() {
        Some(errno) => PyOSError::new_err((errno, e.to_string())),
        None => PyOSError::new_err(e.to_string()),
    }
}

/// A level-triggered "something is ready" descriptor: an eventfd (one descriptor) on Linux, a
/// non-blocking pipe elsewhere.
struct WakeFd {
    read: OwnedFd,
    #[cfg(not(target_os = "linux"))]
    write: OwnedFd,
}

impl WakeFd {
    #[cfg(target_os = "linux")]
    fn new() -> std::io::Result<WakeFd> {
        // SAFETY: eventfd takes no pointers.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: eventfd succeeded, so `fd` is open and owned by nobody else.
        Ok(WakeFd { read: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    #[cfg(not(target_os = "linux"))]
    fn new() -> std::io::Result<WakeFd> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe() writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: pipe() succeeded, so both descriptors are open and owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [read.as_raw_fd(), write.as_raw_fd()] {
            // SAFETY: plain fcntl calls on descriptors we own.
            unsafe {
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
                let fd_flags = libc::fcntl(fd, libc::F_GETFD);
                libc::fcntl(fd, libc::F_SETFD, fd_flags | libc::FD_CLOEXEC);
            }
        }
        Ok(WakeFd { read, write })
    }

    fn poke(&self) {
        // Cannot fail in a way that matters: a full pipe (EAGAIN) is readable already, and an
        // eventfd counter only overflows after 2^64 writes without a read.
        #[cfg(target_os = "linux")]
        let (fd, buf) = (self.read.as_raw_fd(), 1u64.to_ne_bytes());
        #[cfg(not(target_os = "linux"))]
        let (fd, buf) = (self.write.as_raw_fd(), [1u8]);
        // SAFETY: writing from a valid buffer to a descriptor we own.
        let _ = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    }

    fn clear(&self) {
        // An eventfd read resets its counter (8 bytes); a pipe is read until empty.
        let mut buf = [0u8; 256];
        loop {
            // SAFETY: reading into a valid buffer from a non-blocking descriptor we own.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if cfg!(target_os = "linux") || n < buf.len() as isize {
                break;
            }
        }
    }
}

/// What a loop's notifier and the watches of its sources share.
struct Shared {
    fd: WakeFd,
    /// Tokens of the sources that became ready since the last drain, each with its flag.
    ready: Mutex<Vec<(u64, Arc<AtomicBool>)>>,
}

/// One source's registration with a notifier: what its core notifier calls.
pub(crate) struct Watch {
    pub(crate) token: u64,
    /// On the ready list (cleared by `drain`).
    pending: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl Watch {
    /// The source has something to look at. Any thread, no GIL; never blocks for long (one
    /// short lock, at most one write).
    pub(crate) fn mark(&self) {
        let first = {
            let mut ready = lock(&self.shared.ready);
            if self.pending.swap(true, Ordering::Relaxed) {
                return; // listed already, and the drain that takes it has not looked yet
            }
            ready.push((self.token, self.pending.clone()));
            ready.len() == 1
        };
        if first {
            self.shared.fd.poke();
        }
    }
}

/// The wake-up of one event loop. Private: `eventsource_native` makes one per loop and watches
/// `fileno()` with `loop.add_reader`.
#[pyclass(frozen, module = "eventsource_native._native")]
pub struct Notifier {
    shared: Arc<Shared>,
    /// The list `drain` trades for the ready one: the two allocations circulate, so the
    /// runtime threads that list sources do not grow a new vector after every drain.
    spare: Mutex<Vec<(u64, Arc<AtomicBool>)>>,
}

impl Notifier {
    /// A new registration, with a fresh token. Its owner marks it once its core notifier is
    /// in place (events may be queued already: a spurious look is harmless, a lost wake-up
    /// is not).
    pub(crate) fn watch(&self) -> Watch {
        Watch {
            token: NEXT_TOKEN.fetch_add(1, Ordering::Relaxed),
            pending: Arc::new(AtomicBool::new(false)),
            shared: self.shared.clone(),
        }
    }
}

#[pymethods]
impl Notifier {
    /// Raises `OSError` (errno set) when no descriptor can be made (`EMFILE`).
    #[new]
    fn py_new() -> PyResult<Self> {
        let fd = WakeFd::new().map_err(os_error)?;
        Ok(Notifier {
            shared: Arc::new(Shared { fd, ready: Mutex::new(Vec::new()) }),
            spare: Mutex::new(Vec::new()),
        })
    }

    /// The descriptor to watch for reading; valid as long as this object lives.
    fn fileno(&self) -> i32 {
        self.shared.fd.read.as_raw_fd()
    }

    /// Clears the descriptor and returns the tokens of the sources that became ready, in that
    /// order. Look at each one's queue after this call.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // The descriptor first: a source listed after the swap below writes again.
        self.shared.fd.clear();
        let mut taken = lock(&self.spare);
        {
            let mut list = lock(&self.shared.ready);
            for (_, pending) in list.iter() {
                pending.store(false, Ordering::Relaxed);
            }
            std::mem::swap(&mut *list, &mut *taken);
        }
        let tokens = PyList::new(py, taken.iter().map(|(token, _)| *token));
        taken.clear();
        tokens
    }
}
