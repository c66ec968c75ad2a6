//! UTF-8 validation of whole chunks: the parser's largest cost on long non-ASCII lines.
//!
//! The algorithm is Keiser & Lemire's ("Validating UTF-8 in less than one instruction per
//! byte", as in simdjson and simdutf8), with two differences from `simdutf8` that pay off on
//! the text an event stream carries (JSON with a non-ASCII character every hundred bytes or so):
//! - no branch that skips ASCII blocks: on such text it is mispredicted about every other
//!   block, which costs more than checking the block (1 KB JSON corpus with AVX-512:
//!   11 → 23 GB/s);
//! - 64 bytes per instruction where the CPU has AVX-512BW (Ice Lake, Zen 4 and later; a masked
//!   load reads a chunk's last partial block), else 32 with AVX2.
//!
//! Other CPUs and architectures use `simdutf8`. The answer is the same either way: the tests
//! below check every implementation the CPU can run against the standard library.

/// Whether `b` is valid UTF-8.
#[inline]
pub(crate) fn is_valid(b: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    match crate::cpu::level() {
        // SAFETY: the CPU has the features each function is compiled for.
        crate::cpu::Level::Avx512 => return unsafe { x86::avx512::is_valid(b) },
        // SAFETY: as above.
        crate::cpu::Level::Avx2 => return unsafe { x86::avx2::is_valid(b) },
        crate::cpu::Level::Other => {}
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
mod x86 {
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
    const LARGE: u8 = CARRY | TOO_LARGE | TOO_LARGE_1000;
    const CONT: u8 = TOO_LONG | OVERLONG_2 | TWO_CONTS;

    /// Indexed by the high nibble of the previous byte.
    #[rustfmt::skip]
    const BYTE_1_HIGH: [u8; 16] = [
        TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG, TOO_LONG,
        TWO_CONTS, TWO_CONTS, TWO_CONTS, TWO_CONTS,
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,
    ];
    /// Indexed by the low nibble of the previous byte.
    #[rustfmt::skip]
    const BYTE_1_LOW: [u8; 16] = [
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
        CARRY | OVERLONG_2,
        CARRY,
        CARRY,
        CARRY | TOO_LARGE,
        LARGE, LARGE, LARGE, LARGE, LARGE, LARGE, LARGE, LARGE,
        LARGE | SURROGATE,
        LARGE, LARGE,
    ];
    /// Indexed by the high nibble of this byte.
    #[rustfmt::skip]
    const BYTE_2_HIGH: [u8; 16] = [
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
        CONT | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        CONT | OVERLONG_3 | TOO_LARGE,
        CONT | SURROGATE | TOO_LARGE,
        CONT | SURROGATE | TOO_LARGE,
        TOO_SHORT, TOO_SHORT, TOO_SHORT, TOO_SHORT,
    ];

    /// Bytes that, last in a block, need continuation bytes in the next one: 0xC0+ in the last,
    /// 0xE0+ in the second to last, 0xF0+ in the third to last position (AVX2 reads the last
    /// 32 bytes).
    const INCOMPLETE_ABOVE: [u8; 64] = {
        let mut max = [0xFF; 64];
        max[61] = 0xF0 - 1;
        max[62] = 0xE0 - 1;
        max[63] = 0xC0 - 1;
        max
    };

    /// How far ahead of the block being checked its bytes are asked for. A chunk that is not in
    /// the cache (a large read, a buffer filled a while ago) otherwise waits for memory at every
    /// 4 KiB page, where the hardware prefetcher stops: 1 KB JSON in 4 KiB chunks 1.70–1.74× →
    /// 1.87–1.90× `sse-stream`. Where the chunk is cached it costs one instruction a block.
    const PREFETCH_AHEAD: usize = 1024;

    /// A hint to load the cache line at `p` (any address: a prefetch never faults).
    #[inline(always)]
    fn prefetch(p: *const u8) {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch reads nothing and never faults; SSE is in every x86-64 CPU.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }

    /// The algorithm over one vector width, compiled for `$features`. The module that expands
    /// it defines `V` (the vector), `W` (its width in bytes), `tables` (`BYTE_1_HIGH`,
    /// `BYTE_1_LOW` and `BYTE_2_HIGH` as vectors) and `by_high`/`by_low` (which look a byte's
    /// high or low nibble up in such a table),
    /// `splat`, `load`, `load_rest`, `and`, `or`, `xor`, `subs`, `prevs` (prev1, prev2, prev3:
    /// the input shifted by 1, 2, 3 bytes towards the end, the previous block's last bytes in
    /// front) and `any`.
    macro_rules! validator {
        ($features:literal) => {
            struct State {
                prev: V,
                error: V,
                t1h: V,
                t1l: V,
                t2h: V,
                max: V,
            }

            impl State {
                #[inline]
                #[target_feature(enable = $features)]
                fn new() -> State {
                    let (t1h, t1l, t2h) = tables();
                    State {
                        prev: splat(0),
                        error: splat(0),
                        t1h,
                        t1l,
                        t2h,
                        // SAFETY: reads the last `W` bytes of the table.
                        max: unsafe { load(INCOMPLETE_ABOVE[64 - W..].as_ptr()) },
                    }
                }

                /// No branch for ASCII blocks: in text with a non-ASCII character every hundred
                /// bytes or so it would be mispredicted about every other block.
                #[inline]
                #[target_feature(enable = $features)]
                fn block(&mut self, input: V) {
                    let (prev1, prev2, prev3) = prevs(input, self.prev);
                    let b1h = by_high(self.t1h, prev1);
                    let b1l = by_low(self.t1l, prev1);
                    let b2h = by_high(self.t2h, input);
                    let special = and(and(b1h, b1l), b2h);
                    // The third and fourth bytes of 3- and 4-byte characters must be
                    // continuations (bit 7 of these differences is set exactly after
                    // 111_____ and 1111____ leads).
                    let third = subs(prev2, splat(0x60));
                    let fourth = subs(prev3, splat(0x70));
                    let must23 = and(or(third, fourth), splat(0x80));
                    self.error = or(self.error, xor(must23, special));
                    self.prev = input;
                }
            }

            /// # Safety
            /// The CPU must have the module's features.
            #[target_feature(enable = $features)]
            pub(in crate::utf8) unsafe fn is_valid(b: &[u8]) -> bool {
                let mut state = State::new();
                let mut blocks = b.chunks_exact(W);
                for block in &mut blocks {
                    prefetch(block.as_ptr().wrapping_add(PREFETCH_AHEAD));
                    // SAFETY: `block` is `W` bytes.
                    state.block(unsafe { load(block.as_ptr()) });
                }
                let rest = blocks.remainder();
                if !rest.is_empty() {
                    // The bytes past the end read as zeros (ASCII).
                    state.block(load_rest(rest));
                }
                // A character the last block left open (each earlier block's were checked by
                // the next one; a zero-padded last block leaves none).
                let incomplete = subs(state.prev, state.max);
                !any(or(state.error, incomplete))
            }
        };
    }

    pub(super) mod avx512 {
        use super::*;
        use std::arch::x86_64::*;

        type V = __m512i;
        const W: usize = 64;

        /// A 16-entry table widened to the 64 entries `vpermb` looks up by the low six bits of
        /// each byte: by those bits' top four (`by_high` shifts each byte right by two), or by
        /// their low four (`vpermb` ignores the top two bits). Widened at compile time: at run
        /// time it was a byte loop on every call, longer than checking a short chunk.
        const fn widen(t: &[u8; 16], by_top_four: bool) -> [u8; 64] {
            let mut wide = [0; 64];
            let mut i = 0;
            while i < 64 {
                wide[i] = t[if by_top_four { i >> 2 } else { i & 15 }];
                i += 1;
            }
            wide
        }
        static WIDE: [[u8; 64]; 3] =
            [widen(&BYTE_1_HIGH, true), widen(&BYTE_1_LOW, false), widen(&BYTE_2_HIGH, true)];
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn tables() -> (V, V, V) {
            // SAFETY: each reads the 64 bytes of one table.
            unsafe {
                (
                    _mm512_loadu_si512(WIDE[0].as_ptr().cast()),
                    _mm512_loadu_si512(WIDE[1].as_ptr().cast()),
                    _mm512_loadu_si512(WIDE[2].as_ptr().cast()),
                )
            }
        }
        /// A 16-bit shift: the bits shifted in from the next byte land in the top two, ignored.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn by_high(table: V, v: V) -> V {
            _mm512_permutexvar_epi8(_mm512_srli_epi16::<2>(v), table)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn by_low(table: V, v: V) -> V {
            _mm512_permutexvar_epi8(v, table)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn splat(x: u8) -> V {
            _mm512_set1_epi8(x as i8)
        }
        /// # Safety
        /// `p` must be readable for `W` bytes.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        unsafe fn load(p: *const u8) -> V {
            // SAFETY: the caller's.
            unsafe { _mm512_loadu_si512(p.cast()) }
        }
        /// Fewer than `W` bytes, zeros after them: a masked load does not touch the rest.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn load_rest(rest: &[u8]) -> V {
            // SAFETY: the mask selects the `rest.len()` (< 64) bytes of `rest` only.
            unsafe { _mm512_maskz_loadu_epi8((1u64 << rest.len()) - 1, rest.as_ptr().cast()) }
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn and(a: V, b: V) -> V {
            _mm512_and_si512(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn or(a: V, b: V) -> V {
            _mm512_or_si512(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn xor(a: V, b: V) -> V {
            _mm512_xor_si512(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn subs(a: V, b: V) -> V {
            _mm512_subs_epu8(a, b)
        }
        /// `alignr` works within 128-bit lanes, so it is given the lanes (prev.3, input.0,
        /// input.1, input.2) as the bytes that shift in.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn prevs(input: V, prev: V) -> (V, V, V) {
            let idx = _mm512_set_epi64(13, 12, 11, 10, 9, 8, 7, 6);
            let lanes = _mm512_permutex2var_epi64(prev, idx, input);
            (
                _mm512_alignr_epi8::<15>(input, lanes),
                _mm512_alignr_epi8::<14>(input, lanes),
                _mm512_alignr_epi8::<13>(input, lanes),
            )
        }
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
        fn any(a: V) -> bool {
            _mm512_test_epi8_mask(a, a) != 0
        }

        validator!("avx512f,avx512bw,avx512vbmi");
    }

    pub(super) mod avx2 {
        use super::*;
        use std::arch::x86_64::*;

        type V = __m256i;
        const W: usize = 32;

        /// Each table in every 128-bit lane (`vpshufb` looks up within lanes).
        #[inline]
        #[target_feature(enable = "avx2")]
        fn tables() -> (V, V, V) {
            #[inline]
            #[target_feature(enable = "avx2")]
            fn lanes(t: &[u8; 16]) -> V {
                // SAFETY: reads the 16 bytes of `t`.
                _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(t.as_ptr().cast()) })
            }
            (lanes(&BYTE_1_HIGH), lanes(&BYTE_1_LOW), lanes(&BYTE_2_HIGH))
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn by_high(table: V, v: V) -> V {
            by_low(table, _mm256_srli_epi16::<4>(v))
        }
        /// `vpshufb` zeroes where the index has its top bit set: the nibble is masked.
        #[inline]
        #[target_feature(enable = "avx2")]
        fn by_low(table: V, v: V) -> V {
            _mm256_shuffle_epi8(table, _mm256_and_si256(v, splat(0x0F)))
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn splat(x: u8) -> V {
            _mm256_set1_epi8(x as i8)
        }
        /// # Safety
        /// `p` must be readable for `W` bytes.
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn load(p: *const u8) -> V {
            // SAFETY: the caller's.
            unsafe { _mm256_loadu_si256(p.cast()) }
        }
        /// Fewer than `W` bytes, zeros after them (copied: AVX2 has no masked byte load).
        #[inline]
        #[target_feature(enable = "avx2")]
        fn load_rest(rest: &[u8]) -> V {
            let mut buf = [0u8; W];
            buf[..rest.len()].copy_from_slice(rest);
            // SAFETY: reads the `W` bytes of `buf`.
            unsafe { load(buf.as_ptr()) }
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn and(a: V, b: V) -> V {
            _mm256_and_si256(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn or(a: V, b: V) -> V {
            _mm256_or_si256(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn xor(a: V, b: V) -> V {
            _mm256_xor_si256(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn subs(a: V, b: V) -> V {
            _mm256_subs_epu8(a, b)
        }
        /// `alignr` works within 128-bit lanes, so it is given the lanes (prev.1, input.0) as
        /// the bytes that shift in.
        #[inline]
        #[target_feature(enable = "avx2")]
        fn prevs(input: V, prev: V) -> (V, V, V) {
            let lanes = _mm256_permute2x128_si256::<0x21>(prev, input);
            (
                _mm256_alignr_epi8::<15>(input, lanes),
                _mm256_alignr_epi8::<14>(input, lanes),
                _mm256_alignr_epi8::<13>(input, lanes),
            )
        }
        #[inline]
        #[target_feature(enable = "avx2")]
        fn any(a: V) -> bool {
            _mm256_testz_si256(a, a) == 0
        }

        validator!("avx2");
    }
}

#[cfg(test)]
mod tests {
    /// Every implementation this CPU can run, against the standard library.
    fn check(b: &[u8]) {
        let want = std::str::from_utf8(b).is_ok();
        assert_eq!(simdutf8::basic::from_utf8(b).is_ok(), want, "simdutf8 on {b:x?}");
        assert_eq!(super::is_valid(b), want, "is_valid on {b:x?}");
        #[cfg(target_arch = "x86_64")]
        {
            use super::x86::{avx2, avx512};
            use crate::cpu::{Level, level};

            if level() == Level::Avx512 {
                // SAFETY: the CPU has AVX-512BW.
                assert_eq!(unsafe { avx512::is_valid(b) }, want, "avx512 on {b:x?}");
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2.
                assert_eq!(unsafe { avx2::is_valid(b) }, want, "avx2 on {b:x?}");
            }
        }
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
