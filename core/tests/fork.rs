//! `fork()` after the library started: the child's first use gets a working runtime, and a
//! source made before the fork is CLOSED in the child with an error that says why. One test in
//! this binary, so that the process forks from a known state.

mod common;

use std::time::Duration;

use common::*;
use eventsource_core::{ErrorKind, Event, EventSource, ReadyState, Recv};

/// What the child checks; its exit code is the number of the first failed check (0: all fine).
fn in_child(before: &EventSource, url: &str) -> i32 {
    if before.ready_state() != ReadyState::Closed {
        return 1;
    }
    match before.recv_timeout(Some(Duration::from_secs(5))) {
        Recv::Event(Event::Error(e))
            if e.ready_state == ReadyState::Closed && e.error.kind() == ErrorKind::Forked => {}
        _ => return 2,
    }
    if !matches!(before.recv_timeout(Some(Duration::from_secs(1))), Recv::Closed) {
        return 3;
    }
    before.close();
    let Ok(fresh) = EventSource::with_options(url, fast()) else { return 4 };
    let evs = take(&fresh, 2, Duration::from_secs(10));
    if !matches!(evs.as_slice(), [Event::Open, Event::Message(_)]) {
        return 5;
    }
    fresh.close();
    0
}

#[test]
fn a_forked_child_gets_a_working_runtime_and_the_parents_sources_are_closed() {
    let url = server().url("stream?count=1&size=8&hold=1");
    let before = EventSource::with_options(&url, fast()).unwrap();
    assert_eq!(trace(&before, 2).len(), 2, "the parent's source streams");
    // A finished response leaves its connection idle in the parent's pool; the child's sources
    // must not be handed it (the parent's runtime, whose threads the child lacks, runs it).
    let finished = server().url(&format!("script?t={}&s1=401&c1=denied", token()));
    let done = EventSource::with_options(&finished, fast()).unwrap();
    assert_eq!(trace(&done, 1), ["error(2)"]);
    done.close();
    std::thread::sleep(Duration::from_millis(100)); // the connection goes back to the pool
    // SAFETY: the child only runs `in_child` and exits without unwinding.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(|| in_child(&before, &url)).unwrap_or(99);
        // SAFETY: ends the child at once (no exit handlers of the parent's test harness).
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status), "the child did not exit normally: {status}");
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "check {} failed in the child",
        libc::WEXITSTATUS(status)
    );
    // The parent's source is untouched.
    assert_eq!(before.ready_state(), ReadyState::Open);
    before.close();
}
