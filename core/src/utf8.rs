//! UTF-8 validation of whole chunks: the parser's largest cost on long non-ASCII lines.
//!
//! `simdutf8` (AVX2 at best) validates the 1 KB JSON corpus at ~11 GB/s, and that alone was
//! ~45% of the parser's time on it. On CPUs with AVX-512BW this module runs the same algorithm
//! (Keiser & Lemire, "Validating UTF-8 in less than one instruction per byte", as in simdjson
//! and simdutf8) 64 bytes per instruction instead of 32, and reads a chunk's last partial block
//! with a masked load instead of copying it. Other CPUs use `simdutf8`. The answer is the
//! same either way: `core/tests/utf8.rs` checks it against the standard library.

/// Whether `b` is valid UTF-8.
#[inline]
pub(crate) fn is_valid(b: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if avx512::available() {
        // SAFETY: the CPU has the features the function is compiled for.
        return unsafe { avx512::is_valid(b) };
    }
    simdutf8::basic::from_utf8(b).is_ok()
}

/// The length of the longest valid UTF-8 prefix of `b` (all of it, normally): one fast pass,
/// and a second one only for invalid text or a character cut by the end of `b`.
#[inline]
pub(crate) fn valid_prefix(b: &[u8]) -> usize {
    if is_valid(b) { b.len() } else { valid_prefix_slow(b) }
}

#[cold]
#[inline(never)]
fn valid_prefix_slow(b: &[u8]) -> usize {
    simdutf8::compat::from_utf8(b).map_or_else(|e| e.valid_up_to(), |_| b.len())
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// 0: not yet checked, 1: no, 2: yes.
    static AVAILABLE: AtomicU8 = AtomicU8::new(0);

    #[inline]
    pub(super) fn available() -> bool {
        match AVAILABLE.load(Ordering::Relaxed) {
            0 => {
                let yes = std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512bw");
                AVAILABLE.store(1 + u8::from(yes), Ordering::Relaxed);
                yes
            }
            n => n == 2,
        }
    }

    // The error bits of a byte pair (the previous byte, this byte), as in simdjson.
    const TOO_SHORT: u8 = 1 << 0; // 11______ followed by 0_______ or 11______
    const TOO_LONG: u8 = 1 << 1; // 0_______ followed by 10______
    const OVERLONG_3: u8 = 1 << 2; // 11100000 100_____
    const TOO_LARGE: u8 = 1 << 3; // 11110100 1001____, 11110100 101_____, 11110101+
    const SURROGATE: u8 = 1 << 4; // 11101101 101_____
    const OVERLONG_2: u8 = 1 << 5; // 1100000_ 10______
    const TOO_LARGE_1000: u8 = 1 << 6; // 11110101+ 1000____
    const OVERLONG_4: u8 = 1 << 6; // 11110000 1000____
    const TWO_CONTS: u8 = 1 << 7; // 10______ 10______
    const CARRY: u8 = TOO_SHORT | TOO_LONG | TWO_CONTS;

    /// Indexed by the high nibble of the previous byte.
    const BYTE_1_HIGH: [u8; 16] = [
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,
    ];
    /// Indexed by the low nibble of the previous byte.
    const BYTE_1_LOW: [u8; 16] = [
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
        CARRY | OVERLONG_2,
        CARRY,
        CARRY,
        CARRY | TOO_LARGE,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
        CARRY | TOO_LARGE | TOO_LARGE_1000,
    ];
    /// Indexed by the high nibble of this byte.
    const BYTE_2_HIGH: [u8; 16] = [
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
    ];

    /// A 16-byte table in each 128-bit lane (`vpshufb` looks up within lanes).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    fn table(t: &[u8; 16]) -> __m512i {
        // SAFETY: reads 16 bytes of `t`.
        _mm512_broadcast_i32x4(unsafe { _mm_loadu_si128(t.as_ptr().cast()) })
    }

    /// Bytes that, last in a block, need continuation bytes in the next one: 0xC0+ in the
    /// last, 0xE0+ in the second to last, 0xF0+ in the third to last position.
    const INCOMPLETE_ABOVE: [u8; 64] = {
        let mut max = [0xFF; 64];
        max[61] = 0xF0 - 1;
        max[62] = 0xE0 - 1;
        max[63] = 0xC0 - 1;
        max
    };

    struct State {
        prev: __m512i,
        error: __m512i,
        /// The last block left a character open.
        incomplete: __m512i,
        t1h: __m512i,
        t1l: __m512i,
        t2h: __m512i,
        max: __m512i,
    }

    impl State {
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        fn new() -> State {
            let zero = _mm512_setzero_si512();
            State {
                prev: zero,
                error: zero,
                incomplete: zero,
                t1h: table(&BYTE_1_HIGH),
                t1l: table(&BYTE_1_LOW),
                t2h: table(&BYTE_2_HIGH),
                // SAFETY: reads the 64 bytes of the table.
                max: unsafe { _mm512_loadu_si512(INCOMPLETE_ABOVE.as_ptr().cast()) },
            }
        }

        #[inline]
        #[target_feature(enable = "avx512f,avx512bw")]
        fn block(&mut self, input: __m512i) {
            // No branch for ASCII blocks: in text with a non-ASCII character every hundred bytes
            // or so it would be mispredicted about every other block, which costs more than
            // checking the block.
            let nib = _mm512_set1_epi8(0x0F);
            let high = |v| _mm512_and_si512(_mm512_srli_epi16::<4>(v), nib);
            // `prevN`: the input shifted by N bytes towards the end, the last N bytes of the
            // previous block in front. `alignr` works within 128-bit lanes, so it is given the
            // lanes (prev.3, input.0, input.1, input.2) as the bytes that shift in.
            let idx = _mm512_set_epi64(13, 12, 11, 10, 9, 8, 7, 6);
            let lanes = _mm512_permutex2var_epi64(self.prev, idx, input);
            let prev1 = _mm512_alignr_epi8::<15>(input, lanes);
            let prev2 = _mm512_alignr_epi8::<14>(input, lanes);
            let prev3 = _mm512_alignr_epi8::<13>(input, lanes);
            let b1h = _mm512_shuffle_epi8(self.t1h, high(prev1));
            let b1l = _mm512_shuffle_epi8(self.t1l, _mm512_and_si512(prev1, nib));
            let b2h = _mm512_shuffle_epi8(self.t2h, high(input));
            let special = _mm512_and_si512(_mm512_and_si512(b1h, b1l), b2h);
            // The third and fourth bytes of 3- and 4-byte characters must be continuations
            // (bit 7 of these differences is set exactly after 111_____ / 1111____ leads).
            let third = _mm512_subs_epu8(prev2, _mm512_set1_epi8(0x60));
            let fourth = _mm512_subs_epu8(prev3, _mm512_set1_epi8(0x70));
            let must23 = _mm512_and_si512(_mm512_or_si512(third, fourth), _mm512_set1_epi8(-128));
            self.error = _mm512_or_si512(self.error, _mm512_xor_si512(must23, special));
            self.incomplete = _mm512_subs_epu8(input, self.max);
            self.prev = input;
        }
    }

    /// # Safety
    /// The CPU must have AVX-512F and AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn is_valid(b: &[u8]) -> bool {
        let mut state = State::new();
        let mut chunks = b.chunks_exact(64);
        for c in &mut chunks {
            // SAFETY: `c` is 64 bytes.
            state.block(unsafe { _mm512_loadu_si512(c.as_ptr().cast()) });
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            // The bytes past the end read as zeros (ASCII): a masked load does not touch them.
            // SAFETY: the mask selects the `rest.len()` bytes of `rest` only.
            state.block(unsafe {
                _mm512_maskz_loadu_epi8((1u64 << rest.len()) - 1, rest.as_ptr().cast())
            });
        }
        // The last block's `incomplete` was checked by no later block.
        let error = _mm512_or_si512(state.error, state.incomplete);
        _mm512_test_epi8_mask(error, error) == 0
    }
}

#[cfg(test)]
mod tests {
    /// Every implementation this CPU can run, against the standard library.
    fn check(b: &[u8]) {
        let want = std::str::from_utf8(b).is_ok();
        assert_eq!(simdutf8::basic::from_utf8(b).is_ok(), want, "simdutf8 on {b:x?}");
        assert_eq!(super::is_valid(b), want, "is_valid on {b:x?}");
        let prefix = std::str::from_utf8(b).map_or_else(|e| e.valid_up_to(), |_| b.len());
        assert_eq!(super::valid_prefix(b), prefix, "valid_prefix on {b:x?}");
    }

    /// Every one- and two-byte sequence, and three- and four-byte sequences from a lead byte
    /// through the boundaries of the lead and continuation ranges, around the 64-byte block
    /// boundaries, after ASCII or after a valid multi-byte character, ending the input or not.
    #[test]
    fn short_sequences_at_every_block_position() {
        let edges: Vec<u8> = vec![
            0x00, 0x0A, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
            0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF,
        ];
        let mut seqs: Vec<Vec<u8>> = (0..=255u8).map(|a| vec![a]).collect();
        for &a in &edges {
            for b in 0..=255u8 {
                seqs.push(vec![a, b]);
            }
            if a < 0xC0 {
                continue; // not a lead byte: its longer sequences add nothing
            }
            for &b in &edges {
                for &c in &edges {
                    seqs.push(vec![a, b, c]);
                    for &d in &[0x41, 0x80, 0x8F, 0x90, 0xBF, 0xC0] {
                        seqs.push(vec![a, b, c, d]);
                    }
                }
            }
        }
        for pad in ["", "😀"] {
            for at in [0, 61, 62, 63, 126] {
                let mut buf = vec![b'x'; at.max(pad.len()) - pad.len()];
                buf.extend_from_slice(pad.as_bytes());
                for s in &seqs {
                    let n = buf.len();
                    buf.extend_from_slice(s);
                    check(&buf);
                    buf.extend_from_slice(b"tail of the line");
                    check(&buf);
                    buf.truncate(n);
                }
            }
        }
    }

    /// Random text: valid mixes of 1- to 4-byte characters of every length up to 300 bytes,
    /// then each with one byte changed to every interesting value.
    #[test]
    fn random_text_and_single_byte_damage() {
        let chars = ["a", "\n", "é", "ß", "€", "한", "\u{FFFD}", "😀", "\u{10FFFF}", "\u{7F}"];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 0..300 {
            let mut s = String::new();
            while s.len() < len {
                s.push_str(chars[(rand() % chars.len() as u64) as usize]);
            }
            let b = s.as_bytes().to_vec();
            check(&b);
            for _ in 0..8 {
                if b.is_empty() {
                    break;
                }
                let mut bad = b.clone();
                let i = (rand() % bad.len() as u64) as usize;
                bad[i] = [0x80, 0xBF, 0xC0, 0xC3, 0xE0, 0xED, 0xF0, 0xF4, 0xF5, 0xFF, b'z']
                    [(rand() % 11) as usize];
                check(&bad);
                bad.truncate(i + 1);
                check(&bad);
            }
        }
    }
}
