//! Pull mode: a bounded queue of events between the connection task and the consumer.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::handler::{Batch, Handler};
use super::{Recv, lock};
use crate::Event;
use crate::text;

// ---------------------------------------------------------------------------------------------
// Pull mode: a bounded queue of events.
//
// The connection task appends the events of one network read under one lock (handing over its
// whole vector when the queue is empty) and wakes the consumer only when the queue goes from
// empty to non-empty. The consumer takes the whole queue at once (swapping vectors) into the
// handle's own buffer and serves events from there, so the per-event cost of the hand-off is a
// pop from a local deque. The vectors' allocations circulate: connection → queue → consumer →
// queue → connection.

/// Above this many queued events the connection stops reading until the consumer takes them.
/// The consumer's buffer holds at most one such queue-full more.
const QUEUE_HIGH_WATER: usize = 4096;

/// Likewise in bytes (of the reads the queued events were parsed from, which they keep alive):
/// large events reach this long before the event count. The queue passes it by one read at
/// most, and the consumer's buffer holds at most one such queue-full more.
const QUEUE_HIGH_BYTES: usize = 8 << 20;

/// Vectors of up to this many events are reused whatever the traffic (larger ones only while
/// batches of at least an eighth of their size keep coming).
const SPARE_KEEP: usize = 256;

#[derive(Default)]
pub(super) struct Queue {
    inner: Mutex<QueueInner>,
    ready: Condvar,
    pub(super) notify: Mutex<Option<Arc<dyn Fn() + Send + Sync>>>,
}

#[derive(Default)]
struct QueueInner {
    events: Vec<Event>,
    /// The bytes the queued events were parsed from.
    bytes: usize,
    finished: bool,
    consumer: Option<Waker>,
    producer: Option<Waker>,
    /// Threads blocked in `recv_timeout` (the condvar is signalled only when there are some).
    sleepers: usize,
    /// The largest recent batch taken, decaying by 1/16 per refill: a vector given back that
    /// is far larger than that is let go.
    peak: usize,
}

impl Queue {
    /// Appends the events of one read (producer side) and wakes whoever waits.
    fn push(&self, batch: &mut Batch<'_>) {
        let mut inner = lock(&self.inner);
        let was_empty = inner.events.is_empty();
        inner.bytes += batch.bytes();
        match batch.take_all() {
            // Hand over the whole vector; the connection gets the queue's empty one back.
            Some(v) if was_empty => std::mem::swap(v, &mut inner.events),
            Some(v) => inner.events.append(v),
            None => inner.events.extend(batch),
        }
        if was_empty && !inner.events.is_empty() {
            self.wake(inner);
        }
    }

    /// Marks the end of the stream; `discard` drops what is queued (close()).
    pub(super) fn finish(&self, discard: bool) {
        let mut inner = lock(&self.inner);
        if discard {
            inner.events.clear();
            inner.bytes = 0;
        }
        inner.finished = true;
        if let Some(p) = inner.producer.take() {
            p.wake();
        }
        self.wake(inner);
    }

    fn wake(&self, mut inner: MutexGuard<'_, QueueInner>) {
        let waker = inner.consumer.take();
        let sleepers = inner.sleepers > 0;
        drop(inner);
        if sleepers {
            self.ready.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
        let notify = lock(&self.notify).clone();
        if let Some(n) = notify {
            n();
        }
    }

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = lock(&self.inner);
        let full = inner.events.len() >= QUEUE_HIGH_WATER || inner.bytes >= QUEUE_HIGH_BYTES;
        if !full || inner.finished {
            Poll::Ready(())
        } else {
            inner.producer = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    /// Moves the whole queue into the consumer's (empty) buffer, swapping vectors.
    fn refill(inner: &mut QueueInner, local: &mut VecDeque<Event>) {
        debug_assert!(local.is_empty());
        if inner.events.is_empty() {
            return;
        }
        // Both conversions are O(1): `local` is empty, and a Vec becomes a deque in place.
        let mut spare = Vec::from(std::mem::take(local));
        // A burst's allocation is let go once events keep coming in small batches; one small
        // batch among large ones is just a short read (dropping the vector then would make the
        // connection grow a new one, copying and faulting in pages, over and over).
        inner.peak = inner.events.len().max(inner.peak - inner.peak / 16);
        if spare.capacity() > SPARE_KEEP && spare.capacity() > 8 * inner.peak {
            spare = Vec::new();
        }
        *local = VecDeque::from(std::mem::replace(&mut inner.events, spare));
        inner.bytes = 0;
        if let Some(p) = inner.producer.take() {
            p.wake();
        }
    }

    /// Moves up to `max` events into `buf`: first the consumer's buffer, then the queue.
    pub(super) fn fill(
        &self,
        local: &mut VecDeque<Event>,
        buf: &mut Vec<Event>,
        max: usize,
    ) -> usize {
        let mut n = 0;
        loop {
            let k = (max - n).min(local.len());
            if k == 0 {
                // Nothing buffered: keep the caller's vector (trading it for the empty buffer
                // would hand the caller a smaller one, and the next batch would be copied).
            } else if k == local.len() {
                // All of it: in bulk (an event is too big for moves one by one to be cheap),
                // and the deque keeps an allocation.
                let mut all = Vec::from(std::mem::take(local));
                if buf.is_empty() && buf.capacity() >= all.len() {
                    // The caller's vector is big enough: trade vectors instead of copying.
                    std::mem::swap(buf, &mut all);
                } else {
                    buf.append(&mut all);
                }
                *local = VecDeque::from(all);
            } else {
                buf.extend(local.drain(..k));
            }
            n += k;
            if n == max {
                return n;
            }
            let mut inner = lock(&self.inner);
            Queue::refill(&mut inner, local);
            if local.is_empty() {
                return n;
            }
        }
    }

    pub(super) fn poll_recv_many(
        &self,
        local: &mut VecDeque<Event>,
        cx: &mut Context<'_>,
        buf: &mut Vec<Event>,
        max: usize,
    ) -> Poll<usize> {
        let n = self.fill(local, buf, max.max(1));
        if n > 0 {
            return Poll::Ready(n);
        }
        let mut inner = lock(&self.inner);
        Queue::refill(&mut inner, local);
        if !local.is_empty() {
            drop(inner);
            return Poll::Ready(self.fill(local, buf, max.max(1)));
        }
        if inner.finished {
            return Poll::Ready(0);
        }
        set_waker(&mut inner.consumer, cx);
        text::release_held();
        Poll::Pending
    }

    /// The next event: from the consumer's buffer, else the whole queue is taken into it.
    pub(super) fn poll_recv(
        &self,
        local: &mut VecDeque<Event>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Event>> {
        if let Some(ev) = local.pop_front() {
            return Poll::Ready(Some(ev));
        }
        let mut inner = lock(&self.inner);
        Queue::refill(&mut inner, local);
        if let Some(ev) = local.pop_front() {
            return Poll::Ready(Some(ev));
        }
        if inner.finished {
            return Poll::Ready(None);
        }
        set_waker(&mut inner.consumer, cx);
        text::release_held();
        Poll::Pending
    }

    /// Blocking receive. The consumer's buffer is not locked while waiting, so `close()`,
    /// `try_recv_many` and `is_finished` from other threads never wait for a sleeping receive.
    pub(super) fn recv_timeout(
        &self,
        local: &Mutex<VecDeque<Event>>,
        timeout: Option<Duration>,
    ) -> Recv {
        // Read the clock only when there is nothing to take (not once per event).
        let mut deadline: Option<Option<Instant>> = None;
        loop {
            let mut l = lock(local);
            if let Some(ev) = l.pop_front() {
                return Recv::Event(ev);
            }
            let mut inner = lock(&self.inner);
            Queue::refill(&mut inner, &mut l);
            if let Some(ev) = l.pop_front() {
                return Recv::Event(ev);
            }
            if inner.finished {
                return Recv::Closed;
            }
            drop(l);
            // The queue lock is held from the check to the wait: a push cannot slip between.
            text::release_held();
            inner.sleepers += 1;
            inner = match timeout {
                None => self.ready.wait(inner).unwrap_or_else(|e| e.into_inner()),
                Some(t) => {
                    let now = Instant::now();
                    // `None` inside: a timeout too long to add to the clock waits forever.
                    match *deadline.get_or_insert_with(|| now.checked_add(t)) {
                        None => self.ready.wait(inner).unwrap_or_else(|e| e.into_inner()),
                        Some(d) if now >= d => {
                            inner.sleepers -= 1;
                            return Recv::Timeout;
                        }
                        Some(d) => {
                            let r = self.ready.wait_timeout(inner, d - now);
                            r.unwrap_or_else(|e| e.into_inner()).0
                        }
                    }
                }
            };
            inner.sleepers -= 1;
        }
    }

    pub(super) fn is_finished(&self) -> bool {
        let inner = lock(&self.inner);
        inner.finished && inner.events.is_empty()
    }
}

/// Stores the consumer's waker, cloning it only when it changed.
fn set_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

pub(super) struct QueueHandler(pub(super) Arc<Queue>);

impl Handler for QueueHandler {
    fn on_events(&mut self, events: &mut Batch<'_>) {
        self.0.push(events);
    }
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_ready(cx)
    }
}

impl Drop for QueueHandler {
    // The task is over (failed, or aborted by close()): receivers must not wait forever.
    fn drop(&mut self) {
        self.0.finish(false);
    }
}

#[cfg(test)]
pub(super) mod tests {
    //! The pull-mode queue on its own: its hand-offs, order, backpressure and wake-ups.

    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
    use std::task::Wake;

    use url::Url;

    use super::super::Shared;
    use super::*;
    use crate::{MessageEvent, Text};

    fn msg(i: usize) -> Event {
        Event::Message(MessageEvent {
            event_type: Text::from_static("message"),
            data: Text::from(i.to_string()),
            last_event_id: Text::default(),
            origin: Text::default(),
        })
    }

    fn data(e: &Event) -> usize {
        match e {
            Event::Message(m) => m.data.parse().unwrap(),
            other => panic!("not a message: {other:?}"),
        }
    }

    fn shared() -> Shared {
        Shared {
            url: Url::parse("http://127.0.0.1/").unwrap(),
            with_credentials: false,
            state: AtomicU8::new(0),
            cancelled: AtomicBool::new(false),
            dispatch: Mutex::new(()),
            closing_other: AtomicBool::new(false),
            task: Mutex::new(None),
            queue: None,
            response_headers: Mutex::default(),
            generation: crate::runtime::generation(),
            fork_reported: AtomicBool::new(false),
        }
    }

    /// What the connection does with one read's events: `v` is left empty, holding the vector
    /// the connection parses its next read into.
    fn push_vec(q: &Queue, s: &Shared, v: &mut Vec<Event>) {
        push_read(q, s, v, 0);
    }

    /// `push_vec` of events parsed from `bytes` bytes.
    fn push_read(q: &Queue, s: &Shared, v: &mut Vec<Event>, bytes: usize) {
        let mut b = Batch::whole(v, s, bytes);
        q.push(&mut b);
        drop(b);
        assert!(v.is_empty(), "the queue took every event");
    }

    fn push(q: &Queue, s: &Shared, range: std::ops::Range<usize>) {
        push_vec(q, s, &mut range.map(msg).collect());
    }

    /// Receives everything queued, one event at a time.
    fn recv_all(q: &Queue, local: &Mutex<VecDeque<Event>>) -> Vec<usize> {
        let mut got = Vec::new();
        while let Recv::Event(e) = q.recv_timeout(local, Some(Duration::ZERO)) {
            got.push(data(&e));
        }
        got
    }

    #[derive(Default)]
    pub(crate) struct CountingWaker(AtomicUsize);
    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn woken(w: &Arc<CountingWaker>) -> usize {
        w.0.load(Ordering::SeqCst)
    }

    #[test]
    fn order_is_kept_across_every_way_of_receiving() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let w = Arc::new(CountingWaker::default());
        let waker = Waker::from(w.clone());
        let mut cx = Context::from_waker(&waker);
        push(&q, &s, 0..10);
        let Recv::Event(e) = q.recv_timeout(&local, Some(Duration::ZERO)) else { panic!() };
        assert_eq!(data(&e), 0);
        let mut buf = Vec::new();
        assert_eq!(q.fill(&mut lock(&local), &mut buf, 3), 3);
        // Pushed while the consumer's buffer still holds 4..10: served after them.
        push(&q, &s, 10..20);
        let Poll::Ready(Some(e)) = q.poll_recv(&mut lock(&local), &mut cx) else { panic!() };
        assert_eq!(data(&e), 4);
        assert_eq!(q.fill(&mut lock(&local), &mut buf, 100), 15);
        assert_eq!(
            buf.iter().map(data).collect::<Vec<_>>(),
            [1, 2, 3].into_iter().chain(5..20).collect::<Vec<_>>()
        );
        assert_eq!(q.fill(&mut lock(&local), &mut buf, 100), 0);
        assert!(q.poll_recv(&mut lock(&local), &mut cx).is_pending());
        assert!(matches!(q.recv_timeout(&local, Some(Duration::from_millis(5))), Recv::Timeout));
        // One wake-up per batch, not per event.
        push(&q, &s, 20..30);
        assert_eq!(woken(&w), 1);
        let mut many = Vec::new();
        let Poll::Ready(n) = q.poll_recv_many(&mut lock(&local), &mut cx, &mut many, 4) else {
            panic!()
        };
        assert_eq!((n, many.iter().map(data).collect::<Vec<_>>()), (4, vec![20, 21, 22, 23]));
        push(&q, &s, 30..40);
        assert_eq!(woken(&w), 1, "nobody waits: no wake-up");
        q.finish(false);
        let mut rest = Vec::new();
        while let Poll::Ready(Some(e)) = q.poll_recv(&mut lock(&local), &mut cx) {
            rest.push(data(&e));
        }
        assert_eq!(rest, (24..40).collect::<Vec<_>>());
        assert!(q.is_finished() && lock(&local).is_empty());
        assert!(matches!(q.recv_timeout(&local, None), Recv::Closed));
    }

    #[test]
    fn a_roomy_empty_buffer_is_traded_not_copied_into() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        for round in 0..3 {
            let base = round * 10;
            let mut v: Vec<Event> = (base..base + 10).map(msg).collect();
            let parsed_into = v.as_ptr();
            push_vec(&q, &s, &mut v);
            let mut buf = Vec::with_capacity(64);
            assert_eq!(q.fill(&mut lock(&local), &mut buf, 64), 10);
            assert_eq!(buf.as_ptr(), parsed_into, "the events were not copied");
            assert_eq!(
                buf.iter().map(data).collect::<Vec<_>>(),
                (base..base + 10).collect::<Vec<_>>()
            );
            assert!(lock(&local).is_empty());
        }
    }

    #[test]
    fn producer_stops_at_high_water_until_the_consumer_takes_the_queue() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let w = Arc::new(CountingWaker::default());
        let waker = Waker::from(w.clone());
        let mut cx = Context::from_waker(&waker);
        push(&q, &s, 0..QUEUE_HIGH_WATER - 1);
        assert!(q.poll_ready(&mut cx).is_ready());
        push(&q, &s, QUEUE_HIGH_WATER - 1..QUEUE_HIGH_WATER);
        assert!(q.poll_ready(&mut cx).is_pending());
        let mut buf = Vec::new();
        assert_eq!(q.fill(&mut lock(&local), &mut buf, 1), 1);
        assert_eq!(woken(&w), 1, "taking the queue wakes the producer");
        assert!(q.poll_ready(&mut cx).is_ready());
        // The consumer's buffer holds the rest; the queue fills again up to the mark.
        assert_eq!(lock(&local).len(), QUEUE_HIGH_WATER - 1);
    }

    #[test]
    fn producer_stops_at_the_byte_mark_too() {
        // Large events: a few reads fill the queue long before the event count does.
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let w = Arc::new(CountingWaker::default());
        let waker = Waker::from(w.clone());
        let mut cx = Context::from_waker(&waker);
        let read = QUEUE_HIGH_BYTES / 4;
        for i in 0..3 {
            push_read(&q, &s, &mut vec![msg(i)], read);
            assert!(q.poll_ready(&mut cx).is_ready(), "after {} bytes", (i + 1) * read);
        }
        push_read(&q, &s, &mut vec![msg(3)], read);
        assert!(q.poll_ready(&mut cx).is_pending());
        // The consumer takes the queue: room again.
        let Recv::Event(e) = q.recv_timeout(&local, Some(Duration::ZERO)) else { panic!() };
        assert_eq!(data(&e), 0);
        assert_eq!(woken(&w), 1);
        assert!(q.poll_ready(&mut cx).is_ready());
        // Discarding at close empties the count too.
        push_read(&q, &s, &mut vec![msg(4)], QUEUE_HIGH_BYTES);
        assert!(q.poll_ready(&mut cx).is_pending());
        q.finish(true);
        assert!(q.poll_ready(&mut cx).is_ready());
    }

    #[test]
    fn a_blocked_receive_wakes_on_push_and_on_finish() {
        let (q, s, local) =
            (Arc::new(Queue::default()), Arc::new(shared()), Arc::new(Mutex::default()));
        let (q2, s2) = (q.clone(), s.clone());
        let pusher = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            push(&q2, &s2, 0..3);
            std::thread::sleep(Duration::from_millis(50));
            q2.finish(false);
        });
        let Recv::Event(e) = q.recv_timeout(&local, None) else { panic!() };
        assert_eq!(data(&e), 0);
        // Another consumer is not held up by the buffer while one sleeps.
        assert_eq!(q.fill(&mut lock(&local), &mut Vec::new(), 10), 2);
        assert!(matches!(q.recv_timeout(&local, Some(Duration::from_secs(10))), Recv::Closed));
        pusher.join().unwrap();
    }

    #[test]
    fn a_read_reaches_the_consumer_in_the_vector_it_was_parsed_into() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let mut a: Vec<Event> = (0..100).map(msg).collect();
        let pa = a.as_ptr();
        push_vec(&q, &s, &mut a);
        let Recv::Event(e) = q.recv_timeout(&local, Some(Duration::ZERO)) else { panic!() };
        assert_eq!(data(&e), 0);
        assert_eq!(lock(&local).as_slices().0.as_ptr(), pa.wrapping_add(1));
        // Queued while the consumer still serves the first read: appended after it.
        push(&q, &s, 100..103);
        let mut b: Vec<Event> = (103..200).map(msg).collect();
        push_vec(&q, &s, &mut b);
        assert_eq!(recv_all(&q, &local), (1..200).collect::<Vec<_>>());
        let mut c: Vec<Event> = (200..300).map(msg).collect();
        let pc = c.as_ptr();
        push_vec(&q, &s, &mut c);
        let Recv::Event(e) = q.recv_timeout(&local, Some(Duration::ZERO)) else { panic!() };
        assert_eq!(data(&e), 200);
        assert_eq!(lock(&local).as_slices().0.as_ptr(), pc.wrapping_add(1));
    }

    #[test]
    fn the_connection_parses_into_the_vectors_the_consumer_emptied() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let mut v: Vec<Event> = (0..100).map(msg).collect();
        let first = v.as_ptr();
        push_vec(&q, &s, &mut v);
        assert_eq!(recv_all(&q, &local), (0..100).collect::<Vec<_>>());
        v.extend((100..200).map(msg));
        push_vec(&q, &s, &mut v);
        // Taking the second batch gave the first vector back: the connection's next one.
        assert_eq!(recv_all(&q, &local), (100..200).collect::<Vec<_>>());
        v.extend((200..300).map(msg));
        push_vec(&q, &s, &mut v);
        assert_eq!((v.as_ptr(), v.capacity() >= 100), (first, true));
        assert_eq!(recv_all(&q, &local), (200..300).collect::<Vec<_>>());
    }

    #[test]
    fn a_burst_vector_survives_a_short_read_but_not_a_slow_stream() {
        let (q, s, local) = (Queue::default(), shared(), Mutex::default());
        let mut v: Vec<Event> = (0..4000).map(msg).collect();
        let burst = v.as_ptr();
        push_vec(&q, &s, &mut v);
        assert_eq!(recv_all(&q, &local).len(), 4000);
        let mut next = 4000;
        let mut round = |v: &mut Vec<Event>, n: usize| {
            v.extend((next..next + n).map(msg));
            push_vec(&q, &s, v);
            assert_eq!(recv_all(&q, &local), (next..next + n).collect::<Vec<_>>());
            next += n;
        };
        // Where the vectors are: the connection's, the queue's and the consumer's.
        let caps = |q: &Queue, v: &Vec<Event>, local: &Mutex<VecDeque<Event>>| {
            let queued = &lock(&q.inner).events;
            [(v.as_ptr(), v.capacity()), (queued.as_ptr(), queued.capacity()), {
                let l = lock(local);
                (l.as_slices().0.as_ptr(), l.capacity())
            }]
        };
        round(&mut v, 40);
        round(&mut v, 40);
        assert!(
            caps(&q, &v, &local).iter().any(|&(p, _)| p == burst),
            "a short read after a burst let the burst's vector go"
        );
        for _ in 0..100 {
            round(&mut v, 40);
        }
        // A stream of short reads lets it go.
        let caps = caps(&q, &v, &local);
        assert!(caps.iter().all(|&(_, c)| c <= SPARE_KEEP), "{caps:?}");
    }
}
