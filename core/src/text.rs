//! `Text`: an immutable, cheaply cloned UTF-8 string in three machine words.
//!
//! Event fields are `Text` rather than `String` so that building, moving and dropping a
//! `MessageEvent` is cheap on the parser's hot path. A `Text` is one of:
//!
//! - a `&'static str` (the type `message`, the empty string): free to clone and drop;
//! - up to [`INLINE_CAP`] bytes stored inline (short data such as LLM tokens, ids, custom types,
//!   most origins): cloning copies 24 bytes, no allocation, no atomic, no indirect call, and it
//!   does not keep a network buffer alive;
//! - an `Arc<str>` (a long string copied or made by the caller): an atomic count;
//! - a slice of a network chunk shared by the long values of that chunk (`CHUNK`): no copy, and
//!   the parser takes the chunk's counts in bulk ([`Slicer`]), so a chunk of many long values
//!   (LLM tokens, JSON) costs one atomic add and one small allocation, not one of each per value
//!   (that add and the matching release were ~35% of the parser's time on LLM-token-sized
//!   events). A long value given as its own `Bytes` is kept the same way, in a chunk of its own.
//!   A thread that drops texts of one chunk in a row (a handler dropping the events of a read)
//!   releases their counts together, when it drops a text of another chunk or stops handling
//!   events ([`release_held`]): one atomic subtraction, not one per event.
//!
//! The kind is the first byte; the other 23 bytes are the inline string or a pointer form.
//! Writing and reading a `Text` are three word stores and loads, not a byte-tagged enum's
//! odd-sized pieces (a tag byte, a length byte, 22 bytes), which are copied as overlapping
//! narrow moves that stall the CPU's store forwarding when the value is read back right after
//! it was written.
//!
//! Three words, not four: a `MessageEvent` (four texts) is 96 bytes and an `Event` 104, so every
//! move of one is inlined. Above 128 bytes the compiler calls `memcpy`: with a `Bytes` variant
//! (four words) an `Event` was 136 bytes, and those calls were ~10% of a small-event push run.
//! The kind is a plain byte, not an enum whose invalid values could hold an `Event`'s tag:
//! with the tag in a text's first byte the compiler moved events as one byte plus 95 unaligned
//! ones, which stalled store forwarding (the parser ran ~40% slower).
//!
//! The counts of `CHUNK` texts (the slicer's spares, the held-back releases, the last release
//! on any thread) are checked with loom: `make loom` (tests in `text/loom_tests.rs`).

use bytes::Bytes;
#[cfg(eventsource_loom)]
use loom::sync::atomic::{AtomicUsize, Ordering as Atomic, fence};
use std::borrow::Borrow;
use std::cell::Cell;
use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
#[cfg(all(not(eventsource_loom), not(eventsource_tsan)))]
use std::sync::atomic::fence;
#[cfg(not(eventsource_loom))]
use std::sync::atomic::{AtomicUsize, Ordering as Atomic};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

/// The longest string a `Text` stores inline.
pub(crate) const INLINE_CAP: usize = 23;

/// An immutable UTF-8 string (static, inline, shared or a slice of a network chunk).
/// Derefs to `str`.
///
/// Three words. The first byte in memory (of `head`) is the kind: `0..=INLINE_CAP` is an
/// inline string of that length in the 23 bytes after it; `STATIC` is a `&'static str` and
/// `SHARED` an `Arc<str>`, each as (`ptr`, `len`); `CHUNK` is `len` bytes at an offset (the rest
/// of `head`) into a `Chunk` (`ptr`).
#[repr(C)]
pub struct Text {
    head: usize,
    ptr: *const u8,
    len: usize,
}

const STATIC: u8 = INLINE_CAP as u8 + 1;
/// The kinds that own a count come last: a drop tests one number.
const CHUNK: u8 = STATIC + 1;
const SHARED: u8 = CHUNK + 1;
const _: () = assert!(std::mem::size_of::<Text>() == 24);

/// The first word of a text: `kind` first in memory, then the low 56 bits of `rest`.
#[inline(always)]
const fn head(kind: u8, rest: u64) -> usize {
    usize::from_le(((rest << 8) | kind as u64) as usize)
}

/// A network chunk shared by `CHUNK` texts: one count per text (and a [`Slicer`]'s spares).
struct Chunk {
    refs: AtomicUsize,
    bytes: Bytes,
    /// Loom: each read of `bytes` and the free are accesses to this cell, so that loom reports
    /// a free that is not ordered after every read (a use after free on a real CPU).
    #[cfg(eventsource_loom)]
    access: loom::cell::UnsafeCell<()>,
}

impl Chunk {
    #[inline(always)]
    fn new(refs: usize, bytes: Bytes) -> Chunk {
        Chunk {
            refs: AtomicUsize::new(refs),
            bytes,
            #[cfg(eventsource_loom)]
            access: loom::cell::UnsafeCell::new(()),
        }
    }

    /// The chunk's bytes, for a holder of one of its counts.
    #[inline(always)]
    fn read(&self) -> &Bytes {
        #[cfg(eventsource_loom)]
        self.access.with(|_| ());
        &self.bytes
    }
}

/// Releases `n` counts of `chunk`, freeing it with the last (as `Arc` does).
///
/// # Safety
/// The caller owns `n` counts of a live `Chunk` made with `Box::into_raw`.
#[inline]
unsafe fn release(chunk: *const Chunk, n: usize) {
    // SAFETY: the caller's counts keep it alive until this subtraction.
    if unsafe { (*chunk).refs.fetch_sub(n, Atomic::Release) } == n {
        // SAFETY: that was the last count.
        unsafe { free(chunk) }
    }
}

/// Frees a chunk whose last count was released. Out of line: once a chunk, not once a text.
///
/// # Safety
/// The caller released the last count of a `Chunk` made with `Box::into_raw`.
#[cold]
#[inline(never)]
unsafe fn free(chunk: *const Chunk) {
    // ThreadSanitizer does not model fences; an acquire load of the count orders the same way
    // (std's `Arc` does the same under TSan). `make -C ffi-c tsan` builds with this cfg.
    #[cfg(not(eventsource_tsan))]
    fence(Atomic::Acquire);
    #[cfg(eventsource_tsan)]
    // SAFETY: the chunk is not freed yet.
    unsafe { &*chunk }.refs.load(Atomic::Acquire);
    // SAFETY: the caller's.
    let chunk = unsafe { Box::from_raw(chunk.cast_mut()) };
    #[cfg(eventsource_loom)]
    chunk.access.with_mut(|_| ());
    drop(chunk);
}

// SAFETY: a `Text` owns nothing but an `Arc<str>` or counts of a `Chunk` (whose count is atomic
// and whose `Bytes` is Send + Sync), or borrows a `&'static str`.
unsafe impl Send for Text {}
// SAFETY: as above; it is immutable.
unsafe impl Sync for Text {}

impl Drop for Text {
    /// One comparison inline; the release of a count out of line ([`release_count`]): inlined,
    /// it made every handler that drops an event too big for the compiler to inline into the
    /// parse loop.
    #[inline]
    fn drop(&mut self) {
        if self.kind() >= CHUNK {
            // SAFETY: a `CHUNK` or `SHARED` text owns one count, given up here.
            unsafe { release_count(self) }
        }
    }
}

/// Releases the count that a `CHUNK` or `SHARED` text owns.
///
/// A `CHUNK` text's count is held back in this thread's [`HELD`] while the texts dropped are of
/// the same chunk (as an event handler drops the events of one read): one atomic subtraction
/// for all of them, not one each. An atomic operation per event was 10–15% of a push run.
///
/// `extern "C"`: it cannot unwind (a panic in it aborts), so a caller dropping several texts
/// needs no cleanup code for the case that one drop panics. That code made an event's drop
/// glue too costly to inline.
///
/// # Safety
/// `t` is a `CHUNK` or `SHARED` text, and is not used afterwards.
#[inline(never)]
unsafe extern "C" fn release_count(t: &Text) {
    if t.kind() == CHUNK {
        let chunk = t.ptr.cast::<Chunk>();
        // During the thread's exit (no `HELD` any more): at once.
        if HELD.try_with(|h| h.hold(chunk)).is_err() {
            // SAFETY: the caller's.
            unsafe { release(chunk, 1) }
        }
    } else {
        // SAFETY: `arc_ptr` came from `Arc::into_raw` (the caller's).
        drop(unsafe { Arc::from_raw(t.arc_ptr()) })
    }
}

/// Counts of one chunk that texts dropped on this thread gave up, not yet subtracted from it.
struct Held(Cell<(*const Chunk, usize)>);

#[cfg(not(eventsource_loom))]
thread_local! {
    static HELD: Held = const { Held(Cell::new((std::ptr::null(), 0))) };
}
#[cfg(eventsource_loom)]
loom::thread_local! {
    static HELD: Held = Held(Cell::new((std::ptr::null(), 0)));
}

impl Held {
    /// Takes one count of `chunk`, releasing those held of another chunk first.
    #[inline]
    fn hold(&self, chunk: *const Chunk) {
        let (held, n) = self.0.get();
        if std::ptr::eq(held, chunk) {
            self.0.set((held, n + 1));
        } else {
            self.0.set((chunk, 1));
            if !held.is_null() {
                // SAFETY: the `n` counts texts gave up, held since.
                unsafe { release(held, n) }
            }
        }
    }

    fn release(&self) {
        let (held, n) = self.0.replace((std::ptr::null(), 0));
        if !held.is_null() {
            // SAFETY: as in `hold`.
            unsafe { release(held, n) }
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.release();
    }
}

/// Releases the counts that this thread holds back (see [`release_count`]), so that the chunk
/// is freed if no text of it is left. Called where a thread stops handling events for a
/// while: after a push handler returns, before a receive waits, at `close()`. A thread holds
/// back counts of one chunk at most.
#[cfg_attr(not(feature = "client"), allow(dead_code))]
pub(crate) fn release_held() {
    let _ = HELD.try_with(Held::release);
}

/// Little-endian word of up to 8 bytes (missing bytes are zero).
#[inline(always)]
fn le_word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w[..b.len()].copy_from_slice(b);
    u64::from_le_bytes(w)
}

impl Text {
    /// The empty string.
    pub const fn new() -> Text {
        Text::from_static("")
    }

    /// A `Text` over a static string: no allocation, free to clone.
    pub const fn from_static(s: &'static str) -> Text {
        Text::pointer(STATIC, s.as_ptr(), s.len())
    }

    /// A pointer form with nothing after the kind (`STATIC`, `SHARED`).
    const fn pointer(kind: u8, ptr: *const u8, len: usize) -> Text {
        Text { head: head(kind, 0), ptr, len }
    }

    fn shared(s: Arc<str>) -> Text {
        let len = s.len();
        Text::pointer(SHARED, Arc::into_raw(s).cast::<u8>(), len)
    }

    /// A `CHUNK` text: `len` bytes at `offset` in `chunk`, holding one of its counts.
    #[inline(always)]
    fn chunk(chunk: *const Chunk, offset: usize, len: usize) -> Text {
        debug_assert!(offset < 1 << 56);
        Text { head: head(CHUNK, offset as u64), ptr: chunk.cast(), len }
    }

    #[inline(always)]
    fn kind(&self) -> u8 {
        (self.head.to_le() & 0xFF) as u8
    }

    /// Where a `CHUNK` text starts in its chunk.
    #[inline(always)]
    fn offset(&self) -> usize {
        self.head.to_le() >> 8
    }

    /// The `Arc<str>` of a `SHARED` text, as a raw pointer.
    #[inline(always)]
    fn arc_ptr(&self) -> *const str {
        std::ptr::slice_from_raw_parts(self.ptr, self.len) as *const str
    }

    /// The inline form of `len` bytes, given as the (little-endian) words that hold bytes
    /// `0..7`, `7..15` and `15..23` of the value (bytes past `len` are ignored): three word
    /// stores.
    #[inline(always)]
    fn inline_words(len: usize, w0: u64, w1: u64, w2: u64) -> Text {
        debug_assert!(len <= INLINE_CAP);
        Text {
            head: head(len as u8, w0),
            ptr: std::ptr::without_provenance(w1.to_le() as usize),
            len: w2.to_le() as usize,
        }
    }

    /// A copy of a string of at most [`INLINE_CAP`] bytes, stored inline.
    #[inline]
    fn inline(b: &[u8]) -> Text {
        let mut buf = [0u8; INLINE_CAP];
        buf[..b.len()].copy_from_slice(b);
        Text::inline_words(b.len(), le_word(&buf[..7]), le_word(&buf[7..15]), le_word(&buf[15..23]))
    }

    /// Wraps bytes the caller has checked to be valid UTF-8: short ones are copied inline,
    /// long ones kept without a copy (in a [`Chunk`] of their own: one allocation).
    ///
    /// # Safety
    /// `bytes` must be valid UTF-8.
    #[inline]
    pub(crate) unsafe fn from_utf8_unchecked(bytes: Bytes) -> Text {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        if bytes.len() <= INLINE_CAP {
            return Text::inline(&bytes);
        }
        let len = bytes.len();
        let chunk = Box::into_raw(Box::new(Chunk::new(1, bytes)));
        Text::chunk(chunk, 0, len)
    }

    /// The short UTF-8 bytes `value` (at most [`INLINE_CAP`]), a part of `chunk` (or empty),
    /// copied inline.
    ///
    /// # Safety
    /// `value` must be valid UTF-8.
    #[inline]
    unsafe fn inline_from_chunk_unchecked(chunk: &[u8], value: &[u8]) -> Text {
        debug_assert!(std::str::from_utf8(value).is_ok());
        let len = value.len();
        debug_assert!(len <= INLINE_CAP);
        let (base, at) = (chunk.as_ptr() as usize, value.as_ptr() as usize);
        if at >= base && at + INLINE_CAP <= base + chunk.len() {
            // Three word loads from the chunk: the bytes after the value are inside it, and
            // `as_bytes` ignores them. No `memcpy` call, no byte-wise stores.
            let p = value.as_ptr();
            // SAFETY: just checked that `chunk` has `INLINE_CAP` bytes from `value`.
            let (w0, w1, w2) = unsafe {
                (
                    u64::from_le(p.cast::<u64>().read_unaligned()),
                    u64::from_le(p.add(7).cast::<u64>().read_unaligned()),
                    u64::from_le(p.add(15).cast::<u64>().read_unaligned()),
                )
            };
            Text::inline_words(len, w0, w1, w2)
        } else {
            Text::inline(value)
        }
    }

    /// A copy of UTF-8 bytes: inline when short, else one allocation (an `Arc<str>`).
    ///
    /// # Safety
    /// `value` must be valid UTF-8.
    #[inline]
    pub(crate) unsafe fn copy_unchecked(value: &[u8]) -> Text {
        // SAFETY: the caller's.
        Text::from(unsafe { std::str::from_utf8_unchecked(value) })
    }

    /// Decodes `bytes` as UTF-8, replacing invalid sequences with U+FFFD (maximal subparts,
    /// as the WHATWG decoder does). Valid input is kept without copying (or inline when short).
    pub fn from_utf8_lossy(bytes: Bytes) -> Text {
        match std::str::from_utf8(&bytes) {
            // SAFETY: just checked.
            Ok(_) => unsafe { Text::from_utf8_unchecked(bytes) },
            Err(_) => Text::from(String::from_utf8_lossy(&bytes).as_ref()),
        }
    }

    /// The text as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor guarantees UTF-8.
        unsafe { std::str::from_utf8_unchecked(self.as_bytes()) }
    }

    /// The underlying bytes (UTF-8).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        let kind = self.kind();
        if kind as usize <= INLINE_CAP {
            // SAFETY: the inline bytes follow the kind byte inside `self`.
            unsafe {
                std::slice::from_raw_parts((self as *const Text).cast::<u8>().add(1), kind.into())
            }
        } else if kind == CHUNK {
            // SAFETY: a `CHUNK` text holds a count of its chunk, and its bytes are in it.
            unsafe {
                let chunk = &*self.ptr.cast::<Chunk>();
                let offset = self.offset();
                std::slice::from_raw_parts(chunk.read().as_ptr().add(offset), self.len)
            }
        } else {
            // SAFETY: a static or shared string's pointer and length.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// The bytes (UTF-8) as a `Bytes`, e.g. to hand to a binding. Free of copies for a long
    /// value sliced from the network and for a static string; copies an inline or shared one.
    pub fn into_bytes(self) -> Bytes {
        match self.kind() {
            STATIC => {
                // SAFETY: a `STATIC` text borrows a `&'static str`.
                Bytes::from_static(unsafe { std::slice::from_raw_parts(self.ptr, self.len) })
            }
            CHUNK => {
                // SAFETY: `self` holds a count of its chunk.
                let chunk = unsafe { &*self.ptr.cast::<Chunk>() };
                let offset = self.offset();
                chunk.read().slice(offset..offset + self.len)
            }
            _ => Bytes::copy_from_slice(self.as_bytes()),
        }
    }
}

/// The most strings [`Text::interned`] keeps, and the longest (an origin is a scheme, a host
/// of at most 253 bytes and a port): at most ~1 MiB for the life of the process.
const MAX_INTERNED: usize = 4096;
const MAX_INTERNED_LEN: usize = 270;

impl Text {
    /// The same string as a text that is free to clone and drop: `self` if it is inline or
    /// static, else (up to [`MAX_INTERNED_LEN`] bytes) a copy kept for the life of the process,
    /// one per distinct string. For strings that every event of a source carries, its origin:
    /// a shared one's count cost two atomic operations per event, which took the parser from
    /// 2.6× to 1.7× `sse-stream` on small events with a 25-byte origin (`https://api.anthropic.com`),
    /// and in pull mode the count's cache line travels between the two threads. Past
    /// [`MAX_INTERNED`] distinct strings, `self` is returned as it is.
    pub(crate) fn interned(self) -> Text {
        if self.kind() <= STATIC || self.len() > MAX_INTERNED_LEN {
            return self;
        }
        static KEPT: LazyLock<Mutex<HashSet<&'static str>>> = LazyLock::new(Default::default);
        let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(&s) = kept.get(self.as_str()) {
            return Text::from_static(s);
        }
        if kept.len() >= MAX_INTERNED {
            return self;
        }
        let s: &'static str = Box::leak(Box::from(self.as_str()));
        kept.insert(s);
        Text::from_static(s)
    }
}

/// Makes the values of one chunk `Text`s: short ones inline, long ones slices of the chunk.
///
/// The long values share one [`Chunk`], made at the first one, whose counts are taken
/// [`BULK`] at a time; the unused ones are given back when the slicer is dropped.
///
/// The slicer owns the chunk's `Bytes` and moves it into the shared chunk when it makes one (a
/// clone and a drop of the `Bytes` would cost two atomic operations a chunk).
pub(crate) struct Slicer {
    /// The chunk's bytes: owned by `owned`, or by `shared` once it is made (which the slicer
    /// keeps alive with its spare counts).
    data: *const u8,
    len: usize,
    /// The chunk until `shared` takes it.
    owned: Cell<Option<Bytes>>,
    /// The shared chunk, once made (null before).
    shared: Cell<*const Chunk>,
    /// Counts of `shared` taken and not yet handed to a text (at least one once it is made).
    spare: Cell<usize>,
}

/// How many counts a [`Slicer`] takes at once.
#[cfg(not(eventsource_loom))]
const BULK: usize = 1 << 16;
/// Loom: few, so that a model with a few texts reaches the top-ups.
#[cfg(eventsource_loom)]
const BULK: usize = 2;

impl Slicer {
    #[inline]
    pub(crate) fn new(chunk: Bytes) -> Slicer {
        Slicer {
            data: chunk.as_ptr(),
            len: chunk.len(),
            owned: Cell::new(Some(chunk)),
            shared: Cell::new(std::ptr::null()),
            spare: Cell::new(0),
        }
    }

    /// The chunk's bytes.
    #[inline(always)]
    pub(crate) fn bytes(&self) -> &[u8] {
        // SAFETY: the chunk's buffer does not move with its `Bytes`, and lives while the slicer
        // owns that `Bytes` or holds a count of the shared chunk that took it.
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }

    /// `chunk[range]` as a `Bytes` (for a value that outlives the slicer's use).
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> Bytes {
        let shared = self.shared.get();
        if shared.is_null() {
            let chunk = self.owned.take().unwrap_or_default();
            let part = chunk.slice(range);
            self.owned.set(Some(chunk));
            part
        } else {
            // SAFETY: the slicer holds a count of the shared chunk.
            unsafe { (*shared).read().slice(range) }
        }
    }

    /// The UTF-8 bytes `value`, a part of the chunk (or empty), as a `Text`.
    ///
    /// # Safety
    /// `value` must be valid UTF-8, and a part of the chunk if longer than `INLINE_CAP`.
    #[inline(always)]
    pub(crate) unsafe fn text(&self, value: &[u8]) -> Text {
        if value.len() <= INLINE_CAP {
            // SAFETY: the caller's.
            unsafe { Text::inline_from_chunk_unchecked(self.bytes(), value) }
        } else {
            // SAFETY: the caller's.
            unsafe { self.long(value) }
        }
    }

    /// # Safety
    /// `value` must be valid UTF-8 and a part of the chunk.
    #[inline]
    unsafe fn long(&self, value: &[u8]) -> Text {
        debug_assert!(std::str::from_utf8(value).is_ok());
        let mut shared = self.shared.get();
        if shared.is_null() {
            let bytes = self.owned.take().unwrap_or_default();
            let chunk = Chunk::new(BULK, bytes);
            shared = Box::into_raw(Box::new(chunk));
            self.shared.set(shared);
            self.spare.set(BULK);
        }
        self.take_count(shared);
        let offset = (value.as_ptr() as usize).wrapping_sub(self.data as usize);
        debug_assert!(offset + value.len() <= self.len);
        Text::chunk(shared, offset, value.len())
    }

    /// Takes one of the spare counts of `shared` (made): for a text.
    #[inline(always)]
    fn take_count(&self, shared: *const Chunk) {
        if self.spare.get() == 1 {
            // The slicer never hands out its last count: with it, the chunk is alive here even
            // if every text made so far has been dropped.
            // SAFETY: that count.
            unsafe { (*shared).refs.fetch_add(BULK, Atomic::Relaxed) };
            self.spare.set(self.spare.get() + BULK);
        }
        self.spare.set(self.spare.get() - 1);
    }

    /// Whether `t` is a slice of this chunk (holding a count of the slicer's shared chunk).
    #[inline(always)]
    fn is_mine(&self, t: &Text) -> bool {
        t.kind() == CHUNK && std::ptr::eq(t.ptr.cast(), self.shared.get())
    }

    /// A copy of `t`. A slice of this chunk takes one of the slicer's spare counts: no atomic
    /// operation.
    #[inline(always)]
    pub(crate) fn share(&self, t: &Text) -> Text {
        if self.is_mine(t) {
            self.take_count(self.shared.get());
            // SAFETY: with the count taken, a bitwise copy is a clone.
            unsafe { std::ptr::read(t) }
        } else {
            t.clone()
        }
    }

    /// Drops `t`. A slice of this chunk gives its count back to the slicer's spares (which the
    /// slicer releases when it is dropped): no atomic operation.
    #[inline(always)]
    pub(crate) fn give_back(&self, t: Text) {
        if self.is_mine(&t) {
            self.spare.set(self.spare.get() + 1);
            std::mem::forget(t);
        }
    }
}

impl Drop for Slicer {
    fn drop(&mut self) {
        let shared = self.shared.get();
        if !shared.is_null() {
            // SAFETY: the spares are counts the slicer owns.
            unsafe { release(shared, self.spare.get()) };
        }
    }
}

impl Clone for Text {
    #[inline]
    fn clone(&self) -> Text {
        match self.kind() {
            // SAFETY: `arc_ptr` came from `Arc::into_raw`; the copy below owns this count.
            SHARED => unsafe { Arc::increment_strong_count(self.arc_ptr()) },
            CHUNK => {
                // SAFETY: `self` holds a count, so the chunk is alive; the copy owns this one.
                let refs = unsafe { &(*self.ptr.cast::<Chunk>()).refs };
                refs.fetch_add(1, Atomic::Relaxed);
            }
            _ => {}
        }
        // SAFETY: with the count taken, a bitwise copy is a clone. One 24-byte copy (not a
        // rebuilt value) so that reading it back soon after is store-forwarded.
        unsafe { std::ptr::read(self) }
    }
}

impl Default for Text {
    fn default() -> Text {
        Text::new()
    }
}

impl Deref for Text {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for Text {
    /// Inline when short, else one allocation (an `Arc<str>`, a copy).
    fn from(s: String) -> Text {
        Text::from(s.as_str())
    }
}

impl From<&str> for Text {
    /// Inline when short, else one allocation (an `Arc<str>`: clones are an atomic count).
    fn from(s: &str) -> Text {
        if s.len() <= INLINE_CAP { Text::inline(s.as_bytes()) } else { Text::shared(Arc::from(s)) }
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.as_str().to_owned()
    }
}

impl PartialEq for Text {
    #[inline]
    fn eq(&self, other: &Text) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Text {}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for Text {
    /// As the `str` hashes (so `Borrow<str>` lookups in hash maps work).
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<Text> for &str {
    fn eq(&self, other: &Text) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<Text> for str {
    fn eq(&self, other: &Text) -> bool {
        self == other.as_str()
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(all(test, eventsource_loom))]
mod loom_tests;

#[cfg(all(test, not(eventsource_loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Three words: an event (four texts and a tag) is at most the 128 bytes that the
    /// compiler moves inline, without a `memcpy` call.
    #[test]
    fn is_three_words() {
        assert_eq!(std::mem::size_of::<Text>(), 24);
        assert_eq!(std::mem::size_of::<crate::MessageEvent>(), 96);
        assert!(std::mem::size_of::<crate::Event>() <= 128);
    }

    /// A long value in its own `Bytes` is kept, not copied.
    #[test]
    fn long_bytes_are_kept_without_a_copy() {
        let b = Bytes::from("a value longer than the inline capacity of a text".to_owned());
        let t = Text::from_utf8_lossy(b.clone());
        assert_eq!(t.as_ptr(), b.as_ptr());
        assert_eq!(t.clone().into_bytes().as_ptr(), b.as_ptr());
    }

    #[test]
    fn every_representation_is_the_same_string() {
        let long = "a string that is longer than the inline capacity";
        for s in [
            "",
            "tok",
            "seven b",
            "exactly eight",
            "twenty-three bytes long",
            "twenty-four bytes long!!",
            long,
            "é😀…",
        ] {
            let all = [
                Text::from(s),
                Text::from(s.to_string()),
                Text::from_utf8_lossy(Bytes::copy_from_slice(s.as_bytes())),
                Text::shared(Arc::from(s)),
                Text::from_static(s),
            ];
            for t in &all {
                assert_eq!(t.as_str(), s);
                assert_eq!(t, &all[0]);
                assert_eq!(t.clone().into_bytes(), s.as_bytes());
                assert_eq!(t.cmp(&all[0]), Ordering::Equal);
                assert_eq!(format!("{t}"), s);
                assert_eq!(format!("{t:?}"), format!("{s:?}"));
                let set: HashSet<Text> = [t.clone()].into();
                assert!(set.contains(s), "Borrow<str> lookup of {s:?}");
            }
        }
        assert_eq!(Text::default(), "");
        assert_eq!(Text::from_static("message"), Text::from("message"));
        let (a, b) = (Text::from("a"), Text::from_static("b"));
        assert_eq!(a.cmp(&b), Ordering::Less);
        assert_eq!(Text::from_utf8_lossy(Bytes::from_static(b"a\xffb")), "a\u{FFFD}b");
    }

    /// Values read from a chunk keep exactly their bytes, at every length and position: inline
    /// ones read with word loads (including at the chunk's end, where the copy falls back), and
    /// long ones.
    #[test]
    fn from_chunk_keeps_exactly_the_value() {
        let chunk = Bytes::from((0..64u8).map(|i| b'a' + i % 26).collect::<Vec<u8>>());
        for start in 0..chunk.len() {
            for end in start..chunk.len().min(start + 40) {
                let value = &chunk[start..end];
                // SAFETY: ASCII.
                let t = unsafe { Slicer::new(chunk.clone()).text(value) };
                assert_eq!(t.as_bytes(), value, "{start}..{end}");
                assert_eq!(t.clone(), Text::from(std::str::from_utf8(value).unwrap()));
            }
        }
    }

    /// The long values of a chunk share it: the counts taken in bulk balance, and the chunk is
    /// freed exactly once, after the last text is gone (dropped on another thread, after the
    /// slicer and the caller's `Bytes`), also past bulk top-ups.
    #[test]
    fn slicer_counts_are_balanced() {
        use std::sync::atomic::AtomicUsize;
        struct Owner(Vec<u8>, Arc<AtomicUsize>);
        impl AsRef<[u8]> for Owner {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
        impl Drop for Owner {
            fn drop(&mut self) {
                self.1.fetch_add(1, Atomic::SeqCst);
            }
        }
        const LEN: usize = INLINE_CAP + 1;
        for n in [0, 1, 2, 3, BULK - 1, BULK, BULK + 1, 2 * BULK + 5] {
            let freed = Arc::new(AtomicUsize::new(0));
            let bytes: Vec<u8> = (0..n * LEN).map(|i| b'a' + (i % LEN) as u8).collect();
            let chunk = Bytes::from_owner(Owner(bytes, Arc::clone(&freed)));
            let slicer = Slicer::new(chunk.clone());
            // SAFETY: ASCII.
            let mut texts: Vec<Text> =
                (0..n).map(|i| unsafe { slicer.text(&chunk[i * LEN..(i + 1) * LEN]) }).collect();
            // Copies by the slicer (a spare count) and by `clone` (an atomic one), alternately.
            let copies: Vec<Text> = (texts.iter().step_by(7).enumerate())
                .map(|(i, t)| if i % 2 == 0 { slicer.share(t) } else { t.clone() })
                .collect();
            // Counts given back to the slicer become spares: its own texts' and copies'.
            texts.iter().step_by(3).for_each(|t| slicer.give_back(slicer.share(t)));
            if let Some(t) = texts.pop() {
                slicer.give_back(t);
            }
            // A text of another chunk is cloned and dropped the usual way.
            let foreign = Text::from_utf8_lossy(Bytes::from(vec![b'x'; LEN]));
            slicer.give_back(slicer.share(&foreign));
            assert_eq!(foreign, "x".repeat(LEN).as_str());
            drop(slicer);
            drop(chunk);
            assert_eq!(freed.load(Atomic::SeqCst), usize::from(n == 0), "{n} values");
            let want = std::str::from_utf8(&(0..LEN as u8).map(|i| b'a' + i).collect::<Vec<u8>>())
                .unwrap()
                .to_owned();
            assert!(texts.iter().chain(&copies).all(|t| *t == *want), "{n} values");
            if let Some(t) = copies.first() {
                assert_eq!(t.clone().into_bytes(), want.as_bytes());
            }
            // That thread's exit releases the counts it held back.
            std::thread::spawn(move || drop(texts)).join().unwrap();
            assert_eq!(freed.load(Atomic::SeqCst), usize::from(n == 0 || copies.is_empty()));
            let none = copies.is_empty();
            drop(copies);
            // This thread holds back the counts the copies gave up, until it lets go of them.
            assert_eq!(freed.load(Atomic::SeqCst), usize::from(none), "{n} values");
            release_held();
            assert_eq!(freed.load(Atomic::SeqCst), 1, "{n} values");
        }
    }

    /// Counts given up on a thread are held back while the texts dropped are of one chunk, and
    /// released when one of another chunk is dropped, or when asked.
    #[test]
    fn held_counts_are_released_with_the_next_chunk() {
        let long = |c: u8| Text::from_utf8_lossy(Bytes::from(vec![c; INLINE_CAP + 1]));
        let (a, b) = (long(b'a'), long(b'b'));
        let (a_bytes, b_bytes) = (a.clone().into_bytes(), b.clone().into_bytes());
        release_held();
        // A `Bytes` of the chunk's buffer is unique once the chunk (and its texts) are gone.
        let alive = |x: &Bytes| !x.is_unique();
        let copies: Vec<Text> = (0..3).map(|_| a.clone()).collect();
        drop(a);
        drop(copies);
        assert!(alive(&a_bytes), "held back");
        drop(b.clone());
        assert!(!alive(&a_bytes), "released by another chunk's text");
        drop(b);
        assert!(alive(&b_bytes), "held back");
        release_held();
        assert!(!alive(&b_bytes), "released when asked");
    }

    /// Long strings are interned once each, short and static ones kept as they are, and past
    /// the limit a string stays as it was (one test: the table is the process's).
    #[test]
    fn interned_texts_are_static_and_bounded() {
        let long = "https://an-origin-longer-than-23.example:8443";
        let a = Text::from(long).interned();
        let b = Text::from(long.to_owned()).interned();
        assert_eq!((a.kind(), b.kind()), (STATIC, STATIC));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one copy per distinct string");
        assert_eq!(a, long);
        assert_eq!(Text::from("http://127.0.0.1:8080").interned().kind(), 21);
        let huge = "h".repeat(MAX_INTERNED_LEN + 1);
        assert_eq!(Text::from(huge.as_str()).interned().kind(), SHARED);
        for i in 0..MAX_INTERNED {
            drop(Text::from(format!("https://origin-number-{i:08}.example")).interned());
        }
        let past = Text::from("https://one-origin-too-many.example").interned();
        assert_eq!((past.kind(), past.as_str()), (SHARED, "https://one-origin-too-many.example"));
        assert_eq!(Text::from(long).interned().as_ptr(), a.as_ptr(), "kept ones stay kept");
    }

    #[test]
    fn shared_counts_are_balanced() {
        let arc: Arc<str> = Arc::from("a shared string longer than the inline capacity");
        let t = Text::shared(Arc::clone(&arc));
        let copies: Vec<Text> = (0..5).map(|_| t.clone()).collect();
        assert_eq!(Arc::strong_count(&arc), 7);
        drop(copies);
        drop(t);
        assert_eq!(Arc::strong_count(&arc), 1);
    }
}
