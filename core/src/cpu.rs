//! The SIMD level of this CPU, detected once, for the hand-written scans (`utf8`, `lines`).

use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Level {
    /// AVX-512 F, BW, VBMI and VBMI2.
    Avx512,
    Avx2,
    Other,
}

/// The CPU's level, detected once.
#[inline]
pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        // AVX-512 only from Ice Lake and Zen 4 on (VBMI2 tells them apart from Skylake-SP,
        // which lowers the core's clock while it runs 512-bit code, slowing everything else
        // on it): as simdutf chooses.
        if std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vbmi")
            && std::is_x86_feature_detected!("avx512vbmi2")
        {
            Level::Avx512
        } else if std::is_x86_feature_detected!("avx2") {
            Level::Avx2
        } else {
            Level::Other
        }
    })
}
