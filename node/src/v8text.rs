//! UTF-8 to the two representations of a V8 string, on the runtime thread.
//!
//! V8 stores a string as Latin-1 (one byte per character) when every character is at most
//! U+00FF, else as UTF-16. `napi_create_string_latin1` and `napi_create_string_utf16` are then a
//! copy, whereas `napi_create_string_utf8` decodes on the JavaScript thread (two passes of V8's
//! UTF-8 decoder, which took a third of that thread on text outside Latin-1). So a segment's
//! text is transcoded here, as it is built: Latin-1 bytes until a character above U+00FF
//! arrives, then (widened once) UTF-16.
//!
//! The input is a `&str`: valid UTF-8, so no check is needed, only decoding. The conversions
//! are `encoding_rs`'s (Firefox's), so this file holds no unsafe code.

/// Whether `s` holds a character above U+00FF. In UTF-8 those, and only those, have a lead
/// byte of 0xC4 or more (Latin-1's own are 0xC2 and 0xC3; continuation bytes are below 0xC0).
/// A max over the bytes: vectorized, a few dozen bytes per nanosecond.
pub fn is_wide(s: &str) -> bool {
    s.as_bytes().iter().fold(0u8, |m, &b| m.max(b)) >= 0xC4
}

/// Appends `s` as Latin-1. `s` must hold no character above U+00FF (`!is_wide(s)`).
pub fn push_latin1(dst: &mut Vec<u8>, s: &str) {
    debug_assert!(!is_wide(s));
    let len = dst.len();
    dst.resize(len + s.len(), 0);
    let n = encoding_rs::mem::convert_utf8_to_latin1_lossy(s.as_bytes(), &mut dst[len..]);
    dst.truncate(len + n);
}

/// Appends `s` as UTF-16.
pub fn push_utf16(dst: &mut Vec<u16>, s: &str) {
    let len = dst.len();
    dst.resize(len + s.len(), 0);
    let n = encoding_rs::mem::convert_str_to_utf16(s, &mut dst[len..]);
    dst.truncate(len + n);
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
