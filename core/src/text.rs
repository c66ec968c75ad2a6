//! `Text`: an immutable, cheaply cloned UTF-8 string.
//!
//! Event fields are `Text` rather than `String` so that building and dropping a `MessageEvent`
//! is cheap on the parser's hot path. A `Text` is one of:
//!
//! - a `&'static str` (the type `message`, the empty string): free to clone and drop;
//! - up to [`INLINE_CAP`] bytes stored inline (short data such as LLM tokens, ids, custom types,
//!   most origins): cloning copies 32 bytes, no allocation, no atomic, no indirect call, and it
//!   does not keep a network buffer alive;
//! - an `Arc<str>` (a long string made by the caller, e.g. a long origin): an atomic count;
//! - a slice of a network chunk shared by the long values of that chunk (`CHUNK`): no copy, and
//!   the parser takes the chunk's counts in bulk ([`Slicer`]), so a chunk of many long values
//!   (LLM tokens, JSON) costs one atomic add, not one per value (that add and the matching
//!   release were ~35% of the parser's time on LLM-token-sized events);
//! - a `Bytes` (a long value made from one: a lone long value of a chunk, a copy).
//!
//! `size_of::<Text>()` is 32 bytes (the `Bytes` variant's niche holds the tag).
//!
//! The short forms are three machine words with the kind in the first byte, not a byte-tagged
//! enum: a `Text` is built and moved on every event, and an enum's odd-sized pieces (a tag
//! byte, a length byte, 22 bytes) are copied as overlapping narrow moves that stall the CPU's
//! store forwarding when the value is read back right after it was written.

use bytes::Bytes;
use std::borrow::Borrow;
use std::cell::Cell;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as Atomic, fence};

/// The longest string a `Text` stores inline.
pub(crate) const INLINE_CAP: usize = 23;

/// An immutable UTF-8 string (static, inline, shared or a slice of reference-counted bytes).
/// Derefs to `str`.
pub struct Text(Repr);

enum Repr {
    /// A long value: the bytes are UTF-8.
    Bytes(Bytes),
    Small(Small),
}

/// A static, inline or shared string in three words. The first byte in memory is the kind:
/// `0..=INLINE_CAP` is an inline string of that length in the 23 bytes after it; `STATIC` is a
/// `&'static str` and `SHARED` an `Arc<str>`, each as (`ptr`, `len`); `CHUNK` is `len` bytes at
/// an offset (the rest of `head`) into a [`Chunk`] (`ptr`).
#[repr(C)]
struct Small {
    head: usize,
    ptr: *const u8,
    len: usize,
}

#[cfg(not(target_pointer_width = "64"))]
compile_error!("eventsource-core's `Text` packs 23 inline bytes into three 64-bit words");

const CHUNK: u8 = 0xFD;
const STATIC: u8 = 0xFE;
const SHARED: u8 = 0xFF;

/// A network chunk shared by `CHUNK` texts: one count per text (and the [`Slicer`]'s spares).
struct Chunk {
    refs: AtomicUsize,
    bytes: Bytes,
}

/// Releases `n` counts of `chunk`, freeing it with the last (as `Arc` does).
///
/// # Safety
/// The caller owns `n` counts of a live `Chunk` made by `Slicer`.
#[inline]
unsafe fn release(chunk: *const Chunk, n: usize) {
    // SAFETY: the caller's counts keep it alive until this subtraction.
    if unsafe { (*chunk).refs.fetch_sub(n, Atomic::Release) } == n {
        fence(Atomic::Acquire);
        // SAFETY: that was the last count; `Slicer` made it with `Box::into_raw`.
        drop(unsafe { Box::from_raw(chunk.cast_mut()) });
    }
}

// SAFETY: `Small` owns nothing but an `Arc<str>` or counts of a `Chunk` (whose count is atomic
// and whose `Bytes` is Send + Sync), or borrows a `&'static str`.
unsafe impl Send for Small {}
// SAFETY: as above; it is immutable.
unsafe impl Sync for Small {}

impl Small {
    /// The first byte in memory: the kind.
    #[inline(always)]
    fn kind(&self) -> u8 {
        // `head`'s first byte in memory on either endianness.
        (self.head.to_le() & 0xFF) as u8
    }

    /// A pointer form (`STATIC`, `SHARED`).
    #[inline(always)]
    const fn pointer(kind: u8, ptr: *const u8, len: usize) -> Small {
        Small { head: usize::from_le(kind as usize), ptr, len }
    }

    /// The inline form of `len` bytes, given as the (little-endian) words that hold bytes
    /// `0..7`, `7..15` and `15..23` of the value (bytes past `len` are ignored): three word
    /// stores.
    #[inline(always)]
    fn inline_words(len: usize, w0: u64, w1: u64, w2: u64) -> Small {
        debug_assert!(len <= INLINE_CAP);
        let head = ((w0 << 8) | len as u64).to_le();
        Small {
            head: head as usize,
            ptr: std::ptr::without_provenance(w1.to_le() as usize),
            len: w2.to_le() as usize,
        }
    }

    #[inline(always)]
    fn as_bytes(&self) -> &[u8] {
        let kind = self.kind();
        if kind as usize <= INLINE_CAP {
            // SAFETY: the inline bytes follow the kind byte inside `self`.
            unsafe {
                std::slice::from_raw_parts(
                    (self as *const Small).cast::<u8>().add(1),
                    kind as usize,
                )
            }
        } else if kind == CHUNK {
            // SAFETY: a `CHUNK` text holds a count of its chunk, and its bytes are in it.
            unsafe {
                let chunk = &*self.ptr.cast::<Chunk>();
                std::slice::from_raw_parts(chunk.bytes.as_ptr().add(self.offset()), self.len)
            }
        } else {
            // SAFETY: a static or shared string's pointer and length.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// Where a `CHUNK` text starts in its chunk.
    #[inline(always)]
    fn offset(&self) -> usize {
        usize::from_le(self.head) >> 8
    }

    /// The `Arc<str>` of a `SHARED` small string, as a raw pointer.
    #[inline(always)]
    fn arc_ptr(&self) -> *const str {
        std::ptr::slice_from_raw_parts(self.ptr, self.len) as *const str
    }
}

impl Drop for Small {
    #[inline]
    fn drop(&mut self) {
        match self.kind() {
            // SAFETY: `arc_ptr` came from `Arc::into_raw`; this releases `self`'s count.
            SHARED => drop(unsafe { Arc::from_raw(self.arc_ptr()) }),
            // SAFETY: `self` holds one count of its chunk.
            CHUNK => unsafe { release(self.ptr.cast(), 1) },
            _ => {}
        }
    }
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
        Text(Repr::Small(Small::pointer(STATIC, s.as_ptr(), s.len())))
    }

    fn shared(s: Arc<str>) -> Text {
        let len = s.len();
        Text(Repr::Small(Small::pointer(SHARED, Arc::into_raw(s).cast::<u8>(), len)))
    }

    /// A copy of a string of at most [`INLINE_CAP`] bytes, stored inline.
    #[inline]
    fn inline(b: &[u8]) -> Text {
        debug_assert!(b.len() <= INLINE_CAP);
        let mut buf = [0u8; INLINE_CAP];
        buf[..b.len()].copy_from_slice(b);
        Text(Repr::Small(Small::inline_words(
            b.len(),
            le_word(&buf[..7]),
            le_word(&buf[7..15]),
            le_word(&buf[15..23]),
        )))
    }

    /// Wraps bytes the caller has checked to be valid UTF-8 (short ones are copied inline).
    ///
    /// # Safety
    /// `bytes` must be valid UTF-8.
    #[inline]
    pub(crate) unsafe fn from_utf8_unchecked(bytes: Bytes) -> Text {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        if bytes.len() <= INLINE_CAP { Text::inline(&bytes) } else { Text(Repr::Bytes(bytes)) }
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
            Text(Repr::Small(Small::inline_words(len, w0, w1, w2)))
        } else {
            Text::inline(value)
        }
    }

    /// A copy of UTF-8 bytes: inline when short, else one allocation.
    ///
    /// # Safety
    /// `value` must be valid UTF-8.
    #[inline]
    pub(crate) unsafe fn copy_unchecked(value: &[u8]) -> Text {
        debug_assert!(std::str::from_utf8(value).is_ok());
        if value.len() <= INLINE_CAP {
            Text::inline(value)
        } else {
            Text(Repr::Bytes(Bytes::copy_from_slice(value)))
        }
    }

    /// Decodes `bytes` as UTF-8, replacing invalid sequences with U+FFFD (maximal subparts,
    /// as the WHATWG decoder does). Valid input is kept without copying (or inline when short).
    pub fn from_utf8_lossy(bytes: Bytes) -> Text {
        match std::str::from_utf8(&bytes) {
            // SAFETY: just checked.
            Ok(_) => unsafe { Text::from_utf8_unchecked(bytes) },
            Err(_) => Text::from(String::from_utf8_lossy(&bytes).into_owned()),
        }
    }

    #[inline]
    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor guarantees UTF-8.
        unsafe { std::str::from_utf8_unchecked(self.as_bytes()) }
    }

    /// The underlying bytes (UTF-8).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Bytes(b) => b,
            Repr::Small(s) => s.as_bytes(),
        }
    }

    /// The bytes (UTF-8) as a `Bytes`, e.g. to hand to a binding. Free for a long value
    /// sliced from the network and for a static string; copies an inline or shared string.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Bytes(b) => b,
            Repr::Small(s) if s.kind() == STATIC => {
                // SAFETY: a `STATIC` small string borrows a `&'static str`.
                Bytes::from_static(unsafe { std::slice::from_raw_parts(s.ptr, s.len) })
            }
            Repr::Small(s) if s.kind() == CHUNK => {
                // SAFETY: `s` holds a count of its chunk.
                let chunk = unsafe { &*s.ptr.cast::<Chunk>() };
                chunk.bytes.slice(s.offset()..s.offset() + s.len)
            }
            Repr::Small(s) => Bytes::copy_from_slice(s.as_bytes()),
        }
    }
}

/// Makes the values of one chunk `Text`s: short ones inline, long ones slices of the chunk.
///
/// The first long value is a plain `Bytes` slice (a chunk with one event, as live servers send,
/// costs what it did); from the second on, the long values share one [`Chunk`] whose counts are
/// taken [`BULK`] at a time, and the unused ones given back when the slicer is dropped.
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
    /// A long value was sliced the plain way.
    sliced: Cell<bool>,
}

/// How many counts a [`Slicer`] takes at once.
const BULK: usize = 1 << 16;

impl Slicer {
    #[inline]
    pub(crate) fn new(chunk: Bytes) -> Slicer {
        Slicer {
            data: chunk.as_ptr(),
            len: chunk.len(),
            owned: Cell::new(Some(chunk)),
            shared: Cell::new(std::ptr::null()),
            spare: Cell::new(0),
            sliced: Cell::new(false),
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
            unsafe { (*shared).bytes.slice(range) }
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
            if !self.sliced.replace(true) {
                let offset = (value.as_ptr() as usize).wrapping_sub(self.data as usize);
                return Text(Repr::Bytes(self.slice(offset..offset + value.len())));
            }
            let bytes = self.owned.take().unwrap_or_default();
            let chunk = Chunk { refs: AtomicUsize::new(BULK), bytes };
            shared = Box::into_raw(Box::new(chunk));
            self.shared.set(shared);
            self.spare.set(BULK);
        }
        if self.spare.get() == 1 {
            // The slicer never hands out its last count: with it, the chunk is alive here even
            // if every text made so far has been dropped.
            // SAFETY: that count.
            unsafe { (*shared).refs.fetch_add(BULK, Atomic::Relaxed) };
            self.spare.set(self.spare.get() + BULK);
        }
        self.spare.set(self.spare.get() - 1);
        let offset = (value.as_ptr() as usize).wrapping_sub(self.data as usize);
        debug_assert!(offset + value.len() <= self.len && offset < 1 << 56);
        Text(Repr::Small(Small {
            head: usize::from_le((offset << 8) | usize::from(CHUNK)),
            ptr: shared.cast(),
            len: value.len(),
        }))
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
        match &self.0 {
            Repr::Bytes(b) => Text(Repr::Bytes(b.clone())),
            Repr::Small(s) => {
                match s.kind() {
                    // SAFETY: `arc_ptr` came from `Arc::into_raw`; the copy below owns this count.
                    SHARED => unsafe { Arc::increment_strong_count(s.arc_ptr()) },
                    CHUNK => {
                        // SAFETY: `s` holds a count, so the chunk is alive; the copy owns this one.
                        let refs = unsafe { &(*s.ptr.cast::<Chunk>()).refs };
                        refs.fetch_add(1, Atomic::Relaxed);
                    }
                    _ => {}
                }
                // SAFETY: with the count taken, a bitwise copy is a clone. One 32-byte copy (not
                // a rebuilt value) so that reading it back soon after is store-forwarded.
                unsafe { std::ptr::read(self) }
            }
        }
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
    fn from(s: String) -> Text {
        if s.len() <= INLINE_CAP {
            Text::inline(s.as_bytes())
        } else {
            Text(Repr::Bytes(Bytes::from(s.into_bytes())))
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn is_small() {
        assert!(std::mem::size_of::<Text>() <= 32);
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
                Text(Repr::Bytes(Bytes::copy_from_slice(s.as_bytes()))),
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
            let texts: Vec<Text> =
                (0..n).map(|i| unsafe { slicer.text(&chunk[i * LEN..(i + 1) * LEN]) }).collect();
            let copies: Vec<Text> = texts.iter().step_by(7).cloned().collect();
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
            std::thread::spawn(move || drop(texts)).join().unwrap();
            assert_eq!(freed.load(Atomic::SeqCst), usize::from(n == 0 || copies.is_empty()));
            drop(copies);
            assert_eq!(freed.load(Atomic::SeqCst), 1, "{n} values");
        }
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
