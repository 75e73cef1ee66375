//! The element types the kernels accept: logits in f32, bf16 or f16 and class labels in i64 or i32.

use cudarc::driver::{DeviceRepr, ValidAsZeroBits};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::bf16 {}
    impl Sealed for half::f16 {}
    impl Sealed for i32 {}
    impl Sealed for i64 {}
}

/// A floating-point element type of GPU inputs and outputs: `f32`, [`half::bf16`] or [`half::f16`].
///
/// 16-bit values travel to the device as their raw bits and are widened to f32 inside the kernels; every kernel
/// accumulates in f32 and writes its gradient in the input's type.
pub trait GpuFloat: sealed::Sealed + DeviceRepr + ValidAsZeroBits + Copy + Send + Sync + 'static {
    /// Short name, also the kernel-name infix (`f32`, `bf16`, `f16`).
    const NAME: &'static str;
    /// Widens to f32 (exact).
    fn to_f32(self) -> f32;
    /// Rounds an f32 to this type (round to nearest, ties to even).
    fn from_f32(x: f32) -> Self;
    /// Rounds an f64 to this type.
    fn from_f64(x: f64) -> Self;
}

impl GpuFloat for f32 {
    const NAME: &'static str = "f32";
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(x: f32) -> Self {
        x
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

impl GpuFloat for half::bf16 {
    const NAME: &'static str = "bf16";
    fn to_f32(self) -> f32 {
        half::bf16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        half::bf16::from_f32(x)
    }
    fn from_f64(x: f64) -> Self {
        half::bf16::from_f64(x)
    }
}

impl GpuFloat for half::f16 {
    const NAME: &'static str = "f16";
    fn to_f32(self) -> f32 {
        half::f16::to_f32(self)
    }
    fn from_f32(x: f32) -> Self {
        half::f16::from_f32(x)
    }
    fn from_f64(x: f64) -> Self {
        half::f16::from_f64(x)
    }
}

/// An integer class-label type of GPU targets: `i64` (PyTorch's default) or `i32`.
pub trait GpuLabel: sealed::Sealed + DeviceRepr + Copy + Send + Sync + 'static {
    /// Short name, also the kernel-name infix (`i64`, `i32`).
    const NAME: &'static str;
    /// Widens to i64.
    fn to_i64(self) -> i64;
}

impl GpuLabel for i64 {
    const NAME: &'static str = "i64";
    fn to_i64(self) -> i64 {
        self
    }
}

impl GpuLabel for i32 {
    const NAME: &'static str = "i32";
    fn to_i64(self) -> i64 {
        i64::from(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_to_nearest() {
        assert_eq!(<half::bf16 as GpuFloat>::from_f32(1.0).to_bits(), 0x3f80);
        // 1 + 2^-8 lies halfway between two bf16 values; ties go to the even one (1.0).
        assert_eq!(<half::bf16 as GpuFloat>::from_f32(1.0 + 2f32.powi(-8)).to_bits(), 0x3f80);
        assert_eq!(GpuFloat::to_f32(half::f16::from_f32(0.5)), 0.5);
        assert_eq!(<f32 as GpuFloat>::from_f64(0.25), 0.25);
        assert_eq!(GpuLabel::to_i64(-100_i32), -100_i64);
        assert_eq!([f32::NAME, <half::bf16 as GpuFloat>::NAME, <half::f16 as GpuFloat>::NAME], ["f32", "bf16", "f16"]);
    }
}
