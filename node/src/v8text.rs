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
    let b = s.as_bytes();
    if s.is_ascii() {
        dst.extend_from_slice(b);
        return;
    }
    dst.reserve(b.len());
    let mut i = 0;
    while i < b.len() {
        let run = ascii_run(&b[i..]);
        dst.extend_from_slice(&b[i..i + run]);
        i += run;
        if i < b.len() {
            // A two-byte sequence, C2 or C3 then a continuation byte.
            dst.push(((b[i] & 0x1F) << 6) | (b[i + 1] & 0x3F));
            i += 2;
        }
    }
}

/// Appends `s` as UTF-16.
pub fn push_utf16(dst: &mut Vec<u16>, s: &str) {
    let b = s.as_bytes();
    dst.reserve(b.len());
    let mut i = 0;
    while i < b.len() {
        let run = ascii_run(&b[i..]);
        dst.extend(b[i..i + run].iter().map(|&c| u16::from(c)));
        i += run;
        // Characters until the next ASCII byte (text outside Latin-1 comes in words).
        while i < b.len() && b[i] >= 0x80 {
            let c0 = u32::from(b[i]);
            if c0 < 0xE0 {
                dst.push((((c0 & 0x1F) << 6) | u32::from(b[i + 1] & 0x3F)) as u16);
                i += 2;
            } else if c0 < 0xF0 {
                let c = ((c0 & 0x0F) << 12)
                    | (u32::from(b[i + 1] & 0x3F) << 6)
                    | u32::from(b[i + 2] & 0x3F);
                dst.push(c as u16);
                i += 3;
            } else {
                let c = ((c0 & 0x07) << 18)
                    | (u32::from(b[i + 1] & 0x3F) << 12)
                    | (u32::from(b[i + 2] & 0x3F) << 6)
                    | u32::from(b[i + 3] & 0x3F);
                let c = c - 0x1_0000;
                dst.push((0xD800 | (c >> 10)) as u16);
                dst.push((0xDC00 | (c & 0x3FF)) as u16);
                i += 4;
            }
        }
    }
}

/// How many bytes at the start of `b` are ASCII: 16 at a time, then one at a time.
fn ascii_run(b: &[u8]) -> usize {
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 16) {
        let w = u128::from_le_bytes(chunk.try_into().expect("16 bytes"));
        let high = w & 0x8080_8080_8080_8080_8080_8080_8080_8080;
        if high != 0 {
            return i + (high.trailing_zeros() / 8) as usize;
        }
        i += 16;
    }
    while i < b.len() && b[i] < 0x80 {
        i += 1;
    }
    i
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

    #[test]
    fn wide_is_above_latin1() {
        for s in SAMPLES {
            assert_eq!(is_wide(s), s.chars().any(|c| c as u32 > 0xFF), "{s:?}");
        }
    }
}
