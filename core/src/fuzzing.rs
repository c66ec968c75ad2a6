//! Crate-private code opened to the fuzz targets in `fuzz/` and the corpus replay test
//! (`tests/fuzz_corpus.rs`), behind the `fuzzing` feature. Not a public API.
//!
//! The HTTP/1.1 wire format (`transport/lean/http1.rs`) is compiled here a second time, as a module
//! of its own: the transport keeps it private, and this way the fuzz build needs neither the
//! `client` feature nor tokio. Same source, so the fuzzers test what the transport runs.
//!
//! The UTF-8 validator and the line-ending search (SIMD, `unsafe`) are opened too, for the
//! target that checks them against the standard library.

use bytes::{Bytes, BytesMut};

// The transport uses parts of it that the wrappers below do not; and with `client`, the file is
// compiled twice on purpose (see above).
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "transport/lean/http1.rs"]
mod http1;

/// Largest response head accepted.
pub const MAX_HEAD: usize = http1::MAX_HEAD;
/// Most header fields accepted in one response head.
pub const MAX_HEADERS: usize = http1::MAX_HEADERS;

/// A parsed response head.
pub struct Head(http1::Head);

impl Head {
    pub fn status(&self) -> u16 {
        self.0.status
    }

    /// The server's reason phrase (at most 100 characters).
    pub fn reason(&self) -> &str {
        &self.0.reason
    }

    /// The header fields: lowercase names, values as sent, in order.
    pub fn headers(&self) -> &[(String, Vec<u8>)] {
        &self.0.headers
    }

    /// The first value of the field `name` (lowercase).
    pub fn get<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.0.get(name)
    }
}

/// Parses a response head at the start of `buf`, consuming it. `Ok(None)`: incomplete.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, String> {
    http1::parse_head(buf).map(|h| h.map(Head))
}

/// The reason phrase the transport's messages give for `status`.
pub fn reason(status: u16, theirs: &str) -> String {
    http1::reason(status, theirs)
}

/// The body framing of a response.
pub struct Decoder(http1::Decoder);

impl Decoder {
    /// How the body of the response with `head` is delimited.
    pub fn for_head(head: &Head) -> Result<Decoder, String> {
        http1::decoder_for(&head.0).map(Decoder)
    }

    /// Takes the body bytes in `buf` out of it, handing each data piece to `data`. True once
    /// the body is complete; bytes after its end are left in `buf`.
    pub fn decode(
        &mut self,
        buf: &mut BytesMut,
        data: &mut impl FnMut(Bytes),
    ) -> Result<bool, String> {
        self.0.decode(buf, data)
    }

    /// Whether the connection may close here.
    pub fn eof_is_end(&self) -> Result<(), String> {
        self.0.eof_is_end()
    }
}

/// Whether `b` is valid UTF-8, as the parser's chunk validator says (SIMD where the CPU has it).
pub fn utf8_is_valid(b: &[u8]) -> bool {
    crate::utf8::is_valid(b)
}

/// The length of the longest valid UTF-8 prefix of `b`, as the parser computes it.
pub fn utf8_valid_prefix(b: &[u8]) -> usize {
    crate::utf8::valid_prefix(b)
}

/// The first CR or LF in `b`, as the parser searches for it.
pub fn find_eol(b: &[u8]) -> Option<usize> {
    crate::lines::find_eol(b)
}

/// The parser's scan for the line endings of a chunk.
pub struct EolScan<'a>(crate::lines::EolScan<'a>);

impl<'a> EolScan<'a> {
    pub fn new(buf: &'a [u8]) -> EolScan<'a> {
        EolScan(crate::lines::EolScan::new(buf))
    }

    /// The first line ending at or after `from` (`from >=` every earlier answer's position).
    pub fn next(&mut self, from: usize) -> Option<usize> {
        self.0.next(from)
    }
}
