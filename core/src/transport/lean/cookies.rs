//! A per-source cookie jar (`with_credentials`): the RFC 6265 subset a stream needs —
//! host-only and Domain cookies, Path, Max-Age/Expires, Secure. Bounded in count and size.

use std::time::{SystemTime, UNIX_EPOCH};

use url::{Host, Url};

const MAX_COOKIES: usize = 300;
const MAX_COOKIE_SIZE: usize = 4096;

#[derive(Default, Debug)]
pub(crate) struct CookieJar {
    cookies: Vec<Cookie>,
    seq: u64,
}

#[derive(Debug)]
struct Cookie {
    name: String,
    value: String,
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
    /// Unix seconds; `None` = session cookie.
    expires: Option<i64>,
    created: u64,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn host_of(url: &Url) -> Option<(String, bool)> {
    match url.host()? {
        Host::Domain(d) => Some((d.to_ascii_lowercase(), false)),
        Host::Ipv4(ip) => Some((ip.to_string(), true)),
        Host::Ipv6(ip) => Some((format!("[{ip}]"), true)),
    }
}

fn domain_match(host: &str, is_ip: bool, domain: &str) -> bool {
    host == domain
        || (!is_ip && host.len() > domain.len() && host.ends_with(domain) && {
            host.as_bytes()[host.len() - domain.len() - 1] == b'.'
        })
}

fn path_match(req: &str, cookie: &str) -> bool {
    req == cookie
        || (req.starts_with(cookie)
            && (cookie.ends_with('/') || req.as_bytes().get(cookie.len()) == Some(&b'/')))
}

fn default_path(url: &Url) -> String {
    let p = url.path();
    match p.rfind('/') {
        Some(i) if p.starts_with('/') && i > 0 => p[..i].to_owned(),
        _ => "/".to_owned(),
    }
}

impl CookieJar {
    /// Stores one `Set-Cookie` field received from `url`. Invalid cookies are ignored.
    pub(crate) fn store(&mut self, url: &Url, field: &[u8]) {
        if field.len() > MAX_COOKIE_SIZE {
            return;
        }
        let Ok(field) = std::str::from_utf8(field) else { return };
        let Some((host, is_ip)) = host_of(url) else { return };
        let mut parts = field.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || name.chars().chain(value.chars()).any(|c| c.is_control()) {
            return;
        }
        let mut max_age: Option<i64> = None;
        let mut expires: Option<i64> = None;
        let mut domain: Option<String> = None;
        let mut path: Option<String> = None;
        let mut secure = false;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("max-age") {
                let digits = v.strip_prefix('-').unwrap_or(v);
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    let n = v.parse::<i64>().unwrap_or(if v.starts_with('-') {
                        i64::MIN
                    } else {
                        i64::MAX
                    });
                    max_age = Some(if n <= 0 { i64::MIN } else { now().saturating_add(n) });
                }
            } else if k.eq_ignore_ascii_case("expires") {
                if let Some(t) = parse_cookie_date(v) {
                    expires = Some(t);
                }
            } else if k.eq_ignore_ascii_case("domain") {
                let d = v.trim_start_matches('.').to_ascii_lowercase();
                if !d.is_empty() {
                    domain = Some(d);
                }
            } else if k.eq_ignore_ascii_case("path") {
                path = v.starts_with('/').then(|| v.to_owned());
            } else if k.eq_ignore_ascii_case("secure") {
                secure = true;
            }
        }
        let (domain, host_only) = match domain {
            Some(d) if d == host => (d, true),
            Some(d) => {
                if !domain_match(&host, is_ip, &d) || !d.contains('.') {
                    return; // a foreign domain, or a bare TLD
                }
                (d, false)
            }
            None => (host, true),
        };
        if secure && url.scheme() != "https" {
            return; // RFC 6265bis: only a secure origin may set a Secure cookie
        }
        let expires = max_age.or(expires);
        let path = path.unwrap_or_else(|| default_path(url));
        self.cookies.retain(|c| !(c.name == name && c.domain == domain && c.path == path));
        if expires.is_some_and(|t| t <= now()) {
            return; // an expiry in the past deletes the cookie
        }
        if self.cookies.len() >= MAX_COOKIES
            && let Some(i) =
                self.cookies.iter().enumerate().min_by_key(|(_, c)| c.created).map(|(i, _)| i)
        {
            self.cookies.remove(i);
        }
        self.seq += 1;
        self.cookies.push(Cookie {
            name: name.to_owned(),
            value: value.to_owned(),
            domain,
            host_only,
            path,
            secure,
            expires,
            created: self.seq,
        });
    }

    /// The `Cookie` header value for a request to `url`, if any cookie matches.
    pub(crate) fn header_for(&mut self, url: &Url) -> Option<String> {
        let t = now();
        self.cookies.retain(|c| c.expires.is_none_or(|e| e > t));
        let (host, is_ip) = host_of(url)?;
        let path = url.path();
        let https = url.scheme() == "https";
        let mut hits: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| {
                (if c.host_only { host == c.domain } else { domain_match(&host, is_ip, &c.domain) })
                    && path_match(path, &c.path)
                    && (!c.secure || https)
            })
            .collect();
        if hits.is_empty() {
            return None;
        }
        hits.sort_by(|a, b| b.path.len().cmp(&a.path.len()).then(a.created.cmp(&b.created)));
        let mut out = String::new();
        for c in hits {
            if !out.is_empty() {
                out.push_str("; ");
            }
            out.push_str(&c.name);
            out.push('=');
            out.push_str(&c.value);
        }
        Some(out)
    }
}

/// RFC 6265 §5.1.1 cookie-date parsing, to Unix seconds.
fn parse_cookie_date(s: &str) -> Option<i64> {
    let delim = |c: char| matches!(c, '\x09' | '\x20'..='\x2f' | '\x3b'..='\x40' | '\x5b'..='\x60' | '\x7b'..='\x7e');
    let (mut time, mut day, mut month, mut year) = (None, None, None, None);
    for tok in s.split(delim).filter(|t| !t.is_empty()) {
        if time.is_none() {
            let mut it = tok.splitn(3, ':');
            if let (Some(h), Some(m), Some(sec)) = (it.next(), it.next(), it.next()) {
                let num = |x: &str, tail_ok: bool| {
                    let d: String = x.chars().take_while(|c| c.is_ascii_digit()).collect();
                    let ok = (1..=2).contains(&d.len()) && (tail_ok || d.len() == x.len());
                    ok.then(|| d.parse::<u32>().ok()).flatten()
                };
                if let (Some(h), Some(m), Some(sec)) =
                    (num(h, false), num(m, false), num(sec, true))
                {
                    time = Some((h, m, sec));
                    continue;
                }
            }
        }
        let digits: String = tok.chars().take_while(|c| c.is_ascii_digit()).collect();
        if day.is_none() && (1..=2).contains(&digits.len()) {
            day = digits.parse::<u32>().ok();
            continue;
        }
        if month.is_none() && tok.len() >= 3 {
            const M: [&str; 12] = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            if let Some(i) =
                M.iter().position(|m| tok.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(m)))
            {
                month = Some(i as u32 + 1);
                continue;
            }
        }
        if year.is_none() && (2..=4).contains(&digits.len()) {
            year = digits.parse::<i64>().ok();
        }
    }
    let (h, mi, sec) = time?;
    let (d, mo, mut y) = (day?, month?, year?);
    if (70..=99).contains(&y) {
        y += 1900;
    } else if (0..=69).contains(&y) {
        y += 2000;
    }
    if !(1..=31).contains(&d) || y < 1601 || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let (yy, mm) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * mm as i64 + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h as i64 * 3600 + mi as i64 * 60 + sec as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_cookie_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
        assert_eq!(parse_cookie_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784111777));
        assert_eq!(parse_cookie_date("Sun Nov  6 08:49:37 1994"), Some(784111777));
        assert_eq!(parse_cookie_date("garbage"), None);
    }

    #[test]
    fn jar_rules() {
        let u = Url::parse("http://a.example.com/x/y").unwrap();
        let mut j = CookieJar::default();
        j.store(&u, b"a=1");
        j.store(&u, b"b=2; Path=/; Domain=example.com");
        j.store(&u, b"c=3; Domain=other.com");
        j.store(&u, b"d=4; Secure");
        j.store(&u, b"e=5; Max-Age=0");
        j.store(&u, b"f=6; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(j.header_for(&u).as_deref(), Some("a=1; b=2"));
        let other = Url::parse("http://b.example.com/").unwrap();
        assert_eq!(j.header_for(&other).as_deref(), Some("b=2"));
        let out_of_path = Url::parse("http://a.example.com/z").unwrap();
        assert_eq!(j.header_for(&out_of_path).as_deref(), Some("b=2"));
        j.store(&u, b"b=gone; Path=/; Domain=example.com; Max-Age=-1");
        assert_eq!(j.header_for(&other), None);
    }
}
