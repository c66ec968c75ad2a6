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
//! - a `Bytes` (a long value, usually a slice of the network chunk it arrived in: no copy).
//!
//! `size_of::<Text>()` is 32 bytes (the `Bytes` variant's niche holds the tag).

use bytes::Bytes;
use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// The longest string a `Text` stores inline.
pub(crate) const INLINE_CAP: usize = 22;

/// An immutable UTF-8 string (static, inline, shared or a slice of reference-counted bytes).
/// Derefs to `str`.
pub struct Text(Repr);

enum Repr {
    /// A long value: the bytes are UTF-8.
    Bytes(Bytes),
    Small(Small),
}

enum Small {
    Static(&'static str),
    /// `buf[..len]` is UTF-8.
    Inline {
        len: u8,
        buf: [u8; INLINE_CAP],
    },
    Shared(Arc<str>),
}

impl Text {
    /// The empty string.
    pub const fn new() -> Text {
        Text::from_static("")
    }

    /// A `Text` over a static string: no allocation, free to clone.
    pub const fn from_static(s: &'static str) -> Text {
        Text(Repr::Small(Small::Static(s)))
    }

    /// A copy of a string of at most [`INLINE_CAP`] bytes, stored inline.
    #[inline]
    fn inline(b: &[u8]) -> Text {
        debug_assert!(b.len() <= INLINE_CAP);
        let mut buf = [0u8; INLINE_CAP];
        buf[..b.len()].copy_from_slice(b);
        Text(Repr::Small(Small::Inline { len: b.len() as u8, buf }))
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

    /// The UTF-8 bytes `value`, a part of `chunk` (or empty): copied inline when short, else a slice of
    /// `chunk` (no copy; no `Bytes` is made or dropped for a short value).
    ///
    /// # Safety
    /// `value` must be valid UTF-8.
    #[inline]
    pub(crate) unsafe fn from_chunk_unchecked(chunk: &Bytes, value: &[u8]) -> Text {
        debug_assert!(std::str::from_utf8(value).is_ok());
        if value.len() > INLINE_CAP {
            return Text(Repr::Bytes(chunk.slice_ref(value)));
        }
        let (base, at) = (chunk.as_ptr() as usize, value.as_ptr() as usize);
        if at >= base && at + INLINE_CAP <= base + chunk.len() {
            // A fixed-size copy (a couple of moves, no `memcpy` call): the bytes after the
            // value are inside the chunk, and `as_bytes` ignores them.
            let mut buf = [0u8; INLINE_CAP];
            // SAFETY: just checked that `chunk` has `INLINE_CAP` bytes from `value`'s start.
            unsafe {
                std::ptr::copy_nonoverlapping(value.as_ptr(), buf.as_mut_ptr(), INLINE_CAP);
            }
            Text(Repr::Small(Small::Inline { len: value.len() as u8, buf }))
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
            Repr::Small(Small::Static(s)) => s.as_bytes(),
            Repr::Small(Small::Inline { len, buf }) => {
                // SAFETY: `len <= INLINE_CAP` by construction; skips the bounds check.
                unsafe { buf.get_unchecked(..*len as usize) }
            }
            Repr::Small(Small::Shared(s)) => s.as_bytes(),
        }
    }

    /// The bytes (UTF-8) as a `Bytes`, e.g. to hand to a binding. Free for a long value
    /// sliced from the network and for a static string; copies an inline or shared string.
    pub fn into_bytes(self) -> Bytes {
        match self.0 {
            Repr::Bytes(b) => b,
            Repr::Small(Small::Static(s)) => Bytes::from_static(s.as_bytes()),
            Repr::Small(Small::Inline { len, buf }) => Bytes::copy_from_slice(&buf[..len as usize]),
            Repr::Small(Small::Shared(s)) => Bytes::copy_from_slice(s.as_bytes()),
        }
    }
}

impl Clone for Text {
    #[inline]
    fn clone(&self) -> Text {
        match &self.0 {
            Repr::Bytes(b) => Text(Repr::Bytes(b.clone())),
            Repr::Small(Small::Shared(s)) => Text(Repr::Small(Small::Shared(Arc::clone(s)))),
            // SAFETY: a static or inline string owns nothing: a bitwise copy is a clone (and
            // compiles to a few moves rather than a per-variant copy of the inline bytes).
            Repr::Small(Small::Static(_) | Small::Inline { .. }) => unsafe { std::ptr::read(self) },
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
        if s.len() <= INLINE_CAP {
            Text::inline(s.as_bytes())
        } else {
            Text(Repr::Small(Small::Shared(Arc::from(s))))
        }
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
        for s in ["", "tok", "exactly twenty-two b!!", "twenty-three bytes long", long, "é😀…"]
        {
            let all = [
                Text::from(s),
                Text::from(s.to_string()),
                Text::from_utf8_lossy(Bytes::copy_from_slice(s.as_bytes())),
                Text(Repr::Bytes(Bytes::copy_from_slice(s.as_bytes()))),
                Text(Repr::Small(Small::Shared(Arc::from(s)))),
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
}
