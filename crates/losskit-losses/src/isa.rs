//! Run-time instruction-set detection shared by the loss drivers.

/// The widest SIMD instruction set the CPU offers, detected at run time so that one portable binary compiles the
/// drivers' hot loops (the classification row sweeps, the metric-learning passes over the N × N matrix) for AVX-512
/// or AVX2 where available. Each driver adds its own dispatch method in an `impl Isa` block beside its kernels and
/// documents which of its paths, if any, differ in rounding; a CPU always takes the same path, so results are
/// bit-identical whatever the number of threads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Isa {
    /// The widest set this CPU supports (AVX-512 needs F, BW, DQ and VL).
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}
