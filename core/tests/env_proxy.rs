//! A proxy in the environment that the lean transport cannot use is an error when the source is
//! made, never bypassed by connecting directly. Alone in its binary: it sets the process's
//! environment.

use eventsource_core::{ErrorKind, EventSource, Options, TransportKind};

#[test]
fn an_unusable_environment_proxy_is_refused_not_bypassed() {
    for (name, value) in [
        ("HTTPS_PROXY", "https://127.0.0.1:1"),
        ("ALL_PROXY", "socks5h://user:hunter2@127.0.0.1:1"),
        ("http_proxy", "http://"),
    ] {
        // SAFETY: the only test of this binary: no other thread reads the environment.
        unsafe { std::env::set_var(name, value) };
        let o = Options::default().transport(TransportKind::Lean).connect_timeout(None);
        let err = EventSource::with_options("http://127.0.0.1:9/", o).unwrap_err();
        // SAFETY: as above.
        unsafe { std::env::remove_var(name) };
        assert_eq!(err.kind(), ErrorKind::InvalidOption, "{name}");
        assert!(err.message().contains(name), "{}", err.message());
        assert!(!err.message().contains("hunter2"), "{}", err.message());
    }
}
