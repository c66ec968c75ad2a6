//! The incremental event-stream parser (WHATWG HTML §9.2.6), exact for any chunking.
//!
//! Why it looks like this: the parser sits on the hot path of every byte a source receives, so
//! it works on the network chunks in place instead of decoding them into a `String` first.
//!
//! - CR, LF and `:` are ASCII, so lines and fields are split on **bytes**, and only the values
//!   that are kept (data, id, event type) are decoded, each once, with Rust's lossy UTF-8
//!   decoder. That decoder replaces each maximal subpart of an invalid sequence with U+FFFD, as
//!   the WHATWG decoder does, and a line terminator can never be inside a multi-byte sequence,
//!   so this equals decoding the whole stream first. Only complete lines are decoded, so a
//!   character split across chunks decodes right.
//! - UTF-8 is checked once per chunk, not per line: one pass of `utf8::valid_prefix` over the
//!   chunk (from the first byte not yet checked) tells which lines are valid, so most kept
//!   values need no check of their own. A line cut by the chunk's end is checked once too: its
//!   head with this chunk and its tail with the next one (unless a character was cut).
//! - Complete lines are processed as slices of the chunk. Only a trailing partial line is copied,
//!   into a carry buffer bounded by `max_event_size`; a partial comment or unknown field is not
//!   copied at all (the rest of it is skipped).
//! - An event whose data is one line is emitted as a slice of the chunk that held the line (no
//!   copy; `text::Slicer` takes the chunk's counts in bulk, so a chunk of many such events costs
//!   one atomic add and one small allocation, and each event only its release). Any other event
//!   is copied once, into an exact-size buffer, at dispatch; the accumulation buffer is reused.
//!   The type `message` is static; ids and custom types are slices of the chunk or reused from
//!   the previous event. So a dispatched event costs at most one allocation, and the common one
//!   costs none.
//!
//! Kept values that are slices of a chunk keep that chunk's buffer alive while they live.

use bytes::Bytes;

use crate::lines::{EolScan, find_eol};
use crate::text::Slicer;
use crate::{Error, ErrorKind, MessageEvent, Text, utf8};

/// What the parser produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A dispatched event (non-empty data buffer at a blank line).
    Message(MessageEvent),
    /// A valid `retry:` field, in milliseconds: takes effect at once. Values above
    /// [`MAX_RETRY_MS`] are clamped to it.
    Retry(u64),
}

/// Where [`Parser::feed_to`] puts what it parses. The connection's sink builds each event in
/// place in its batch: built here and moved there, a 104-byte event was copied twice more
/// (each copy read back right after it was written: a store-forwarding stall).
pub(crate) trait Sink {
    /// A message: its type, data and last event ID, and the origin the sink clones where it
    /// keeps it.
    fn message(&mut self, event_type: Text, data: Text, last_event_id: Text, origin: &Text);
    /// A valid `retry:` field (see [`Item::Retry`]).
    fn retry(&mut self, ms: u64);
}

/// The closure of [`Parser::feed`] as a [`Sink`].
struct Emit<'a, F>(&'a mut F);

impl<F: FnMut(Item)> Sink for Emit<'_, F> {
    #[inline(always)]
    fn message(&mut self, event_type: Text, data: Text, last_event_id: Text, origin: &Text) {
        (self.0)(Item::Message(MessageEvent {
            event_type,
            data,
            last_event_id,
            origin: origin.clone(),
        }));
    }

    #[inline(always)]
    fn retry(&mut self, ms: u64) {
        (self.0)(Item::Retry(ms));
    }
}

/// The largest reconnection time a `retry:` field can set: one day, in milliseconds. The spec
/// allows clamping very large values; this keeps timer arithmetic far from overflow.
pub const MAX_RETRY_MS: u64 = 24 * 60 * 60 * 1000;

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
/// The longest known field name (`event`, `retry`).
const LONGEST_FIELD: usize = 5;

/// The data buffer.
#[derive(Debug, Default)]
enum Data {
    /// No `data` field yet.
    #[default]
    None,
    /// Exactly one `data` line: its raw value, a slice of the chunk it came in.
    One(Bytes),
    /// Exactly one `data` line, in the chunk being fed: its raw value is `chunk[start..end]`.
    /// Becomes `One` when that `feed` returns (no `Bytes` is made unless the event spans chunks).
    OneHere { start: usize, end: usize },
    /// Raw values joined by LF (no trailing LF) in `Parser::data`.
    Many,
}

/// The byte-order-mark check at the start of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BomState {
    /// This many leading bytes of the stream matched the BOM so far (held back, not yet used).
    Matching(u8),
    Done,
}

/// One source's parser. Persists the last event ID string across streams.
#[derive(Debug)]
pub struct Parser {
    max_event_size: usize,
    /// The last event ID string: persists across streams.
    last_event_id: Text,
    origin: Text,
    // --- per-stream state ---
    /// The last-event-ID buffer when an `id:` set it since the last dispatch (else the buffer
    /// holds `last_event_id`). Moved, not copied, into `last_event_id` at dispatch.
    new_id: Option<Text>,
    /// The event-type buffer (empty: type `message`).
    event_type: Text,
    /// The last custom type seen, reused when the next `event:` has the same bytes.
    type_cache: Text,
    data_state: Data,
    data: Vec<u8>,
    /// The start of a line that did not end in the previous chunk (a known field's, raw).
    carry: Vec<u8>,
    /// `carry` is known to be valid UTF-8 ending at a character boundary.
    carry_utf8: bool,
    /// The partial line is a comment or an unknown field: skip to the end of the line.
    skipping: bool,
    /// The previous chunk ended with CR: an LF at the start of the next one is part of it.
    last_was_cr: bool,
    bom: BomState,
    /// Set once `feed` returned an error, until the next `begin_stream`.
    failed: Option<Error>,
    /// Some kept value (id, type, pending data line) is a slice of a network chunk.
    borrowed: bool,
    /// The line being processed is known to be valid UTF-8 (checked with its chunk).
    line_utf8: bool,
    /// Every line in the data buffer is known to be valid UTF-8 (no check at dispatch).
    data_utf8: bool,
}

/// Where the line being processed lies.
#[derive(Clone, Copy)]
enum Src<'a> {
    /// Inside this chunk: kept values can be slices of it.
    Chunk(&'a Slicer),
    /// In the carry buffer: kept values are copied.
    Carry,
}

impl Src<'_> {
    /// A copy of `t` (for an event): a slice of this chunk takes one of the slicer's counts,
    /// with no atomic operation (an event id that changes with each event was five of them).
    #[inline(always)]
    fn share(self, t: &Text) -> Text {
        match self {
            Src::Chunk(slicer) => slicer.share(t),
            Src::Carry => t.clone(),
        }
    }

    /// Drops `t`: a slice of this chunk gives its count back to the slicer.
    #[inline(always)]
    fn give_back(self, t: Text) {
        if let Src::Chunk(slicer) = self {
            slicer.give_back(t);
        }
    }
}

impl Parser {
    /// The largest effective `max_event_size`: `isize::MAX`, the most a `Vec` can hold.
    pub const MAX_LIMIT: usize = isize::MAX as usize;

    /// A parser that fails any line or event longer than `max_event_size` bytes.
    ///
    /// A limit above [`MAX_LIMIT`](Self::MAX_LIMIT) (no buffer can be that large anyway) is
    /// taken as `MAX_LIMIT`, so the parser's size arithmetic cannot overflow.
    ///
    /// It starts as if [`begin_stream`](Self::begin_stream) had been called with an empty
    /// origin, so it can be used on its own.
    pub fn new(max_event_size: usize) -> Parser {
        Parser {
            max_event_size: max_event_size.min(Parser::MAX_LIMIT),
            last_event_id: Text::new(),
            origin: Text::new(),
            new_id: None,
            event_type: Text::new(),
            type_cache: Text::new(),
            data_state: Data::None,
            data: Vec::new(),
            carry: Vec::new(),
            carry_utf8: false,
            skipping: false,
            last_was_cr: false,
            bom: BomState::Matching(0),
            failed: None,
            borrowed: false,
            line_utf8: false,
            data_utf8: false,
        }
    }

    /// Starts a new response body: resets the data and event-type buffers, the partial line,
    /// the CR state and the BOM check; keeps the last event ID string (and re-seeds the
    /// last-event-ID buffer from it, so an `id:` of an event cut off by the end of the previous
    /// stream is forgotten). `origin` goes on every event of this stream (a long one is
    /// interned, so that each event's copy costs no atomic operation: see `Text::interned`).
    pub fn begin_stream(&mut self, origin: Text) {
        self.origin = origin.interned();
        self.reset_stream();
    }

    /// Ends the current stream: discards the partial line and the half-built event (including
    /// its `id:`), and releases any chunk memory they held. Optional: `begin_stream` does it too.
    pub fn end_stream(&mut self) {
        self.reset_stream();
        self.carry = Vec::new();
        self.data = Vec::new();
    }

    fn reset_stream(&mut self) {
        self.new_id = None;
        self.event_type = Text::new();
        self.data_state = Data::None;
        self.data.clear();
        self.carry.clear();
        self.carry_utf8 = false;
        self.skipping = false;
        self.last_was_cr = false;
        self.bom = BomState::Matching(0);
        self.failed = None;
    }

    /// Copies the values the parser keeps between chunks (the id, the cached event type, a
    /// pending one-line data value) out of the network chunks they were sliced from, so a
    /// stream that goes quiet does not pin a whole read buffer. Call it before waiting for the
    /// network; it costs nothing unless a kept value is such a slice (then a few small copies).
    pub fn detach(&mut self) {
        if !std::mem::take(&mut self.borrowed) {
            return;
        }
        let own = |t: &Text| if t.is_empty() { Text::new() } else { Text::from(t.as_str()) };
        self.new_id = self.new_id.as_ref().map(own);
        self.last_event_id = own(&self.last_event_id);
        let cached = self.event_type.as_bytes() == self.type_cache.as_bytes();
        self.type_cache = own(&self.type_cache);
        self.event_type = if cached { self.type_cache.clone() } else { own(&self.event_type) };
        if let Data::One(first) = &self.data_state {
            self.data.clear();
            self.data.extend_from_slice(first);
            self.data_state = Data::Many;
        }
    }

    /// The last event ID string (what reconnections send as `Last-Event-ID`).
    pub fn last_event_id(&self) -> &Text {
        &self.last_event_id
    }

    /// Sets the last event ID string (the `last_event_id` option), and the last-event-ID buffer.
    pub fn set_last_event_id(&mut self, id: Text) {
        self.new_id = None;
        self.last_event_id = id;
    }

    /// The limit given to [`new`](Self::new), at most [`MAX_LIMIT`](Self::MAX_LIMIT).
    pub fn max_event_size(&self) -> usize {
        self.max_event_size
    }

    /// Bytes the parser holds in its own buffers (partial line and multi-line data), by
    /// capacity. Bounded by about `max_event_size` (plus one) for each: long comments and
    /// unknown fields are skipped without being buffered.
    pub fn buffer_capacity(&self) -> usize {
        self.carry.capacity() + self.data.capacity()
    }

    /// Feeds bytes that are not in a `Bytes` (copies them once). See [`feed`](Self::feed).
    pub fn feed_slice(&mut self, chunk: &[u8], emit: &mut impl FnMut(Item)) -> Result<(), Error> {
        self.feed(Bytes::copy_from_slice(chunk), emit)
    }

    /// Feeds one chunk, emitting each completed item in order.
    ///
    /// Returns an [`ErrorKind::EventTooLarge`] error when a `data`, `event`, `id` or `retry`
    /// line, or the data of one event, exceeds `max_event_size` bytes (comments and unknown
    /// fields of any length are skipped). Items completed before the offending line have been
    /// emitted. After an error the stream is dead: further `feed`s return the same error until
    /// the next `begin_stream`.
    pub fn feed(&mut self, chunk: Bytes, emit: &mut impl FnMut(Item)) -> Result<(), Error> {
        self.feed_to(chunk, &mut Emit(emit))
    }

    /// [`feed`](Self::feed), handing what it parses to `sink`.
    #[inline]
    pub(crate) fn feed_to(&mut self, chunk: Bytes, sink: &mut impl Sink) -> Result<(), Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let slicer = Slicer::new(chunk);
        let r = self.feed_inner(&slicer, sink);
        if let Data::OneHere { start, end } = self.data_state {
            self.data_state = Data::One(slicer.slice(start..end));
            self.borrowed = true;
        }
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    fn feed_inner(&mut self, slicer: &Slicer, sink: &mut impl Sink) -> Result<(), Error> {
        let buf = slicer.bytes();
        let len = buf.len();
        let mut pos = 0;
        if len == 0 {
            return Ok(());
        }

        // The byte-order mark: exactly one, possibly split across chunks.
        if let BomState::Matching(mut n) = self.bom {
            while (n as usize) < BOM.len() && pos < len && buf[pos] == BOM[n as usize] {
                n += 1;
                pos += 1;
            }
            if n as usize == BOM.len() {
                self.bom = BomState::Done;
            } else if pos == len {
                self.bom = BomState::Matching(n);
                return Ok(());
            } else {
                // Not a BOM: the bytes held back are the start of the first line.
                self.bom = BomState::Done;
                self.carry.extend_from_slice(&BOM[..n as usize]);
                self.carry_utf8 = false;
            }
        }

        // A CR ended the previous chunk: an LF here completes that line ending.
        if self.last_was_cr {
            self.last_was_cr = false;
            if buf[pos] == b'\n' {
                pos += 1;
            }
        }

        // The line the previous chunk left open ends at `open_eol` (`None`: not in this chunk).
        let open = self.skipping || !self.carry.is_empty();
        let open_eol = if open { find_eol(&buf[pos..]).map(|off| pos + off) } else { None };
        // One UTF-8 check for the chunk: `buf[vfrom..vto]` is valid. It starts at `pos` (a line
        // start, or the tail of a carried line whose head is valid and ends at a character
        // boundary), else after the open line (checked on its own at use).
        let vfrom =
            if open && (self.skipping || !self.carry_utf8) { open_eol.unwrap_or(len) } else { pos };
        let vto = vfrom + utf8::valid_prefix(&buf[vfrom..]);

        // Finish the line that the previous chunk left open.
        if open {
            let Some(eol) = open_eol else {
                if !self.skipping {
                    self.append_partial(&buf[pos..])?;
                    self.carry_utf8 &= vfrom == pos && vto == len;
                }
                return Ok(());
            };
            if self.skipping {
                self.skipping = false;
            } else {
                self.line_utf8 = self.carry_utf8 && vfrom == pos && eol <= vto;
                self.finish_carried_line(&buf[pos..eol], sink)?;
            }
            pos = self.after_eol(buf, eol);
        }

        // Complete lines inside the chunk.
        let mut start = pos;
        let mut eols = EolScan::new(buf);
        while let Some(eol) = eols.next(start) {
            let utf8 = start >= vfrom && eol <= vto;
            let line = &buf[start..eol];
            let next = self.after_eol(buf, eol);
            // The common lines without a call: `data:` and the blank line.
            if line.starts_with(b"data:") {
                if line.len() > self.max_event_size {
                    return Err(self.too_large_line());
                }
                let vs = start + 5 + usize::from(line.get(5) == Some(&b' '));
                let value = &buf[vs..eol];
                // Fast path: the whole event is this line and the blank line, in this chunk.
                if let (Data::None, Some(b'\n' | b'\r')) = (&self.data_state, buf.get(next)) {
                    // `value` is the line after an ASCII prefix: valid if the line is.
                    let data = decode_value(Src::Chunk(slicer), value, utf8);
                    self.emit_message(Src::Chunk(slicer), data, sink);
                    start = self.after_eol(buf, next);
                    continue;
                }
                self.line_utf8 = utf8;
                self.push_data(Src::Chunk(slicer), value)?;
            } else if line.is_empty() {
                self.dispatch(Src::Chunk(slicer), sink);
            } else {
                self.line_utf8 = utf8;
                self.process_line(Src::Chunk(slicer), line, sink)?;
            }
            start = next;
        }

        // The trailing partial line (the carry is empty here).
        if start < len {
            self.append_partial(&buf[start..])?;
            self.carry_utf8 = start >= vfrom && vto == len;
        }
        Ok(())
    }

    /// The position after the line ending at `eol` (CR, LF or CRLF).
    #[inline]
    fn after_eol(&mut self, buf: &[u8], eol: usize) -> usize {
        if buf[eol] == b'\r' {
            match buf.get(eol + 1) {
                Some(b'\n') => eol + 2,
                Some(_) => eol + 1,
                None => {
                    self.last_was_cr = true;
                    eol + 1
                }
            }
        } else {
            eol + 1
        }
    }

    /// The partial line grows by `bytes` (no line ending in them). Keeps it only if it is (or
    /// may still be) a known field, bounded by `max_event_size`.
    fn append_partial(&mut self, bytes: &[u8]) -> Result<(), Error> {
        // Copy at most one byte past the limit (and enough to tell a field name), so the
        // carry never grows beyond the limit by more than that.
        let cap = self.max_event_size.max(LONGEST_FIELD).saturating_add(1);
        let take = bytes.len().min(cap.saturating_sub(self.carry.len()));
        self.carry.extend_from_slice(&bytes[..take]);
        if !line_may_be_field(&self.carry) {
            self.carry.clear();
            self.skipping = true;
            return Ok(());
        }
        // Over the limit is an error once the field name is known (a colon was seen); a
        // shorter prefix without a colon is at most `LONGEST_FIELD` bytes.
        if self.carry.len() > self.max_event_size && memchr::memchr(b':', &self.carry).is_some() {
            return Err(self.too_large_line());
        }
        Ok(())
    }

    /// The open line ends with `tail` (the bytes before its line ending in this chunk).
    fn finish_carried_line(&mut self, tail: &[u8], sink: &mut impl Sink) -> Result<(), Error> {
        let cap = self.max_event_size.max(LONGEST_FIELD).saturating_add(1);
        let take = tail.len().min(cap.saturating_sub(self.carry.len()));
        self.carry.extend_from_slice(&tail[..take]);
        let line = std::mem::take(&mut self.carry);
        let r = if take < tail.len() {
            // Cut at more than the limit (and more than a field name): an error unless the
            // line is ignored anyway.
            if line_may_be_field(&line) { Err(self.too_large_line()) } else { Ok(()) }
        } else {
            // Complete: checks the limit for known fields itself.
            self.process_line(Src::Carry, &line, sink)
        };
        self.carry = line;
        self.carry.clear();
        r
    }

    fn too_large_line(&self) -> Error {
        Error::new(
            ErrorKind::EventTooLarge,
            format!(
                "a line of the event stream is longer than the limit of {} bytes \
                 (max_event_size); raise max_event_size if such lines are expected",
                self.max_event_size
            ),
        )
    }

    fn too_large_data(&self) -> Error {
        Error::new(
            ErrorKind::EventTooLarge,
            format!(
                "the data of an event is longer than the limit of {} bytes \
                 (max_event_size); raise max_event_size if such events are expected",
                self.max_event_size
            ),
        )
    }

    /// Interprets one complete line (without its line ending).
    #[inline]
    fn process_line(
        &mut self,
        src: Src<'_>,
        line: &[u8],
        sink: &mut impl Sink,
    ) -> Result<(), Error> {
        let Some(&first) = line.first() else {
            self.dispatch(src, sink);
            return Ok(());
        };
        if first == b':' {
            return Ok(());
        }
        // The common line first.
        if let Some(v) = line.strip_prefix(b"data:") {
            if line.len() > self.max_event_size {
                return Err(self.too_large_line());
            }
            return self.push_data(src, v.strip_prefix(b" ").unwrap_or(v));
        }
        // A known field name is at most `LONGEST_FIELD` bytes: only the line's head can hold
        // its colon (an inline search; a `memchr` call costs more on lines this short).
        let head = &line[..line.len().min(LONGEST_FIELD + 1)];
        let (name, value): (&[u8], &[u8]) = match head.iter().position(|&c| c == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            // No colon: the whole line is the name (a known one only if it is that short).
            None if line.len() <= LONGEST_FIELD => (line, &[]),
            None => return Ok(()),
        };
        match name {
            b"data" => {
                if line.len() > self.max_event_size {
                    return Err(self.too_large_line());
                }
                self.push_data(src, value)
            }
            b"event" => {
                if line.len() > self.max_event_size {
                    return Err(self.too_large_line());
                }
                self.event_type = if value.is_empty() {
                    Text::new()
                } else if same(value, self.type_cache.as_bytes()) {
                    self.type_cache.clone()
                } else {
                    self.type_cache = decode_value(src, value, self.line_utf8);
                    self.borrowed |= matches!(src, Src::Chunk(_));
                    self.type_cache.clone()
                };
                Ok(())
            }
            b"id" => {
                if line.len() > self.max_event_size {
                    return Err(self.too_large_line());
                }
                let buffer = self.new_id.as_ref().unwrap_or(&self.last_event_id);
                if !same(value, buffer.as_bytes()) && !has_nul(value) {
                    if let Some(old) = self.new_id.replace(decode_value(src, value, self.line_utf8))
                    {
                        src.give_back(old);
                    }
                    self.borrowed |= matches!(src, Src::Chunk(_));
                }
                Ok(())
            }
            b"retry" => {
                if line.len() > self.max_event_size {
                    return Err(self.too_large_line());
                }
                if !value.is_empty() && value.iter().all(u8::is_ascii_digit) {
                    let ms = value.iter().fold(0u64, |acc, &d| {
                        acc.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                    });
                    sink.retry(ms.min(MAX_RETRY_MS));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    #[inline]
    fn push_data(&mut self, src: Src<'_>, value: &[u8]) -> Result<(), Error> {
        match (&self.data_state, src) {
            (Data::None, Src::Chunk(slicer)) => {
                let start = if value.is_empty() { 0 } else { offset_in(slicer.bytes(), value) };
                self.data_state = Data::OneHere { start, end: start + value.len() };
                self.data_utf8 = self.line_utf8;
            }
            (Data::None, Src::Carry) => {
                self.data_utf8 = self.line_utf8;
                self.data.clear();
                self.data.extend_from_slice(value);
                self.data_state = Data::Many;
            }
            (&Data::OneHere { start, end }, Src::Chunk(slicer)) => {
                if end - start + 1 + value.len() > self.max_event_size {
                    return Err(self.too_large_data());
                }
                self.data.clear();
                self.data.extend_from_slice(&slicer.bytes()[start..end]);
                self.data.push(b'\n');
                self.data.extend_from_slice(value);
                self.data_state = Data::Many;
                self.data_utf8 &= self.line_utf8;
            }
            (Data::OneHere { .. }, Src::Carry) => {
                unreachable!("a carried line is processed before any line of the chunk")
            }
            (Data::One(first), _) => {
                if first.len() + 1 + value.len() > self.max_event_size {
                    return Err(self.too_large_data());
                }
                self.data.clear();
                self.data.extend_from_slice(first);
                self.data.push(b'\n');
                self.data.extend_from_slice(value);
                self.data_state = Data::Many;
                self.data_utf8 &= self.line_utf8;
            }
            (Data::Many, _) => {
                if self.data.len() + 1 + value.len() > self.max_event_size {
                    return Err(self.too_large_data());
                }
                self.data_utf8 &= self.line_utf8;
                self.data.push(b'\n');
                self.data.extend_from_slice(value);
            }
        }
        Ok(())
    }

    /// The blank line: dispatch the event (§6.6).
    #[inline(never)]
    fn dispatch(&mut self, src: Src<'_>, sink: &mut impl Sink) {
        let data = match std::mem::take(&mut self.data_state) {
            Data::None => {
                self.take_new_id(src);
                self.event_type = Text::new();
                return;
            }
            Data::One(bytes) => to_text(bytes),
            Data::OneHere { start, end } => {
                let Src::Chunk(slicer) = src else { unreachable!("a blank line is never carried") };
                decode_value(src, &slicer.bytes()[start..end], self.data_utf8)
            }
            Data::Many => {
                let t = decode_value(Src::Carry, &self.data, self.data_utf8);
                self.data.clear();
                t
            }
        };
        self.emit_message(src, data, sink);
    }

    /// Dispatch step 1: the last-event-ID buffer becomes the last event ID string.
    #[inline(always)]
    fn take_new_id(&mut self, src: Src<'_>) {
        if let Some(id) = self.new_id.take() {
            src.give_back(std::mem::replace(&mut self.last_event_id, id));
        }
    }

    /// Dispatch steps 3–5 for a non-empty data buffer, given as `data` (without its final LF).
    #[inline(always)]
    fn emit_message(&mut self, src: Src<'_>, data: Text, sink: &mut impl Sink) {
        self.take_new_id(src);
        /// Cloned rather than built: see `Text::clone`.
        static MESSAGE: Text = Text::from_static("message");
        let mut event_type = std::mem::take(&mut self.event_type);
        if event_type.is_empty() {
            event_type = MESSAGE.clone();
        }
        sink.message(event_type, data, src.share(&self.last_event_id), &self.origin);
    }
}

/// Decodes a kept value: a slice of the chunk when it is valid UTF-8 there, else a copy.
/// `valid`: it is known to be valid (its line, or every line of it, checked with the chunk).
/// Inlined: the parse loop's one-line events come through here.
#[inline(always)]
fn decode_value(src: Src<'_>, value: &[u8], valid: bool) -> Text {
    if !valid && !is_utf8(value) {
        return lossy(value);
    }
    // SAFETY: `valid`, or just checked to be UTF-8.
    unsafe {
        match src {
            Src::Chunk(slicer) => slicer.text(value),
            Src::Carry => Text::copy_unchecked(value),
        }
    }
}

/// Whether `value` holds U+0000: inline for short values (most ids), `memchr` for long ones.
#[inline(always)]
fn has_nul(value: &[u8]) -> bool {
    if value.len() <= 16 { value.contains(&0) } else { memchr::memchr(0, value).is_some() }
}

/// `a == b`, inline for short values (ids and types, compared on every line that has one;
/// a `memcmp` call costs more than the comparison).
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        false
    } else if a.len() > 16 {
        a == b
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// Where `part` (a non-empty slice of `chunk`) starts in it.
#[inline]
fn offset_in(chunk: &[u8], part: &[u8]) -> usize {
    let off = (part.as_ptr() as usize).wrapping_sub(chunk.as_ptr() as usize);
    debug_assert!(off + part.len() <= chunk.len());
    off
}

/// Lossy UTF-8 decoding that keeps valid input without copying.
#[inline]
fn to_text(bytes: Bytes) -> Text {
    if is_utf8(&bytes) {
        // SAFETY: just checked to be UTF-8.
        unsafe { Text::from_utf8_unchecked(bytes) }
    } else {
        lossy(&bytes)
    }
}

/// Decodes invalid UTF-8 (U+FFFD for each maximal subpart). Rare: kept out of the hot path.
#[cold]
#[inline(never)]
fn lossy(b: &[u8]) -> Text {
    Text::from(String::from_utf8_lossy(b).into_owned())
}

/// Whether `b` is valid UTF-8: an inlined ASCII check for short values (most of them), the
/// chunk validator for long ones, the standard library's validator otherwise.
#[inline]
fn is_utf8(b: &[u8]) -> bool {
    if b.len() < 16 {
        b.is_ascii() || std::str::from_utf8(b).is_ok()
    } else if b.len() < 64 {
        b.is_ascii() || utf8::is_valid(b)
    } else {
        utf8::is_valid(b)
    }
}

/// Whether a line starting with `prefix` can be a `data`, `event`, `id` or `retry` field.
/// Depends only on the first colon, or on the first `LONGEST_FIELD + 1` bytes when there is no
/// colon, so it gives the same answer for any longer prefix of the same line.
fn line_may_be_field(prefix: &[u8]) -> bool {
    match memchr::memchr(b':', prefix) {
        Some(i) => matches!(&prefix[..i], b"data" | b"event" | b"id" | b"retry"),
        None => {
            prefix.len() <= LONGEST_FIELD
                && (b"data".starts_with(prefix)
                    || b"event".starts_with(prefix)
                    || b"id".starts_with(prefix)
                    || b"retry".starts_with(prefix))
        }
    }
}
