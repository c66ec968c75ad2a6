//! A proxy in the environment that a transport cannot use is an error when the source is made,
//! never bypassed by connecting directly. Alone in its binary: it sets the process's
//! environment.

use eventsource_core::{ErrorKind, EventSource, Options, TransportKind};

/// Sets `name` for the length of one source creation, on `kind`; the error it gives.
fn made_with(kind: TransportKind, name: &str, value: &str) -> Option<eventsource_core::Error> {
    // SAFETY: the only test of this binary: no other thread reads the environment.
    unsafe { std::env::set_var(name, value) };
    let o = Options::default().transport(kind).connect_timeout(None);
    let made = EventSource::with_options("http://127.0.0.1:9/", o);
    // SAFETY: as above.
    unsafe { std::env::remove_var(name) };
    made.err()
}

#[test]
fn an_unusable_environment_proxy_is_refused_not_bypassed() {
    // Each case gets settings of its own (a connect timeout), so that no transport made for an
    // earlier case, with the environment of then, is reused.
    let cases = [
        // Usable by reqwest, not by the lean client.
        (TransportKind::Lean, "HTTPS_PROXY", "https://127.0.0.1:1"),
        (TransportKind::Lean, "ALL_PROXY", "socks5h://user:hunter2@127.0.0.1:1"),
        // Usable by neither: reqwest's environment reader skips these and connects directly.
        (TransportKind::Lean, "http_proxy", "http://"),
        (TransportKind::Default, "HTTPS_PROXY", "ftp://user:hunter2@127.0.0.1:21"),
        (TransportKind::Default, "ALL_PROXY", "http://user:hunter2@"),
        (TransportKind::Default, "http_proxy", "http://"),
    ];
    for (i, (kind, name, value)) in cases.into_iter().enumerate() {
        let timeout = std::time::Duration::from_millis(1000 + i as u64);
        // SAFETY: as above.
        unsafe { std::env::set_var(name, value) };
        let o = Options::default().transport(kind).connect_timeout(Some(timeout));
        let err = EventSource::with_options("http://127.0.0.1:9/", o).err();
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
        let err = err.unwrap_or_else(|| panic!("{kind:?} {name}={value}: the source was made"));
        assert_eq!(err.kind(), ErrorKind::InvalidOption, "{name}");
        assert!(err.message().contains(name), "{}", err.message());
        assert!(!err.message().contains("hunter2"), "{}", err.message());
    }
    // A usable one is no error (nothing listens there: the source just retries).
    for kind in [TransportKind::Default, TransportKind::Lean] {
        assert!(made_with(kind, "http_proxy", "http://127.0.0.1:9").is_none(), "{kind:?}");
    }
}
