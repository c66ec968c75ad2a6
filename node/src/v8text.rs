//! UTF-8 to the two representations of a V8 string, on the runtime thread.
//!
//! V8 stores a string as Latin-1 (one byte per character) when every character is at most
//! U+00FF, else as UTF-16. `napi_create_string_latin1` and `napi_create_string_utf16` are then a
//! copy, whereas `napi_create_string_utf8` decodes on the JavaScript thread (two passes of V8's
//! UTF-8 decoder, which took a third of that thread on text outside Latin-1). So a segment's
//! text is transcoded here, as it is built: Latin-1 bytes until a character above U+00FF
//! arrives, then (widened once) UTF-16.
//!
//! The input is a `&str`: valid UTF-8, so no check is needed, only decoding.

/// Whether `s` holds a character above U+00FF. In UTF-8 those, and only those, have a lead
/// byte of 0xC4 or more (Latin-1's own are 0xC2 and 0xC3; continuation bytes are below 0xC0).
/// A max over the bytes: vectorized, a few dozen bytes per nanosecond.
pub fn is_wide(s: &str) -> bool {
    s.as_bytes().iter().fold(0u8, |m, &b| m.max(b)) >= 0xC4
}

/// Appends `s` as Latin-1. `s` must hold no character above U+00FF (`!is_wide(s)`).
pub fn push_latin1(dst: &mut Vec<u8>, s: &str) {
    debug_assert!(!is_wide(s));
    let b = s.as_bytes();
    let n = b.len();
    dst.reserve(n);
    let len = dst.len();
    let mut i = 0;
    let mut o = 0;
    // SAFETY: `n` bytes are reserved after `len` and at most one is written per byte read
    // (`o <= i`); a block store of 16 happens only where `i + 16 <= n`, so `o + 16 <= n`.
    // Reads stay below `n`: a lead byte C2/C3 is followed by its continuation byte (`s` is
    // UTF-8), and `o` bytes are initialized when the length is set.
    unsafe {
        let out = dst.as_mut_ptr().add(len);
        while i < n {
            if i + 16 <= n {
                let run = block::latin1(b.as_ptr().add(i), out.add(o));
                i += run;
                o += run;
                if run == 16 {
                    continue;
                }
            }
            let c0 = *b.get_unchecked(i);
            if c0 < 0x80 {
                *out.add(o) = c0;
                i += 1;
            } else {
                // C2 or C3, then a continuation byte.
                *out.add(o) = ((c0 & 0x1F) << 6) | (*b.get_unchecked(i + 1) & 0x3F);
                i += 2;
            }
            o += 1;
        }
        dst.set_len(len + o);
    }
}

/// Appends `s` as UTF-16.
pub fn push_utf16(dst: &mut Vec<u16>, s: &str) {
    let b = s.as_bytes();
    let n = b.len();
    dst.reserve(n);
    let len = dst.len();
    let mut i = 0;
    let mut o = 0;
    // SAFETY: as in `push_latin1`: `n` units reserved, at most one written per byte read (a
    // 4-byte character writes 2), block stores of 16 only where `i + 16 <= n`; reads of a
    // character's continuation bytes stay inside `s` (valid UTF-8).
    unsafe {
        let out = dst.as_mut_ptr().add(len);
        while i < n {
            if i + 16 <= n {
                let run = block::utf16(b.as_ptr().add(i), out.add(o));
                i += run;
                o += run;
                if run == 16 {
                    continue;
                }
            }
            let c0 = u32::from(*b.get_unchecked(i));
            let c1 = || u32::from(*b.get_unchecked(i + 1) & 0x3F);
            let c2 = || u32::from(*b.get_unchecked(i + 2) & 0x3F);
            if c0 < 0x80 {
                *out.add(o) = c0 as u16;
                i += 1;
                o += 1;
            } else if c0 < 0xE0 {
                *out.add(o) = (((c0 & 0x1F) << 6) | c1()) as u16;
                i += 2;
                o += 1;
            } else if c0 < 0xF0 {
                *out.add(o) = (((c0 & 0x0F) << 12) | (c1() << 6) | c2()) as u16;
                i += 3;
                o += 1;
            } else {
                let c3 = u32::from(*b.get_unchecked(i + 3) & 0x3F);
                let c = (((c0 & 0x07) << 18) | (c1() << 12) | (c2() << 6) | c3) - 0x1_0000;
                *out.add(o) = (0xD800 | (c >> 10)) as u16;
                *out.add(o + 1) = (0xDC00 | (c & 0x3FF)) as u16;
                i += 4;
                o += 2;
            }
        }
        dst.set_len(len + o);
    }
}

/// 16 bytes at a time: each function stores the 16 bytes at `src` as if they were ASCII
/// (the caller keeps only what it counts) and returns how many lead the block as ASCII. One
/// compare for 16 bytes, so the short ASCII runs between accented letters cost little.
///
/// # Safety
/// `src` must be valid for 16 bytes of reads, `dst` for 16 units of writes.
mod block {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_movemask_epi8, _mm_setzero_si128, _mm_storeu_si128,
        _mm_unpackhi_epi8, _mm_unpacklo_epi8,
    };

    fn ascii_prefix(mask: u32) -> usize {
        if mask == 0 { 16 } else { mask.trailing_zeros() as usize }
    }

    // SSE2 is part of x86_64: no detection needed.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub unsafe fn latin1(src: *const u8, dst: *mut u8) -> usize {
        // SAFETY: the caller's.
        unsafe {
            let v = _mm_loadu_si128(src.cast::<__m128i>());
            _mm_storeu_si128(dst.cast::<__m128i>(), v);
            ascii_prefix(_mm_movemask_epi8(v) as u32)
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    pub unsafe fn utf16(src: *const u8, dst: *mut u16) -> usize {
        // SAFETY: the caller's.
        unsafe {
            let v = _mm_loadu_si128(src.cast::<__m128i>());
            let zero = _mm_setzero_si128();
            _mm_storeu_si128(dst.cast::<__m128i>(), _mm_unpacklo_epi8(v, zero));
            _mm_storeu_si128(dst.add(8).cast::<__m128i>(), _mm_unpackhi_epi8(v, zero));
            ascii_prefix(_mm_movemask_epi8(v) as u32)
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn mask(src: &[u8; 16]) -> u32 {
        src.iter().enumerate().fold(0, |m, (k, &c)| m | (u32::from(c >> 7) << k))
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub unsafe fn latin1(src: *const u8, dst: *mut u8) -> usize {
        // SAFETY: the caller's.
        let block: [u8; 16] = unsafe { std::ptr::read_unaligned(src.cast()) };
        unsafe { std::ptr::copy_nonoverlapping(block.as_ptr(), dst, 16) };
        ascii_prefix(mask(&block))
    }

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub unsafe fn utf16(src: *const u8, dst: *mut u16) -> usize {
        // SAFETY: the caller's.
        let block: [u8; 16] = unsafe { std::ptr::read_unaligned(src.cast()) };
        for (k, &c) in block.iter().enumerate() {
            // SAFETY: the caller's.
            unsafe { *dst.add(k) = u16::from(c) };
        }
        ascii_prefix(mask(&block))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &[&str] = &[
        "",
        "plain ascii, longer than sixteen bytes to take the fast path",
        "ünïcødé",
        "日本語",
        "mixed: naïve café ünïcødé 日本語 and 😀 (a surrogate pair) at the end 😀",
        "\u{7f}\u{80}\u{ff}\u{100}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}",
        "aaaaaaaaaaaaaaaé",
        "aaaaaaaaaaaaaaaaé",
    ];

    #[test]
    fn utf16_matches_std() {
        for s in SAMPLES {
            let mut v = vec![1, 2];
            push_utf16(&mut v, s);
            let want: Vec<u16> = [1, 2].into_iter().chain(s.encode_utf16()).collect();
            assert_eq!(v, want, "{s:?}");
        }
    }

    #[test]
    fn latin1_matches_std() {
        for s in SAMPLES.iter().filter(|s| !is_wide(s)) {
            let mut v = vec![b'x'];
            push_latin1(&mut v, s);
            let want: Vec<u8> =
                std::iter::once(b'x').chain(s.chars().map(|c| c as u32 as u8)).collect();
            assert_eq!(v, want, "{s:?}");
        }
    }

    /// Every mix of ASCII, Latin-1, BMP and astral characters at every offset around the
    /// 16-byte blocks.
    #[test]
    fn generated_text_matches_std() {
        let pieces =
            ["a", "bc", "0123456789abcdef", "é", "ß", "ü", "日", "本語", "😀", " ", "\u{ff}"];
        let mut seed = 0x9E37_79B9u32;
        for len in 0..200 {
            let mut s = String::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                s.push_str(pieces[seed as usize % pieces.len()]);
            }
            let mut v = Vec::new();
            push_utf16(&mut v, &s);
            assert_eq!(v, s.encode_utf16().collect::<Vec<_>>(), "{s:?}");
            let latin: String = s.chars().filter(|&c| c as u32 <= 0xFF).collect();
            let mut l = vec![b'-'];
            push_latin1(&mut l, &latin);
            let want: Vec<u8> =
                std::iter::once(b'-').chain(latin.chars().map(|c| c as u32 as u8)).collect();
            assert_eq!(l, want, "{latin:?}");
        }
    }

    #[test]
    fn wide_is_above_latin1() {
        for s in SAMPLES {
            assert_eq!(is_wide(s), s.chars().any(|c| c as u32 > 0xFF), "{s:?}");
        }
    }
}
