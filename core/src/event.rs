//! What a source delivers: `open`, messages (of any type) and `error`.

use crate::{Error, Text};

/// `readyState`: the numbers are the spec's and every face's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReadyState {
    /// Connecting or reconnecting (0).
    Connecting = 0,
    /// The connection is open and events arrive (1).
    Open = 1,
    /// Closed for good, by `close()` or a fatal error (2).
    Closed = 2,
}

impl ReadyState {
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn from_u8(v: u8) -> ReadyState {
        match v {
            0 => ReadyState::Connecting,
            1 => ReadyState::Open,
            _ => ReadyState::Closed,
        }
    }
}

/// A dispatched message: the spec's `MessageEvent` fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEvent {
    /// `"message"` unless the event had a non-empty `event:` field.
    pub event_type: Text,
    /// The data buffer without its final LF.
    pub data: Text,
    /// The source's last event ID string at dispatch time.
    pub last_event_id: Text,
    /// Serialized origin of the response's final URL (after redirects), e.g. `http://127.0.0.1:8080`.
    /// Empty when the parser is used on its own.
    pub origin: Text,
}

/// The `error` event. `ready_state` is what the listener must see: `Connecting` when the
/// source will reconnect, `Closed` when the connection failed for good.
#[derive(Clone, Debug)]
pub struct ErrorEvent {
    /// The state the listener sees: CONNECTING (a reconnection follows) or CLOSED.
    pub ready_state: ReadyState,
    /// What went wrong.
    pub error: Error,
}

/// One event of a source, in stream order.
#[derive(Clone, Debug)]
pub enum Event {
    /// The connection was announced; `readyState` is `Open`.
    Open,
    /// A message of type `message` or a named type (including a message named `error`).
    Message(MessageEvent),
    /// The connection was lost (will reconnect) or failed (closed for good).
    Error(ErrorEvent),
}

impl Event {
    /// The `readyState` a listener of this event observes.
    pub fn ready_state(&self) -> ReadyState {
        match self {
            Event::Open | Event::Message(_) => ReadyState::Open,
            Event::Error(e) => e.ready_state,
        }
    }
}
