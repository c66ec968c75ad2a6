//! Query-string decoding to raw bytes.
//!
//! `form_urlencoded` decodes to (lossy) UTF-8 strings, but scripted bodies must be able to carry
//! any byte (`%FF`, `%00`, `%0D`), so the decoder here keeps bytes as they are.

/// The decoded `name=value` pairs of a query string, in order. `+` decodes to a space, `%XX` to
/// the byte 0xXX; a `%` not followed by two hex digits stays as it is.
#[derive(Debug, Default, Clone)]
pub(crate) struct Query {
    raw: String,
    pairs: Vec<(String, Vec<u8>)>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let raw = raw.unwrap_or("");
        let pairs = raw
            .split('&')
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (name, value) = part.split_once('=').unwrap_or((part, ""));
                (
                    String::from_utf8_lossy(&decode(name.as_bytes())).into_owned(),
                    decode(value.as_bytes()),
                )
            })
            .collect();
        Self { raw: raw.to_owned(), pairs }
    }

    /// The query as received (still percent-encoded), without the `?`.
    pub(crate) fn raw(&self) -> &str {
        &self.raw
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// Every value of `name`, in order.
    pub(crate) fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.pairs.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// The first value of `name` as (lossy) text.
    pub(crate) fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The first value of `name` parsed as an unsigned integer; `None` if absent or malformed.
    pub(crate) fn num(&self, name: &str) -> Option<u64> {
        self.text(name).and_then(|v| v.trim().parse().ok())
    }

    /// True if `name` is present with the value `1` (or `true`/`yes`).
    pub(crate) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some(b"1" | b"true" | b"yes"))
    }
}

/// Percent-decodes `input` to raw bytes (`+` is a space).
pub(crate) fn decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < input.len()
                && hex(input[i + 1]).is_some()
                && hex(input[i + 2]).is_some() =>
            {
                out.push(hex(input[i + 1]).unwrap_or(0) << 4 | hex(input[i + 2]).unwrap_or(0));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_raw_bytes() {
        assert_eq!(decode(b"a%FFb%00%0d+%2B%"), b"a\xFFb\x00\r +%".to_vec());
        assert_eq!(decode(b"%4"), b"%4".to_vec());
        let q = Query::parse(Some("c1=data%3A%201%0A%0A&hdr1=A%3A%20b&hdr1=C:d&x"));
        assert_eq!(q.get("c1"), Some(&b"data: 1\n\n"[..]));
        assert_eq!(q.get_all("hdr1").collect::<Vec<_>>(), vec![&b"A: b"[..], &b"C:d"[..]]);
        assert_eq!(q.get("x"), Some(&b""[..]));
        assert_eq!(q.get("y"), None);
    }
}
