//! How events leave the connection task: a [`Handler`] gets the events of each network read
//! as a [`Batch`].

use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use super::Shared;
use crate::Event;

// ---------------------------------------------------------------------------------------------
// Handler: how events leave the connection task.

/// Receives a source's events on the library's runtime thread.
///
/// Calls for one source never overlap and come in stream order. `on_events` gets everything
/// parsed from one network read; the [`Batch`] stops yielding as soon as the source is closed,
/// so `close()` from inside the handler drops the rest. Keep handlers quick: they run on one of
/// the runtime's two worker threads.
pub trait Handler: Send + 'static {
    /// Consume the events of one read. The batch is drained after the call either way.
    fn on_events(&mut self, events: &mut Batch<'_>);

    /// Backpressure: return `Pending` (and wake `cx` later) to stop reading the network until
    /// the handler can take more. Default: always ready.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }
}

/// A closure taking one [`Event`] at a time is a handler.
impl<F: FnMut(Event) + Send + 'static> Handler for F {
    fn on_events(&mut self, events: &mut Batch<'_>) {
        for event in events {
            self(event);
        }
    }
}

/// The events of one network read, in order. Ends early once the source is closed.
pub struct Batch<'a> {
    events: BatchEvents<'a>,
    shared: &'a Shared,
    bytes: usize,
}

enum BatchEvents<'a> {
    /// Not iterated yet: the queue of a pull-mode source can take the whole vector.
    Whole(&'a mut Vec<Event>),
    Draining(std::vec::Drain<'a, Event>),
    Taken,
}

impl<'a> Batch<'a> {
    /// A batch of the events parsed from `bytes` body bytes, not iterated yet.
    pub(super) fn whole(events: &'a mut Vec<Event>, shared: &'a Shared, bytes: usize) -> Batch<'a> {
        Batch { events: BatchEvents::Whole(events), shared, bytes }
    }

    /// How many body bytes the events of this batch were parsed from: about the memory they
    /// hold (their texts are slices of those reads). For bounding a queue in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The whole vector of events, if nothing was iterated yet (the caller must leave it empty).
    /// The connection checked `cancelled` just before handing the batch over, under the
    /// dispatch lock that `close()` waits for.
    pub(super) fn take_all(&mut self) -> Option<&'a mut Vec<Event>> {
        match std::mem::replace(&mut self.events, BatchEvents::Taken) {
            BatchEvents::Whole(v) => Some(v),
            other => {
                self.events = other;
                None
            }
        }
    }
}

impl Iterator for Batch<'_> {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        if self.shared.cancelled.load(Ordering::Acquire) {
            return None;
        }
        if let Some(v) = self.take_all() {
            self.events = BatchEvents::Draining(v.drain(..));
        }
        match &mut self.events {
            BatchEvents::Draining(d) => d.next(),
            _ => None,
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.events {
            BatchEvents::Whole(v) => (0, Some(v.len())),
            BatchEvents::Draining(d) => (0, d.size_hint().1),
            BatchEvents::Taken => (0, Some(0)),
        }
    }
}
