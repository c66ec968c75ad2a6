//! The incremental event-stream parser (WHATWG HTML §9.2.6), exact for any chunking.
//!
//! PLACEHOLDER API — being implemented. Contract:
//! - `feed` takes one network chunk as `Bytes` and emits, in order, every `Item` completed by it.
//! - A one-line event lying inside one chunk is emitted as a slice of that chunk (no copy);
//!   any other event costs exactly one allocation for its data.
//! - Memory is bounded by `max_event_size`: a line or event larger than that returns an
//!   `EventTooLarge` error (comments are skipped without buffering).

use bytes::Bytes;

use crate::{Error, MessageEvent, Text};

/// What the parser produces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// A dispatched event (non-empty data buffer at a blank line).
    Message(MessageEvent),
    /// A valid `retry:` field, in milliseconds: takes effect at once.
    Retry(u64),
}

/// One source's parser. Persists the last event ID string across streams.
#[derive(Debug)]
pub struct Parser {
    max_event_size: usize,
    last_event_id: Text,
    origin: Text,
}

impl Parser {
    /// A parser that fails any line or event longer than `max_event_size` bytes.
    pub fn new(max_event_size: usize) -> Parser {
        Parser { max_event_size, last_event_id: Text::new(), origin: Text::new() }
    }

    /// Starts a new response body: resets the data and event-type buffers, the partial line,
    /// the CR state and the BOM check; keeps the last event ID string. `origin` goes on every
    /// event of this stream.
    pub fn begin_stream(&mut self, origin: Text) {
        self.origin = origin;
        todo!()
    }

    /// Feeds one chunk, emitting each completed item in order.
    pub fn feed(&mut self, chunk: Bytes, emit: &mut impl FnMut(Item)) -> Result<(), Error> {
        let _ = (chunk, emit, self.max_event_size);
        todo!()
    }

    /// The last event ID string (what reconnections send as `Last-Event-ID`).
    pub fn last_event_id(&self) -> &Text {
        &self.last_event_id
    }

    /// Sets the last event ID string (the `last_event_id` option).
    pub fn set_last_event_id(&mut self, id: Text) {
        self.last_event_id = id;
    }
}
