//! The proxy environment, read as reqwest reads it: hyper-util's `Matcher::from_env`
//! (`ALL_PROXY`, `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY`, each upper case first, then lower
//! case; none of them in a CGI program, where `REQUEST_METHOD` is set). The lean transport
//! matches URLs with that same matcher, so both transports pick the same proxy for a URL.
//!
//! hyper-util skips a value it cannot parse, or whose scheme it does not know, and the request
//! then goes direct: a proxy the user meant to use would be bypassed without a word. Here such a
//! value, or one the transport cannot use, is an error that names the variable.

use hyper_util::client::proxy::matcher::{Intercept, Matcher};

/// The proxy schemes reqwest (with its `socks` feature) connects through.
pub(crate) const REQWEST_SCHEMES: &[&str] =
    &["http", "https", "socks4", "socks4a", "socks5", "socks5h"];

/// The variables the matcher reads, in pairs: the first of a pair that is set is the one used.
const PAIRS: [[&str; 2]; 3] =
    [["ALL_PROXY", "all_proxy"], ["HTTP_PROXY", "http_proxy"], ["HTTPS_PROXY", "https_proxy"]];

/// The proxy variables in effect, with their values: for each pair, the first variable that is
/// set, if its value is not blank.
fn in_effect() -> Vec<(&'static str, String)> {
    if std::env::var_os("REQUEST_METHOD").is_some() {
        return Vec::new();
    }
    PAIRS
        .iter()
        .filter_map(|pair| pair.iter().find_map(|n| std::env::var(n).ok().map(|v| (*n, v))))
        .filter(|(_, v)| !v.trim().is_empty())
        .collect()
}

/// Checks the environment's proxies for a transport that connects through `schemes`: an error
/// names the first variable whose value cannot be used; `Ok(true)` when any is set.
pub(crate) fn check(transport: &str, schemes: &[&str]) -> Result<bool, String> {
    let vars = in_effect();
    for (name, value) in &vars {
        check_value(name, value, transport, schemes)?;
    }
    Ok(!vars.is_empty())
}

/// The environment's proxies, checked as [`check`] does: `None` when no proxy variable is set.
pub(crate) fn matcher(transport: &str, schemes: &[&str]) -> Result<Option<Matcher>, String> {
    Ok(check(transport, schemes)?.then(Matcher::from_env))
}

fn check_value(name: &str, value: &str, transport: &str, schemes: &[&str]) -> Result<(), String> {
    // No scheme means http, as hyper-util reads it.
    let scheme =
        value.split_once("://").map_or("http".into(), |(s, _)| s.trim().to_ascii_lowercase());
    if !schemes.contains(&scheme.as_str()) {
        let can = schemes.iter().map(|s| format!("{s}://")).collect::<Vec<_>>().join(", ");
        return Err(format!(
            "the environment's {name} ({:?}) cannot be used by the {transport} transport, which \
             connects through {can} proxies; {}unset {name}",
            shown(value),
            if transport == "lean" { "use the default transport, or " } else { "fix or " }
        ));
    }
    match parse(value) {
        Some(_) => Ok(()),
        None => Err(format!(
            "the environment's {name} is not a proxy URL ({:?}); fix or unset {name}",
            shown(value)
        )),
    }
}

/// A value as hyper-util reads it, when it is the proxy for every URL.
fn parse(value: &str) -> Option<Intercept> {
    let any: http::Uri = "http://example.invalid/".parse().ok()?;
    Matcher::builder().all(value.to_owned()).build().intercept(&any)
}

/// A value for messages: whatever precedes its last `@` (user and password) hidden, parsed or
/// not.
fn shown(value: &str) -> String {
    let start = value.find("://").map_or(0, |i| i + 3);
    match value[start..].rfind('@') {
        Some(at) => format!("{}***{}", &value[..start], &value[start + at..]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_read_as_hyper_util_reads_them() {
        let lean = &["http"];
        for ok in ["http://p:3128", "p:3128", "http://u:pw@p", "http://p"] {
            check_value("HTTP_PROXY", ok, "lean", lean).unwrap();
        }
        for (bad, says) in [
            ("https://p:1", "cannot be used by the lean transport"),
            ("socks5h://u:hunter2@p:1", "cannot be used by the lean transport"),
            ("ftp://p:21", "cannot be used by the lean transport"),
            ("http://", "is not a proxy URL"),
            ("http://u:hunter2@", "is not a proxy URL"),
        ] {
            let e = check_value("HTTPS_PROXY", bad, "lean", lean).unwrap_err();
            assert!(e.contains(says) && e.contains("HTTPS_PROXY"), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        for ok in ["https://p:1", "socks5h://p:1", "socks4://p:1", "p:1"] {
            check_value("ALL_PROXY", ok, "default", REQWEST_SCHEMES).unwrap();
        }
        let e = check_value("ALL_PROXY", "ftp://p:21", "default", REQWEST_SCHEMES).unwrap_err();
        assert!(e.contains("cannot be used by the default transport"), "{e}");
        let e =
            check_value("ALL_PROXY", "http://u:hunter2@", "default", REQWEST_SCHEMES).unwrap_err();
        assert!(e.contains("is not a proxy URL") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn shown_hides_user_info() {
        assert_eq!(shown("http://u:pw@p:1"), "http://***@p:1");
        assert_eq!(shown("u:pw@p:1"), "***@p:1");
        assert_eq!(shown("http://p:1"), "http://p:1");
        assert_eq!(shown("http://a@b:c@p"), "http://***@p");
    }
}
