//! Finding line endings (CR or LF) in a chunk: the parser's second pass over every byte, after
//! the UTF-8 check.

/// The first CR or LF in `b`: 256 bytes a step with AVX-512 (`memchr2` goes 128 bytes a step
/// with AVX2: the search for a 1 KB line's end was ~13% of parsing 1 KB JSON events; this moved
/// them from 1.72–1.91× to 1.93–2.04× `sse-stream` in 4 KiB chunks, measured with the bench's `quick`);
/// `memchr2` on other CPUs.
#[inline]
pub(crate) fn find_eol(b: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::level() == crate::cpu::Level::Avx512 {
        // SAFETY: the CPU has AVX-512BW.
        return unsafe { find_eol_avx512(b) };
    }
    memchr::memchr2(b'\n', b'\r', b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn find_eol_avx512(b: &[u8]) -> Option<usize> {
    use std::arch::x86_64::*;
    let (lf, cr) = (_mm512_set1_epi8(b'\n' as i8), _mm512_set1_epi8(b'\r' as i8));
    let p = b.as_ptr();
    let mut at = 0;
    while at + 256 <= b.len() {
        // SAFETY: `b[at..at + 256]` is in bounds.
        let (v0, v1, v2, v3) = unsafe {
            (
                _mm512_loadu_si512(p.add(at).cast()),
                _mm512_loadu_si512(p.add(at + 64).cast()),
                _mm512_loadu_si512(p.add(at + 128).cast()),
                _mm512_loadu_si512(p.add(at + 192).cast()),
            )
        };
        let m0 = _mm512_cmpeq_epi8_mask(v0, lf) | _mm512_cmpeq_epi8_mask(v0, cr);
        let m1 = _mm512_cmpeq_epi8_mask(v1, lf) | _mm512_cmpeq_epi8_mask(v1, cr);
        let m2 = _mm512_cmpeq_epi8_mask(v2, lf) | _mm512_cmpeq_epi8_mask(v2, cr);
        let m3 = _mm512_cmpeq_epi8_mask(v3, lf) | _mm512_cmpeq_epi8_mask(v3, cr);
        if m0 | m1 | m2 | m3 != 0 {
            let (k, m) = [m0, m1, m2, m3].into_iter().enumerate().find(|&(_, m)| m != 0)?;
            return Some(at + 64 * k + m.trailing_zeros() as usize);
        }
        at += 256;
    }
    while at < b.len() {
        let n = b.len() - at;
        let valid = if n >= 64 { u64::MAX } else { (1 << n) - 1 };
        // SAFETY: a masked load reads only the bytes of `valid`, which are in `b`; the others
        // read as zeros, which are not line endings.
        let v = unsafe { _mm512_maskz_loadu_epi8(valid, p.add(at).cast()) };
        let m = _mm512_cmpeq_epi8_mask(v, lf) | _mm512_cmpeq_epi8_mask(v, cr);
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize);
        }
        at += 64;
    }
    None
}

/// Finds the line endings (CR or LF) of one chunk, in order, 64 bytes at a time.
///
/// Why a window and not a search per line: most lines are short (a blank line is one byte, an
/// LLM token line ~50), and a search per line pays its set-up and a hard-to-predict loop exit
/// on every line. One compare of a 64-byte window gives a bit mask of its line endings, and
/// each line ending in it then costs a `trailing_zeros`. A line that runs past two windows is
/// long: the rest of it is searched with [`find_eol`].
pub(crate) struct EolScan<'a> {
    buf: &'a [u8],
    /// The window's first byte.
    at: usize,
    /// Bit `i` set: `buf[at + i]` is CR or LF (only bits of bytes inside `buf`).
    mask: u64,
}

impl<'a> EolScan<'a> {
    #[inline]
    pub(crate) fn new(buf: &'a [u8]) -> EolScan<'a> {
        EolScan { buf, at: 0, mask: eol_mask(buf) }
    }

    /// The first line ending at or after `from` (`from >= ` every earlier answer's position).
    #[inline(always)]
    pub(crate) fn next(&mut self, from: usize) -> Option<usize> {
        let rel = from.wrapping_sub(self.at);
        if rel < 64 {
            let m = self.mask & (u64::MAX << rel);
            if m != 0 {
                return Some(self.at + m.trailing_zeros() as usize);
            }
        }
        // The next window: from `from`, or right after this one.
        let from = from.max(self.at + 64);
        if from >= self.buf.len() {
            return None;
        }
        self.at = from;
        self.mask = eol_mask(&self.buf[from..]);
        if self.mask != 0 {
            return Some(from + self.mask.trailing_zeros() as usize);
        }
        self.long_line(from + 64)
    }

    /// No line ending in the 64 bytes before `after`: a long line. The rest of it is searched
    /// with `find_eol`, and the window put at its end.
    #[inline(never)]
    fn long_line(&mut self, after: usize) -> Option<usize> {
        let eol = after + find_eol(self.buf.get(after..)?)?;
        self.at = eol;
        self.mask = eol_mask(&self.buf[eol..]);
        Some(eol)
    }
}

/// The CR/LF bit mask of the first 64 bytes of `b` (of all of `b` if shorter): 16 bytes a
/// compare. A chunk shorter than a window (one small event per read) is compared in full
/// blocks and one last block that overlaps the one before it: bits set twice are set alike.
/// (Byte by byte, such chunks cost the lean transport 0.34 µs per small event, 0.29 this way.
/// The loads' bounds are checked by the tests below run under valgrind:
/// `valgrind target/debug/deps/eventsource_core-* lines::`.)
#[cfg(target_arch = "x86_64")]
#[inline]
fn eol_mask(b: &[u8]) -> u64 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let n = b.len().min(64);
    if n < 16 {
        return eol_mask_bytes(b);
    }
    // The CR/LF bits of `b[at..at + 16]`, at their place in the window.
    let block = |at: usize| {
        debug_assert!(at + 16 <= n);
        // SAFETY: SSE2 is always available on x86-64; the load reads `b[at..at + 16]`, in
        // bounds as `at + 16 <= n <= b.len()`.
        unsafe {
            let v = _mm_loadu_si128(b.as_ptr().add(at).cast::<__m128i>());
            let m = _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\r' as i8)),
            );
            u64::from(_mm_movemask_epi8(m) as u16) << at
        }
    };
    // Every window of a chunk but its last is full: four loads, without the loop below.
    if n == 64 {
        return block(0) | block(16) | block(32) | block(48);
    }
    let mut mask = block(n - 16);
    let mut at = 0;
    while at + 16 < n {
        mask |= block(at);
        at += 16;
    }
    mask
}

/// The CR/LF bit mask of the first 64 bytes of `b` (of all of `b` if shorter).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn eol_mask(b: &[u8]) -> u64 {
    eol_mask_bytes(b)
}

/// `eol_mask` byte by byte: a chunk shorter than one compare, or no SIMD.
fn eol_mask_bytes(b: &[u8]) -> u64 {
    b.iter()
        .take(64)
        .enumerate()
        .fold(0, |m, (i, &c)| m | (u64::from(c == b'\n' || c == b'\r') << i))
}

#[cfg(test)]
mod tests {
    use super::{EolScan, eol_mask, eol_mask_bytes, find_eol};

    /// The window mask, for every length up to past one window and every place of a CR or LF
    /// (the last block of a short window overlaps the one before it), is the bytewise one.
    #[test]
    fn eol_mask_marks_every_line_ending_of_the_window() {
        for len in 0..80 {
            let mut buf = vec![b'x'; len];
            assert_eq!(eol_mask(&buf), 0, "none in {len}");
            for at in 0..len {
                for (eol, other) in [(b'\n', None), (b'\r', Some(len / 2))] {
                    buf[at] = eol;
                    if let Some(o) = other {
                        buf[o] = b'\n';
                    }
                    let want = eol_mask_bytes(&buf);
                    assert_eq!(eol_mask(&buf), want, "{eol} at {at} of {len}");
                    assert_eq!(want & (1 << at.min(63)) != 0, at < 64, "{at} of {len}");
                    buf.fill(b'x');
                }
            }
        }
    }

    /// Every CR and LF, in order, for lines of every length from 0 to 200 (a window is 64
    /// bytes: lines that end in the same window, the next one, or after a `find_eol` search)
    /// and for every start offset into the buffer's first window.
    #[test]
    fn eol_scan_finds_every_line_ending() {
        let mut buf = Vec::new();
        for (i, len) in (0..200).chain((0..200).rev()).enumerate() {
            buf.extend(std::iter::repeat_n(b'x', len));
            buf.push(if i % 3 == 0 { b'\r' } else { b'\n' });
        }
        for first in 0..70 {
            let buf = &buf[first..];
            let want: Vec<usize> =
                (0..buf.len()).filter(|&i| buf[i] == b'\n' || buf[i] == b'\r').collect();
            let mut scan = EolScan::new(buf);
            let mut got = Vec::new();
            let mut from = 0;
            while let Some(eol) = scan.next(from) {
                got.push(eol);
                from = eol + 1;
            }
            assert_eq!(got, want, "from offset {first}");
        }
    }

    /// `find_eol` finds the first CR or LF (or none) in buffers of every length up to past two
    /// 256-byte steps of the AVX-512 search, at the edges of its 64-byte blocks and steps.
    #[test]
    fn find_eol_finds_the_first_line_ending() {
        let edges = [0, 1, 2, 62, 63, 64, 65, 127, 128, 191, 192, 254, 255, 256, 257, 319, 320];
        for len in 0..600 {
            let mut buf = vec![b'x'; len];
            assert_eq!(find_eol(&buf), None, "none in {len}");
            let near_end = len.saturating_sub(66)..len;
            let ats = edges.iter().copied().chain(edges.map(|e| e + 256)).chain(near_end);
            for at in ats.filter(|&at| at < len) {
                for (eol, after) in [(b'\n', b'x'), (b'\r', b'\n')] {
                    buf[at] = eol;
                    if at + 1 < len {
                        buf[at + 1] = after;
                    }
                    assert_eq!(find_eol(&buf), Some(at), "{eol} at {at} of {len}");
                    buf[at] = b'x';
                    if at + 1 < len {
                        buf[at + 1] = b'x';
                    }
                }
            }
        }
    }
}
