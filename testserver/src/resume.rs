//! `GET /resume`: a stream of numbered events that resumes after the request's
//! `Last-Event-ID` and drops the connection at seeded pseudo-random points, so that a client's
//! reconnection can be checked for exactly-once, in-order delivery over many drops.
//!
//! The schedule depends only on `seed` and the connection number `k` (counted per token), never
//! on timing: a failing run can be replayed exactly. Connections 1..=drops each end early (an
//! abrupt close, a TCP RST or a clean end, cut anywhere: between events, inside a line, inside
//! a UTF-8 sequence); the connection after them sends the rest and ends cleanly; a request that
//! already has the last id gets `204`, which stops a conforming client.

use bytes::Bytes;
use hyper::{Response, StatusCode};

use crate::body::{Out, Step};
use crate::query::Query;
use crate::routes::{Ctx, ms, no_content, plain, sse};

/// The most events a run may ask for (a connection's body is built in memory).
const MAX_COUNT: u64 = 10_000_000;

/// Writes of the events before a cut are about this large.
const WRITE: usize = 16 << 10;

/// How the connection ends after its cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The body ends properly: the partial event is simply never finished.
    Clean,
    /// The TCP connection is dropped without the chunked terminator (HTTP/2: `RST_STREAM`).
    Abort,
    /// A TCP RST (`SO_LINGER` 0); over HTTP/2 the whole connection goes.
    Reset,
}

/// The bytes of event `n`: two lines, the data with 2- and 4-byte UTF-8 sequences so that cuts
/// land inside them too.
pub(crate) fn event(n: u64) -> String {
    format!("id: {n}\ndata: {n} \u{e9}\u{1F600}\n\n")
}

/// splitmix64: a small, good, seedable generator.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, k: u64) -> Rng {
        Rng(seed ^ k.wrapping_mul(0xA076_1D64_78BD_642F))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    fn upto(&mut self, max: u64) -> u64 {
        self.next() % (max + 1)
    }
}

/// The plan of connection `k`: how many whole events it sends after `last`, how many bytes of
/// the next one, and how it ends. `None`: it sends the rest and ends cleanly.
fn plan(seed: u64, k: u64, drops: u64, count: u64, last: u64) -> Option<(u64, usize, End)> {
    if k > drops {
        return None;
    }
    let mut rng = Rng::new(seed, k);
    let left = count - last; // >= 1: a request with the last id got 204
    let drops_left = drops - k + 1;
    // Spread the remaining events over the remaining drops: on average left / (drops_left + 1)
    // per connection, and never all of them (the cut needs an event to cut).
    let whole = rng.upto(2 * left / (drops_left + 1)).min(left - 1);
    let cut = rng.upto(event(last + whole + 1).len() as u64) as usize;
    let end = match rng.upto(7) {
        0 => End::Clean,
        1 => End::Reset,
        _ => End::Abort,
    };
    Some((whole, cut, end))
}

/// `GET /resume?t=TOKEN&count=N&drops=D&seed=S&retry=MS&linger=MS&every=E`: see the README.
pub(crate) fn resume(
    ctx: &Ctx<'_>,
    q: &Query,
    k: usize,
    last_event_id: Option<&[u8]>,
) -> Response<Out> {
    if q.text("t").is_none() {
        return plain(
            StatusCode::BAD_REQUEST,
            "GET /resume needs ?t=TOKEN: drops are counted per token\n",
        );
    }
    let count = q.num("count").unwrap_or(1000).min(MAX_COUNT);
    let drops = q.num("drops").unwrap_or(10);
    let seed = q.num("seed").unwrap_or(1);
    let retry = q.num("retry").unwrap_or(0);
    let linger = q.num("linger").unwrap_or(0);
    let every = q.num("every").unwrap_or(1).max(1);
    let last = match last_event_id.map(|id| std::str::from_utf8(id).map(str::trim)) {
        None | Some(Ok("")) => 0,
        Some(Ok(id)) => match id.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                let msg =
                    format!("Last-Event-ID {id:?} is not an id of this stream (1..={count})\n");
                return plain(StatusCode::BAD_REQUEST, &msg);
            }
        },
        Some(Err(_)) => {
            return plain(StatusCode::BAD_REQUEST, "Last-Event-ID is not UTF-8\n");
        }
    };
    if last >= count {
        return no_content();
    }
    let k = k as u64;
    let mut steps = Vec::new();
    let mut buf = format!("retry: {retry}\n");
    let send = |buf: &mut String, steps: &mut Vec<Step>| {
        if !buf.is_empty() {
            steps.push(Step::Send(Bytes::from(std::mem::take(buf))));
        }
    };
    let (whole, plan) = match plan(seed, k, drops, count, last) {
        Some((whole, cut, end)) => (whole, Some((cut, end))),
        None => (count - last, None),
    };
    for n in last + 1..=last + whole {
        buf.push_str(&event(n));
        if buf.len() >= WRITE {
            send(&mut buf, &mut steps);
        }
    }
    send(&mut buf, &mut steps);
    if let Some((cut, end)) = plan {
        // A lingering connection outlasts the client's backoff reset threshold.
        if linger > 0 && k.is_multiple_of(every) {
            steps.push(Step::Sleep(ms(linger)));
        }
        let partial = event(last + whole + 1);
        if cut > 0 {
            steps.push(Step::Send(Bytes::copy_from_slice(&partial.as_bytes()[..cut])));
        }
        if end != End::Clean {
            // Let the bytes reach the socket before the cut.
            steps.push(Step::Sleep(ms(10)));
            steps.push(if end == End::Reset { Step::Reset(ctx.conn.clone()) } else { Step::Abort });
        }
    }
    sse(Out::steps(steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_seeded_and_spends_every_drop() {
        let (count, drops) = (1000, 40);
        let mut last = 0;
        let mut ends = [0; 3];
        let mut mid_utf8 = 0;
        for k in 1..=drops {
            let (whole, cut, end) = plan(7, k, drops, count, last).unwrap();
            assert_eq!(plan(7, k, drops, count, last), Some((whole, cut, end)), "seeded");
            assert!(last + whole < count, "connection {k} leaves an event to cut");
            let partial = event(last + whole + 1);
            assert!(cut <= partial.len());
            mid_utf8 += usize::from(!partial.is_char_boundary(cut));
            ends[end as usize] += 1;
            // A client resumes after the last whole event (or the cut one, if it was complete).
            last += whole + u64::from(cut == partial.len());
        }
        assert_eq!(plan(7, drops + 1, drops, count, last), None);
        assert!(ends.iter().all(|&n| n > 0), "every kind of end: {ends:?}");
        assert!(mid_utf8 > 0, "some cuts inside a UTF-8 sequence");
        assert!(last < count);
    }
}
