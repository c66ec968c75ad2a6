//! The HTTP/1.1 wire format: response heads (parsed with `httparse`) and body framing
//! (chunked, Content-Length, close-delimited). Everything the server sends is bounded.

use bytes::{Buf, Bytes, BytesMut};

/// Largest response head (status line + header fields) accepted.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most header fields accepted in one response head.
pub(crate) const MAX_HEADERS: usize = 100;
/// Longest chunk-size line extension accepted.
const MAX_CHUNK_EXT: usize = 4096;
/// Most hex digits in a chunk size (leading zeros included).
const MAX_SIZE_DIGITS: u8 = 64;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 64 * 1024;

/// A parsed response head. Header names are lowercased; duplicates are kept in order.
pub(crate) struct Head {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    /// The values of every field called `name` (lowercase), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.all(name).next()
    }
}

/// Parses a response head at the start of `buf`, consuming it. `Ok(None)`: incomplete.
pub(crate) fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, String> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut fields);
    match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD => {
            let head = Head {
                status: resp.code.unwrap_or(0),
                reason: resp.reason.unwrap_or("").chars().take(100).collect(),
                headers: resp
                    .headers
                    .iter()
                    .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                    .collect(),
            };
            buf.advance(n);
            Ok(Some(head))
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(_) => Err(format!("the response head is larger than {} KiB", MAX_HEAD / 1024)),
        Err(httparse::Error::TooManyHeaders) => {
            Err(format!("the response has more than {MAX_HEADERS} header fields"))
        }
        Err(e) => Err(format!("malformed HTTP response head ({e})")),
    }
}

/// How the body of a response is delimited (RFC 9112 §6.3), taken from its head.
pub(crate) fn decoder_for(head: &Head) -> Result<Decoder, String> {
    let mut te = Vec::new();
    for v in head.all("transfer-encoding") {
        te.extend_from_slice(v);
        te.push(b',');
    }
    if !te.is_empty() {
        let last = te
            .split(|&b| b == b',')
            .map(|t| t.trim_ascii())
            .rfind(|t| !t.is_empty())
            .unwrap_or(b"");
        return Ok(if last.eq_ignore_ascii_case(b"chunked") {
            Decoder::Chunked(Chunk::Size { size: 0, digits: 0 })
        } else {
            Decoder::Close
        });
    }
    let mut length: Option<u64> = None;
    for v in head.all("content-length") {
        for part in v.split(|&b| b == b',') {
            let part = part.trim_ascii();
            let n = std::str::from_utf8(part)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!("invalid Content-Length {:?}", String::from_utf8_lossy(v))
                })?;
            if length.is_some_and(|l| l != n) {
                return Err("conflicting Content-Length values".to_owned());
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => Decoder::Done,
        Some(n) => Decoder::Length(n),
        None => Decoder::Close,
    })
}

/// Body framing state.
#[derive(Debug)]
pub(crate) enum Decoder {
    Chunked(Chunk),
    /// Bytes left of a Content-Length body.
    Length(u64),
    /// The body ends when the connection closes.
    Close,
    Done,
}

/// Chunked-coding state, advanced one framing byte at a time; chunk data is sliced out whole.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Chunk {
    Size { size: u64, digits: u8 },
    Ext { size: u64, len: usize },
    SizeLf { size: u64 },
    Data(u64),
    DataCr,
    DataLf,
    Trailer { line: usize, total: usize },
    TrailerLf { line: usize, total: usize },
}

impl Decoder {
    /// Takes the body bytes buffered in `buf` out of it, handing each data piece (a slice of
    /// `buf`'s allocation, no copy) to `data`. Returns true once the body is complete; bytes
    /// after its end are left in `buf`.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        data: &mut impl FnMut(Bytes),
    ) -> Result<bool, String> {
        match self {
            Decoder::Done => Ok(true),
            Decoder::Close => {
                if !buf.is_empty() {
                    data(buf.split().freeze());
                }
                Ok(false)
            }
            Decoder::Length(left) => {
                let k = (*left).min(buf.len() as u64) as usize;
                if k > 0 {
                    data(buf.split_to(k).freeze());
                }
                *left -= k as u64;
                if *left == 0 {
                    *self = Decoder::Done;
                    return Ok(true);
                }
                Ok(false)
            }
            Decoder::Chunked(state) => {
                let done = decode_chunked(state, buf, data)?;
                if done {
                    *self = Decoder::Done;
                }
                Ok(done)
            }
        }
    }

    /// Whether the connection may close here: a close-delimited body ends (true); a chunked or
    /// Content-Length body cut short is an error.
    pub fn eof_is_end(&self) -> Result<(), String> {
        match self {
            Decoder::Close | Decoder::Done => Ok(()),
            Decoder::Length(left) => Err(format!(
                "the server closed the connection {left} bytes before the end of the \
                 Content-Length body"
            )),
            Decoder::Chunked(_) => {
                Err("the server closed the connection inside the chunked body".to_owned())
            }
        }
    }
}

fn decode_chunked(
    state: &mut Chunk,
    buf: &mut BytesMut,
    data: &mut impl FnMut(Bytes),
) -> Result<bool, String> {
    loop {
        if let Chunk::Data(left) = *state {
            if buf.is_empty() {
                return Ok(false);
            }
            let k = left.min(buf.len() as u64) as usize;
            data(buf.split_to(k).freeze());
            *state = if left == k as u64 { Chunk::DataCr } else { Chunk::Data(left - k as u64) };
            continue;
        }
        // Framing bytes: scan without advancing per byte.
        let mut i = 0;
        let mut done = false;
        while i < buf.len() {
            let b = buf[i];
            i += 1;
            *state = match (*state, b) {
                (Chunk::Size { size, digits }, _) if b.is_ascii_hexdigit() => {
                    // Leading zeros are fine (up to a bound, so that a size line ends); the
                    // value must fit in 64 bits.
                    if digits >= MAX_SIZE_DIGITS || size >> 60 != 0 {
                        return Err("chunk size too large".to_owned());
                    }
                    let d = (b as char).to_digit(16).unwrap_or(0) as u64;
                    Chunk::Size { size: size << 4 | d, digits: digits + 1 }
                }
                (Chunk::Size { digits: 0, .. }, _) => {
                    return Err(format!("invalid chunk size line (byte {b:#04x})"));
                }
                (Chunk::Size { size, .. }, b';' | b' ' | b'\t') => Chunk::Ext { size, len: 0 },
                (Chunk::Size { size, .. } | Chunk::Ext { size, .. }, b'\r') => {
                    Chunk::SizeLf { size }
                }
                (
                    Chunk::Size { size, .. } | Chunk::Ext { size, .. } | Chunk::SizeLf { size },
                    b'\n',
                ) => {
                    if size == 0 {
                        Chunk::Trailer { line: 0, total: 0 }
                    } else {
                        Chunk::Data(size)
                    }
                }
                (Chunk::Size { .. }, _) => {
                    return Err(format!("invalid chunk size line (byte {b:#04x})"));
                }
                (Chunk::Ext { size, len }, _) => {
                    if len >= MAX_CHUNK_EXT {
                        return Err("chunk extension too long".to_owned());
                    }
                    Chunk::Ext { size, len: len + 1 }
                }
                (Chunk::SizeLf { .. }, _) => {
                    return Err("CR without LF in a chunk size line".to_owned());
                }
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataCr | Chunk::DataLf, b'\n') => Chunk::Size { size: 0, digits: 0 },
                (Chunk::DataCr | Chunk::DataLf, _) => {
                    return Err("missing CRLF after chunk data".to_owned());
                }
                (Chunk::Trailer { line, total }, b'\r') => Chunk::TrailerLf { line, total },
                (Chunk::Trailer { line, total } | Chunk::TrailerLf { line, total }, b'\n') => {
                    if line == 0 {
                        done = true;
                        Chunk::Trailer { line: 0, total }
                    } else {
                        Chunk::Trailer { line: 0, total }
                    }
                }
                (Chunk::Trailer { line, total }, _) => {
                    if total >= MAX_TRAILERS {
                        return Err("chunked trailer section too large".to_owned());
                    }
                    Chunk::Trailer { line: line + 1, total: total + 1 }
                }
                (Chunk::TrailerLf { .. }, _) => {
                    return Err("CR without LF in the chunked trailer section".to_owned());
                }
                (Chunk::Data(_), _) => unreachable!("data is sliced above"),
            };
            if done || matches!(state, Chunk::Data(_)) {
                break;
            }
        }
        buf.advance(i);
        if done {
            return Ok(true);
        }
        if !matches!(state, Chunk::Data(_)) {
            return Ok(false); // buffer exhausted inside framing
        }
    }
}

/// A reason phrase for messages: the standard one (the `http` crate's, as the default transport
/// gives), else the server's (sanitized).
pub(crate) fn reason(status: u16, theirs: &str) -> String {
    match http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(std) => std.to_owned(),
        None => theirs.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(64).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dec: &mut Decoder, input: &[u8], step: usize) -> Result<(Vec<u8>, bool), String> {
        let mut out = Vec::new();
        let mut buf = BytesMut::new();
        let mut done = false;
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            done = dec.decode(&mut buf, &mut |b| out.extend_from_slice(&b))?;
            if done {
                break;
            }
        }
        Ok((out, done))
    }

    #[test]
    fn chunked_at_every_split() {
        let body = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\nextra";
        for step in 1..body.len() {
            let mut d = Decoder::Chunked(Chunk::Size { size: 0, digits: 0 });
            let (out, done) = run(&mut d, body, step).unwrap();
            assert_eq!(out, b"hello0123456789", "step {step}");
            assert!(done, "step {step}");
        }
    }

    #[test]
    fn chunked_errors() {
        for bad in [&b"x\r\n"[..], b"\r\n", b"5\r\nhelloXX", b"11111111111111111\r\n", b"5\rx"] {
            let mut d = Decoder::Chunked(Chunk::Size { size: 0, digits: 0 });
            assert!(run(&mut d, bad, 100).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn chunk_sizes_may_have_leading_zeros() {
        // 20 digits, 17 of them leading zeros: the value (0x5) is what counts.
        let body = b"00000000000000000005\r\nhello\r\n0000000000000000000000\r\n\r\n";
        let mut d = Decoder::Chunked(Chunk::Size { size: 0, digits: 0 });
        assert_eq!(run(&mut d, body, 3).unwrap(), (b"hello".to_vec(), true));
        // A value beyond 64 bits, or a size line that never ends, is still refused.
        for bad in [&b"10000000000000000\r\n"[..], &[b'0'; 65][..]] {
            let mut d = Decoder::Chunked(Chunk::Size { size: 0, digits: 0 });
            assert!(run(&mut d, bad, 100).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn length_body_ends() {
        let mut d = Decoder::Length(4);
        let (out, done) = run(&mut d, b"abcdef", 1).unwrap();
        assert_eq!((out.as_slice(), done), (&b"abcd"[..], true));
    }
}
