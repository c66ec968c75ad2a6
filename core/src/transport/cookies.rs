//! The cookie jar of a `with_credentials` source, the same for every transport: `cookie_store`
//! keeps and matches the cookies (RFC 6265), and the Public Suffix List (the `psl` crate, which
//! compiles the list in) refuses a `Domain` that is a public suffix (`co.uk`, `github.io`), so
//! one site cannot set cookies for its neighbours. (`cookie_store`'s own check would need the
//! list parsed from text at run time, and a copy per jar.) Bounded in count and size.
//!
//! Each source has its own jar, whatever the transport. The lean client is handed it per
//! request; reqwest keeps one cookie provider per client, so the clients' provider is
//! [`SourceJars`], which finds the jar of the source whose task is sending the request (reqwest
//! handles cookies, on every redirect hop too, in the request future that task polls).

use std::cmp::Reverse;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use cookie_store::{Cookie, CookieStore, RawCookie, StoreAction};
use url::Url;

/// At most this many live cookies per jar; more are refused until some expire.
const MAX_COOKIES: usize = 300;
/// A longer `Set-Cookie` field is ignored (browsers' limit).
const MAX_COOKIE_SIZE: usize = 4096;

/// One source's cookies.
#[derive(Default)]
pub(crate) struct Jar(Mutex<Cookies>);

/// The store and each cookie's creation order, which `cookie_store` does not keep: RFC 6265
/// §5.4 sends cookies of equal path length oldest first, and a cookie that replaces another
/// keeps the old one's place (§5.3 step 11.3).
#[derive(Default)]
struct Cookies {
    store: CookieStore,
    created: HashMap<Key, u64>,
    next: u64,
}

/// A cookie's identity in the store: domain, path, name.
type Key = (String, String, String);

fn key(c: &Cookie<'_>) -> Key {
    let domain = c.domain.as_cow().unwrap_or_default().into_owned();
    (domain, c.path.to_string(), c.name().to_owned())
}

impl Jar {
    /// Stores one `Set-Cookie` field received from `url`. Invalid or refused cookies are ignored,
    /// as the RFC says.
    pub(crate) fn store(&self, url: &Url, field: &[u8]) {
        if field.len() > MAX_COOKIE_SIZE {
            return;
        }
        let Ok(field) = std::str::from_utf8(field) else { return };
        let Ok(mut cookie) = RawCookie::parse(field) else { return };
        if let Some(domain) =
            cookie.domain().map(|d| d.trim_start_matches('.').to_ascii_lowercase())
            && is_public_suffix(&domain)
        {
            // RFC 6265 §5.3 step 5: the host itself may set it, as a host-only cookie.
            if url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&domain)) {
                cookie.unset_domain();
            } else {
                return;
            }
        }
        if cookie.secure() == Some(true) && url.scheme() != "https" {
            return; // RFC 6265bis: only a secure origin sets a Secure cookie
        }
        let Ok(cookie) = Cookie::try_from_raw_cookie(&cookie, url) else { return };
        let mut jar = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(&cookie);
        let replaces = jar.store.get(&k.0, &k.1, &k.2).is_some();
        if !replaces && jar.store.iter_unexpired().count() >= MAX_COOKIES {
            return; // full, and this one replaces none
        }
        let Ok(action) = jar.store.insert(cookie.into_owned(), url) else { return };
        if !replaces && action != StoreAction::ExpiredExisting {
            let Cookies { store, created, next } = &mut *jar;
            if created.len() >= 2 * MAX_COOKIES {
                created.retain(|(d, p, n), _| store.get(d, p, n).is_some());
            }
            created.insert(k, *next);
            *next += 1;
        }
    }

    /// The `Cookie` header value for a request to `url`, if any cookie matches.
    pub(crate) fn header(&self, url: &Url) -> Option<String> {
        let jar = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut cookies = jar.store.matches(url);
        // Longer paths first, then oldest first (RFC 6265 §5.4 step 2).
        cookies.sort_by_cached_key(|c| {
            (Reverse(c.path.len()), jar.created.get(&key(c)).copied().unwrap_or(u64::MAX))
        });
        let mut out = String::new();
        for (name, value) in cookies.iter().map(|c| c.name_value()) {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(name);
            out.push('=');
            out.push_str(value);
        }
        (!out.is_empty()).then_some(out)
    }
}

/// A domain the Public Suffix List names (only explicit rules: an unknown TLD such as
/// `localhost` is not taken for one).
fn is_public_suffix(domain: &str) -> bool {
    psl::suffix(domain.as_bytes())
        .is_some_and(|s| s.is_known() && s.as_bytes() == domain.as_bytes())
}

tokio::task_local! {
    static SOURCE_JAR: Arc<Jar>;
}

/// Runs `fut` (a request) with `jar` as the jar [`SourceJars`] finds.
pub(crate) async fn with_jar<F: Future>(jar: Option<&Arc<Jar>>, fut: F) -> F::Output {
    match jar {
        Some(j) => SOURCE_JAR.scope(j.clone(), fut).await,
        None => fut.await,
    }
}

/// reqwest's cookie provider: the jar of the source whose request this is, if it keeps one.
pub(crate) struct SourceJars;

impl reqwest::cookie::CookieStore for SourceJars {
    fn set_cookies(
        &self,
        fields: &mut dyn Iterator<Item = &reqwest::header::HeaderValue>,
        url: &Url,
    ) {
        let _ = SOURCE_JAR.try_with(|jar| {
            for f in fields {
                jar.store(url, f.as_bytes());
            }
        });
    }

    fn cookies(&self, url: &Url) -> Option<reqwest::header::HeaderValue> {
        let value = SOURCE_JAR.try_with(|jar| jar.header(url)).ok()??;
        reqwest::header::HeaderValue::from_str(&value).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn host_domain_path_expiry_and_secure() {
        let u = url("http://a.example.com/x/y");
        let j = Jar::default();
        j.store(&u, b"a=1");
        j.store(&u, b"b=2; Path=/; Domain=example.com");
        j.store(&u, b"c=3; Domain=other.com");
        j.store(&u, b"d=4; Secure");
        j.store(&u, b"e=5; Max-Age=0");
        j.store(&u, b"f=6; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        let got = j.header(&u).unwrap();
        let mut got: Vec<&str> = got.split("; ").collect();
        got.sort();
        assert_eq!(got, ["a=1", "b=2"]);
        assert_eq!(j.header(&url("http://b.example.com/")).as_deref(), Some("b=2"));
        assert_eq!(j.header(&url("http://a.example.com/z")).as_deref(), Some("b=2"));
        j.store(&u, b"b=gone; Path=/; Domain=example.com; Max-Age=-1");
        assert_eq!(j.header(&url("http://b.example.com/")), None);
    }

    #[test]
    fn a_public_suffix_domain_is_refused() {
        let j = Jar::default();
        j.store(&url("https://evil.github.io/"), b"a=1; Domain=github.io");
        j.store(&url("https://shop.example.co.uk/"), b"b=2; Domain=co.uk");
        j.store(&url("https://shop.example.co.uk/"), b"c=3; Domain=.CO.UK");
        assert_eq!(j.header(&url("https://victim.github.io/")), None);
        assert_eq!(j.header(&url("https://other.co.uk/")), None);
        assert_eq!(j.header(&url("https://shop.example.co.uk/")), None);
        // The registrable domain itself is fine.
        j.store(&url("https://shop.example.co.uk/"), b"d=4; Domain=example.co.uk");
        assert_eq!(j.header(&url("https://www.example.co.uk/")).as_deref(), Some("d=4"));
    }

    #[test]
    fn a_public_suffix_host_keeps_its_own_cookie_host_only() {
        let j = Jar::default();
        j.store(&url("https://github.io/"), b"a=1; Domain=github.io");
        assert_eq!(j.header(&url("https://github.io/")).as_deref(), Some("a=1"));
        assert_eq!(j.header(&url("https://x.github.io/")), None);
    }

    #[test]
    fn unknown_tlds_are_not_public_suffixes() {
        let j = Jar::default();
        j.store(&url("http://a.localhost/"), b"a=1; Domain=localhost");
        assert_eq!(j.header(&url("http://b.localhost/")).as_deref(), Some("a=1"));
    }

    #[test]
    fn longer_paths_first_then_oldest_first_and_a_replacement_keeps_its_place() {
        let u = url("http://example.com/a/b/c");
        let j = Jar::default();
        for c in ["z=1", "y=2; Path=/", "x=3; Path=/a/b", "w=4", "v=5; Path=/", "u=6"] {
            j.store(&u, c.as_bytes());
        }
        // z, w and u have the default path /a/b, as x does.
        let order = "z=1; x=3; w=4; u=6; y=2; v=5";
        assert_eq!(j.header(&u).as_deref(), Some(order));
        j.store(&u, b"x=new; Path=/a/b");
        assert_eq!(j.header(&u).as_deref(), Some("z=1; x=new; w=4; u=6; y=2; v=5"));
        // Removed and set again, a cookie is new: it goes last among its path.
        j.store(&u, b"z=gone; Max-Age=0");
        j.store(&u, b"z=back");
        assert_eq!(j.header(&u).as_deref(), Some("x=new; w=4; u=6; z=back; y=2; v=5"));
    }

    #[test]
    fn bounded_in_size_and_count() {
        let u = url("http://example.com/");
        let j = Jar::default();
        j.store(&u, format!("big={}", "x".repeat(MAX_COOKIE_SIZE)).as_bytes());
        assert_eq!(j.header(&u), None);
        for i in 0..MAX_COOKIES + 50 {
            j.store(&u, format!("c{i}=v").as_bytes());
        }
        assert_eq!(j.header(&u).unwrap().split("; ").count(), MAX_COOKIES);
        // A cookie already held can still be replaced when the jar is full.
        j.store(&u, b"c0=new");
        assert!(j.header(&u).unwrap().split("; ").any(|c| c == "c0=new"));
    }
}
