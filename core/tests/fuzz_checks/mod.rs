//! What the fuzz targets check on each input (`fuzz/fuzz_targets/*.rs` include this file by
//! path), shared with the tests that replay the checked-in corpus (`tests/fuzz_corpus.rs`) and
//! the crashes found (`tests/fuzz_regressions.rs`): one definition of what an input means and
//! what must hold for it. Needs `mod parser_util;` beside it at the crate root.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use eventsource_core::__fuzz::{self, Decoder, EolScan, Head};
use eventsource_core::parser::Parser;
use eventsource_core::{ErrorKind, Text};

use crate::parser_util::reference::Reference;
use crate::parser_util::{ORIGIN, Out, Run, to_out};

/// A small deterministic generator (xorshift64*) for the cut points an input asks for.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u8, salt: usize) -> Rng {
        Rng((u64::from(seed) << 32 | salt as u64) ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// `b` cut at `n` random points (some pieces may be empty).
pub fn cut<'a>(b: &'a [u8], n: usize, rng: &mut Rng) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = (0..n).map(|_| rng.below(b.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(n + 1);
    let mut prev = 0;
    for c in at {
        out.push(&b[prev..c]);
        prev = c;
    }
    out.push(&b[prev..]);
    out
}

/// The `max_event_size` that header bytes `mode` and `arg` ask for.
pub fn limit(mode: u8, arg: u8) -> usize {
    let arg = usize::from(arg);
    match mode % 4 {
        0 => 1 << 20,
        // Small: lines and events over the limit are common.
        1 => arg,
        // Around the sizes of real lines.
        2 => arg * 16,
        // Near the top, up to usize::MAX: sums with the limit must not overflow (the parser
        // clamps limits above `Parser::MAX_LIMIT`).
        _ => usize::MAX - arg,
    }
}

/// Fuzz target `parser_diff`. The input is four header bytes and a body:
/// - `mode`, `arg`: the limit (see [`limit`]);
/// - `flags`: bit 0, `detach()` after every chunk; bit 1, two streams (the body is cut in two,
///   fed one after the other to one parser, so the last event ID carries over); bit 2, one byte
///   a chunk; bits 3–7, how many random cuts;
/// - `seed`: for the cut points.
///
/// The parser must give the same items for the whole body in one chunk and for the chunking;
/// without an error, exactly what the reference gives; with one, a prefix of it, and only if
/// the limit is below the body's length. Its buffers stay bounded by the limit.
pub fn parser_diff(data: &[u8]) {
    let Some((&[mode, arg, flags, seed], body)) = data.split_first_chunk::<4>() else {
        return;
    };
    let max = limit(mode, arg);
    let (detach, two, drip, cuts) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0, flags >> 3);
    let mut rng = Rng::new(seed, body.len());
    let streams = if two {
        let at = rng.below(body.len() + 1);
        vec![&body[..at], &body[at..]]
    } else {
        vec![body]
    };
    let mut whole_parser = Parser::new(max);
    let mut cut_parser = Parser::new(max);
    let mut reference = Reference { last_event_id: String::new() };
    let mut fed = 0;
    for s in streams {
        let show = || format!("limit {max}, stream {:?}", String::from_utf8_lossy(s));
        let whole = feed(&mut whole_parser, &[s], false, fed);
        let chunks = if drip { s.chunks(1).collect() } else { cut(s, cuts.into(), &mut rng) };
        let got = feed(&mut cut_parser, &chunks, detach, fed);
        fed += s.len();
        assert_eq!(got, whole, "chunked {chunks:?} vs whole, {}", show());
        let want = reference.stream(s);
        match whole.items.iter().position(|i| matches!(i, Out::Error(_))) {
            None => assert_eq!(whole, want, "parser vs reference, {}", show()),
            Some(at) => {
                assert_eq!(whole.items[at], Out::Error(ErrorKind::EventTooLarge), "{}", show());
                assert!(
                    max < s.len(),
                    "an error with a limit above the stream's length, {}",
                    show()
                );
                assert!(
                    want.items.starts_with(&whole.items[..at]),
                    "items before the error vs reference {:?}, {}",
                    want.items,
                    show()
                );
                // The parser's stream ended at the error; the next one starts from its state.
                reference.last_event_id = whole.last_event_id.clone();
            }
        }
    }
}

/// Feeds `chunks` as one stream (after `begin_stream`), stopping at the first error, and
/// checks the buffers' bound after each chunk. `before`: bytes the parser was fed earlier.
fn feed(p: &mut Parser, chunks: &[&[u8]], detach: bool, before: usize) -> Run {
    p.begin_stream(Text::from(ORIGIN));
    let mut items = Vec::new();
    let mut fed = before;
    for c in chunks {
        fed += c.len();
        let r = p.feed(Bytes::copy_from_slice(c), &mut |i| items.push(to_out(i)));
        // The partial line holds at most the limit and a byte (or a field name), the data
        // buffer at most the limit, each neither more than was fed; a `Vec` at most doubles
        // what it held.
        let most = p.max_event_size().max(5).saturating_add(1).min(fed);
        let bound = most.saturating_mul(4).saturating_add(32);
        let cap = p.buffer_capacity();
        assert!(cap <= bound, "buffers of {cap} bytes after {fed} bytes (bound {bound})");
        if let Err(e) = r {
            items.push(Out::Error(e.kind()));
            break;
        }
        if detach {
            p.detach();
        }
    }
    Run { items, last_event_id: p.last_event_id().to_string() }
}

/// A parsed head: status, reason, fields.
pub type HeadParts = (u16, String, Vec<(String, Vec<u8>)>);

/// What a response's bytes gave: every head (interim ones first), the body, how it ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub heads: Vec<HeadParts>,
    pub body: Vec<u8>,
    /// The first error (head, framing or body), if any.
    pub error: Option<String>,
    /// The body was complete, with this many bytes after its end.
    pub rest: Option<usize>,
    /// Without a complete body: whether a close of the connection here ends it cleanly.
    pub eof: Option<Result<(), String>>,
}

/// Fuzz target `http1_decoder`. The input is two header bytes and the bytes of a response:
/// - `flags`: bits 0–4, how many random cuts; bit 5, one byte a chunk; bits 6 and 7 both set, the
///   head gets a field of 60 KiB + `seed` × 32 bytes after its first line (heads around the
///   64 KiB limit);
/// - `seed`: for the cut points.
///
/// No panic; the head and the decoder keep their bounds (a partial head under the limit, no
/// body bytes held back); and the response reads the same in one chunk and cut up (except
/// that a head over the limit may fail as too large cut up and as malformed whole, when the
/// fault lies past the limit).
pub fn http1_decoder(data: &[u8]) {
    let Some((&[flags, seed], raw)) = data.split_first_chunk::<2>() else {
        return;
    };
    let padded;
    let raw = if flags >> 6 == 3 {
        let at = raw.iter().position(|&b| b == b'\n').map_or(raw.len(), |i| i + 1);
        let mut v = raw[..at].to_vec();
        v.extend_from_slice(b"x-pad: ");
        v.resize(v.len() + 60 * 1024 + usize::from(seed) * 32, b'p');
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(&raw[at..]);
        padded = v;
        &padded[..]
    } else {
        raw
    };
    let mut rng = Rng::new(seed, raw.len());
    let chunks = if flags & 0x20 != 0 {
        raw.chunks(1).collect()
    } else {
        cut(raw, usize::from(flags & 0x1f), &mut rng)
    };
    let mut whole = read_response(&[raw]);
    let mut got = read_response(&chunks);
    if let (Some(a), Some(b)) = (&mut whole.error, &mut got.error)
        && (a.contains(TOO_LARGE) || b.contains(TOO_LARGE))
    {
        (*a, *b) = (TOO_LARGE.to_owned(), TOO_LARGE.to_owned());
    }
    let lens: Vec<usize> = chunks.iter().take(16).map(|c| c.len()).collect();
    let head = String::from_utf8_lossy(&raw[..raw.len().min(300)]);
    let pieces = chunks.len();
    assert_eq!(got, whole, "{pieces} pieces {lens:?}…, {} bytes from {head:?}", raw.len());
}

/// The error for a head over `MAX_HEAD`.
const TOO_LARGE: &str = "the response head is larger than";

/// Whether `buf` holds an empty line ending at or after `from`: the transport parses a head
/// only then (so a head arriving a byte at a time costs linear time), and fails one that
/// grows to `MAX_HEAD` without it.
fn has_blank_line(buf: &[u8], from: usize) -> bool {
    let start = from.saturating_sub(2);
    buf[start..].windows(2).enumerate().any(|(i, w)| {
        w == b"\n\n" || (w == b"\r\n" && start + i >= 1 && buf[start + i - 1] == b'\n')
    })
}

/// Reads a response arriving in `chunks` as the transport does: heads (skipping interim 1xx
/// ones, at most 8), then the body, until it is complete, an error, or the end of the bytes.
///
/// At the end of the bytes, a head still incomplete is parsed once more whatever the blank
/// lines: the transport looks at a head only when a blank line arrives, so a head whose
/// first blank line came early (`\n\n` and then garbage) is failed at once when it arrives
/// whole, and cut up only at 64 KiB or the end of the connection. The comparison is of what
/// the bytes say, not of when the transport looks.
pub fn read_response(chunks: &[&[u8]]) -> Response {
    let total: usize = chunks.iter().map(|c| c.len()).sum();
    let mut r =
        Response { heads: Vec::new(), body: Vec::new(), error: None, rest: None, eof: None };
    let mut buf = BytesMut::new();
    let mut decoder: Option<Decoder> = None;
    let mut fed = 0;
    let mut scanned = 0;
    for (k, c) in chunks.iter().chain([&&[][..]]).enumerate() {
        let end = k == chunks.len();
        buf.extend_from_slice(c);
        fed += c.len();
        while decoder.is_none() {
            if !end && !has_blank_line(&buf, scanned) {
                if buf.len() >= __fuzz::MAX_HEAD {
                    r.error = Some(format!("{TOO_LARGE} {} KiB", __fuzz::MAX_HEAD / 1024));
                    return r;
                }
                scanned = buf.len();
                break;
            }
            match __fuzz::parse_head(&mut buf) {
                Ok(None) => {
                    assert!(buf.len() < __fuzz::MAX_HEAD, "a partial head of {} bytes", buf.len());
                    scanned = buf.len();
                    break;
                }
                Err(e) => {
                    r.error = Some(e);
                    return r;
                }
                Ok(Some(h)) => {
                    check_head(&h);
                    scanned = 0;
                    r.heads.push((h.status(), h.reason().to_owned(), h.headers().to_vec()));
                    if (100..200).contains(&h.status()) && h.status() != 101 && r.heads.len() < 8 {
                        continue;
                    }
                    match Decoder::for_head(&h) {
                        Ok(d) => decoder = Some(d),
                        Err(e) => {
                            r.error = Some(e);
                            return r;
                        }
                    }
                }
            }
        }
        let Some(d) = &mut decoder else { continue };
        let before = r.body.len();
        let start = buf.len();
        match d.decode(&mut buf, &mut |b: Bytes| r.body.extend_from_slice(&b)) {
            Ok(true) => {
                assert!(r.body.len() - before <= start, "more body than bytes");
                r.rest = Some(buf.len() + total - fed);
                return r;
            }
            Ok(false) => assert!(buf.is_empty(), "{} body bytes held back", buf.len()),
            Err(e) => {
                r.error = Some(e);
                return r;
            }
        }
    }
    if let Some(d) = &decoder {
        r.eof = Some(d.eof_is_end());
    }
    r
}

/// A head's bounds: the field count, lowercase names, a short reason.
fn check_head(h: &Head) {
    assert!(h.headers().len() <= __fuzz::MAX_HEADERS);
    assert!(h.reason().chars().count() <= 100);
    for (name, value) in h.headers() {
        assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "name {name:?}");
        assert_eq!(h.get(name), h.headers().iter().find(|(n, _)| n == name).map(|(_, v)| &v[..]));
        assert!(value.len() < __fuzz::MAX_HEAD);
    }
    let reason = __fuzz::reason(h.status(), h.reason());
    assert!(reason.chars().count() <= 64);
    assert!(reason.chars().all(|c| c.is_ascii_graphic() || c == ' '), "reason {reason:?}");
}

/// Fuzz target `scan`: the parser's UTF-8 validator and line-ending searches (SIMD code with
/// `unsafe` loads, masked ones at a chunk's end) against the standard library, on the input
/// with up to 32 bytes cut from each end (every alignment of a 32- or 64-byte block, and every
/// tail length). The line-ending scan is asked from the positions the parser asks from: after
/// each line ending, or one further (after a CRLF), as the input's bytes say.
pub fn scan(data: &[u8]) {
    let n = data.len();
    for cut in 0..=n.min(32) {
        for b in [&data[cut..], &data[..n - cut]] {
            let want = std::str::from_utf8(b).map_or_else(|e| e.valid_up_to(), |_| b.len());
            assert_eq!(__fuzz::utf8_is_valid(b), want == b.len(), "is_valid({b:x?})");
            assert_eq!(__fuzz::utf8_valid_prefix(b), want, "valid_prefix({b:x?})");
            let eol = b.iter().position(|&c| c == b'\n' || c == b'\r');
            assert_eq!(__fuzz::find_eol(b), eol, "find_eol({b:x?})");
        }
    }
    let mut scan = EolScan::new(data);
    let mut from = 0;
    loop {
        let want = data.get(from..).and_then(|b| b.iter().position(|&c| c == b'\n' || c == b'\r'));
        let got = scan.next(from);
        assert_eq!(got, want.map(|i| from + i), "EolScan::next({from}) of {} bytes", n);
        let Some(eol) = got else { break };
        from = eol + 1 + usize::from(data.get(eol + 1) == Some(&b'\n') && data[eol] == b'\r');
    }
}
