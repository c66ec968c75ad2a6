//! Loom models of the counts that `CHUNK` texts hold: in every interleaving of the threads that
//! share a chunk, it is freed exactly once, and after the last read of its bytes (each read and
//! the free are accesses to a loom cell, so a free not ordered after a read on another thread is
//! reported). Run with `make loom` (`--cfg eventsource_loom`); `BULK` is 2 there, so the slicer
//! tops up its spare counts every other text.

use super::*;
use loom::thread;
use std::sync::Arc as StdArc;
// Counts the frees outside the model: loom runs its threads one at a time, so a plain atomic
// read sees every free that happened before it in the interleaving.
use std::sync::atomic::AtomicUsize as Frees;

/// Long enough to be a slice of the chunk, not inline.
const LEN: usize = INLINE_CAP + 1;

/// The frees of one test's chunks over all the runs of its model. Counted after the model:
/// loom lets `join` return before the thread's thread-locals are dropped (std does not), so a
/// count held back until a thread's exit may be released after the run's last statement.
struct Tally {
    runs: Frees,
    frees: Frees,
}

impl Tally {
    const fn new() -> Tally {
        Tally { runs: Frees::new(0), frees: Frees::new(0) }
    }

    /// Runs `f` under loom; then every run must have freed each of its `chunks` once.
    fn model(&'static self, chunks: usize, f: impl Fn(&'static Tally) + Send + Sync + 'static) {
        loom::model(move || {
            self.runs.fetch_add(1, Atomic::SeqCst);
            f(self)
        });
        let (runs, frees) = (self.runs.load(Atomic::SeqCst), self.frees.load(Atomic::SeqCst));
        assert!(runs > 0);
        eprintln!("{runs} interleavings");
        assert_eq!(frees, runs * chunks, "{runs} runs of {chunks} chunks");
    }
}

/// A chunk's buffer: counts its frees in this run and in the tally.
struct Owner(Vec<u8>, StdArc<Frees>, &'static Tally);

impl AsRef<[u8]> for Owner {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.1.fetch_add(1, Atomic::SeqCst);
        self.2.frees.fetch_add(1, Atomic::SeqCst);
    }
}

/// A chunk of `n` values of `LEN` bytes, the `i`th all `b'a' + i`, and its free count.
fn chunk(n: usize, tally: &'static Tally) -> (Bytes, StdArc<Frees>) {
    let frees = StdArc::new(Frees::new(0));
    let bytes = (0..n * LEN).map(|i| b'a' + (i / LEN) as u8).collect();
    (Bytes::from_owner(Owner(bytes, StdArc::clone(&frees), tally)), frees)
}

/// The `i`th value of `slicer`'s chunk as a text.
fn text(slicer: &Slicer, i: usize) -> Text {
    let value = &slicer.bytes()[i * LEN..(i + 1) * LEN];
    // SAFETY: ASCII, a part of the chunk.
    unsafe { slicer.text(value) }
}

/// Reads `t` (the `i`th value), which holds a count: its chunk must still be there.
fn read(t: &Text, i: usize, frees: &Frees) {
    assert_eq!(frees.load(Atomic::SeqCst), 0, "freed while a text of it is alive");
    assert_eq!(t.kind(), CHUNK);
    assert!(t.as_bytes().iter().all(|&b| b == b'a' + i as u8), "value {i}: {t:?}");
}

/// The slicer hands out, copies and takes back counts (topping up its spares) while another
/// thread reads and drops texts of the chunk and releases what it held back; the slicer's
/// spares go back when it is dropped.
#[test]
fn slicer_spares_and_drops_on_another_thread() {
    const CHUNKS: usize = 1;
    static TALLY: Tally = Tally::new();
    TALLY.model(CHUNKS, |tally| {
        let (bytes, frees) = chunk(4, tally);
        let slicer = Slicer::new(bytes);
        let a = text(&slicer, 0);
        let b = text(&slicer, 1);
        let a2 = slicer.share(&a);
        slicer.give_back(slicer.share(&b));
        let a3 = a.clone();
        let f = StdArc::clone(&frees);
        let other = thread::spawn(move || {
            for t in [a, a2, a3] {
                read(&t, 0, &f);
                drop(t);
            }
            release_held();
        });
        // Top-ups (an atomic add) while the other thread releases.
        let c = text(&slicer, 2);
        let d = text(&slicer, 3);
        slicer.give_back(c);
        let d2 = slicer.share(&d);
        drop(slicer);
        read(&b, 1, &frees);
        read(&d2, 3, &frees);
        drop((b, d, d2));
        // The last release is this one or the other thread's.
        release_held();
        other.join().unwrap();
        assert_eq!(frees.load(Atomic::SeqCst), 1);
    });
}

/// The slicer is dropped while two other threads drop the chunk's texts: whichever release is
/// the last frees it, once, after both threads' reads. One thread lets go of its held count
/// when asked, the other at its exit.
#[test]
fn last_text_dropped_on_either_thread() {
    const CHUNKS: usize = 1;
    static TALLY: Tally = Tally::new();
    TALLY.model(CHUNKS, |tally| {
        let (bytes, frees) = chunk(2, tally);
        let slicer = Slicer::new(bytes);
        let (a, b) = (text(&slicer, 0), text(&slicer, 1));
        let f = StdArc::clone(&frees);
        let one = thread::spawn(move || {
            read(&a, 0, &f);
            drop(a);
            release_held();
        });
        let f = StdArc::clone(&frees);
        let two = thread::spawn(move || {
            read(&b, 1, &f);
            drop(b);
            // Held back until this thread exits.
        });
        drop(slicer);
        one.join().unwrap();
        two.join().unwrap();
        // Freed here, or by `two`'s exit (see `Tally`).
        assert!(frees.load(Atomic::SeqCst) <= 1);
    });
}

/// A thread holds back the counts that texts of one chunk give up, and releases them when it
/// drops a text of another chunk; this thread drops its own texts of both chunks meanwhile.
/// Texts of a chunk of their own (`from_utf8_lossy`) and of a slicer's alike.
#[test]
fn held_counts_released_by_another_chunks_text() {
    const CHUNKS: usize = 2;
    static TALLY: Tally = Tally::new();
    TALLY.model(CHUNKS, |tally| {
        let (x_bytes, x_frees) = chunk(1, tally);
        let x = Text::from_utf8_lossy(x_bytes);
        let (y_bytes, y_frees) = chunk(2, tally);
        let slicer = Slicer::new(y_bytes);
        let (y0, y1) = (text(&slicer, 0), text(&slicer, 1));
        drop(slicer);
        let (x2, y2) = (x.clone(), y1.clone());
        let (xf, yf) = (StdArc::clone(&x_frees), StdArc::clone(&y_frees));
        let other = thread::spawn(move || {
            read(&x, 0, &xf);
            read(&x2, 0, &xf);
            drop((x, x2));
            // Releases the two counts of `x` held back.
            read(&y0, 0, &yf);
            drop(y0);
            // `y0`'s count is released at this thread's exit.
        });
        read(&y1, 1, &y_frees);
        drop(y1);
        read(&y2, 1, &y_frees);
        drop(y2);
        release_held();
        other.join().unwrap();
        // `x` is freed by the other thread's drop of `y0`; `y` now or at that thread's exit.
        assert_eq!(x_frees.load(Atomic::SeqCst), 1);
        assert!(y_frees.load(Atomic::SeqCst) <= 1);
    });
}
