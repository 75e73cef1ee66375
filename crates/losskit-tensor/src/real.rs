//! The float bound used by every numeric function.

use std::fmt::{Debug, Display};
use std::iter::Sum;

use ndarray::{LinalgScalar, ScalarOperand};
use num_traits::{Float, FromPrimitive, NumAssign, ToPrimitive};

/// f32 or f64: every CPU computation in losskit is generic over this one bound.
pub trait Real:
    Float
    + FromPrimitive
    + ToPrimitive
    + NumAssign
    + LinalgScalar
    + ScalarOperand
    + Sum
    + Default
    + Debug
    + Display
    + Send
    + Sync
    + 'static
{
    /// Short name of the type (`f32`, `f64`).
    const NAME: &'static str;
    /// Converts an f64 constant (always representable up to rounding).
    fn c(x: f64) -> Self;
    /// Converts to f64.
    fn f64(self) -> f64;
    /// Converts a count.
    fn from_usize_lossy(n: usize) -> Self {
        Self::c(n as f64)
    }
    /// eˣ by range reduction and a polynomial, branch-free so that loops over slices vectorise.
    ///
    /// Relative error about 1 ulp (f64: Cephes' Padé form, ≤ 2.2e-16; f32: Cephes' degree-6 polynomial, ≤ 1.2e-7)
    /// over the representable range; arguments below the smallest normal result give 0, above the largest give a
    /// large finite value (f32: e^88.37, f64: e^709), never a NaN for finite input.
    fn fast_exp(self) -> Self;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn fast_exp(self) -> Self {
        // exp(x) = 2ⁿ · exp(r), n = round(x / ln 2), |r| ≤ ln2 / 2. Rounding uses the 1.5·2²³ trick so that the
        // integer n can be read from the bits of t without a float→int conversion (which does not vectorise).
        const LO: f32 = -87.336_54;
        const HI: f32 = 88.37;
        const MAGIC: f32 = 12_582_912.0; // 1.5 · 2^23
        let x = self.clamp(LO, HI);
        let t = x * std::f32::consts::LOG2_E + MAGIC;
        let n = t - MAGIC;
        let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
        let mut p = 1.987_569_1e-4_f32;
        p = p * r + 1.398_199_9e-3;
        p = p * r + 8.333_452e-3;
        p = p * r + 4.166_579_6e-2;
        p = p * r + 1.666_666_5e-1;
        p = p * r + 0.5;
        let y = p * r * r + r + 1.0;
        let bits = (t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(127)) << 23;
        let v = y * f32::from_bits(bits);
        if self < LO { 0.0 } else { v }
    }
    #[inline(always)]
    fn c(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn fast_exp(self) -> Self {
        // Cephes exp: exp(r) = 1 + 2·P(r²)·r / (Q(r²) − P(r²)·r) on |r| ≤ ln2/2, scaled by 2ⁿ built from bits.
        const LO: f64 = -708.39;
        const HI: f64 = 709.0;
        const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
        let x = self.clamp(LO, HI);
        let t = x * std::f64::consts::LOG2_E + MAGIC;
        let n = t - MAGIC;
        let r = x - n * 6.931_457_519_531_25e-1 - n * 1.428_606_820_309_417_2e-6;
        let xx = r * r;
        let px = r * ((1.261_771_930_748_105_9e-4 * xx + 3.029_944_077_074_419_6e-2) * xx + 1.0);
        let qx =
            ((3.001_985_051_386_644_5e-6 * xx + 2.524_483_403_496_841e-3) * xx + 2.272_655_482_081_550_3e-1) * xx + 2.0;
        let y = 1.0 + 2.0 * px / (qx - px);
        let bits = (t.to_bits().wrapping_sub(MAGIC.to_bits()).wrapping_add(1023)) << 52;
        let v = y * f64::from_bits(bits);
        if self < LO { 0.0 } else { v }
    }
    #[inline(always)]
    fn c(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::Real;

    #[test]
    fn fast_exp_matches_std_f64() {
        let mut worst = 0.0_f64;
        let mut x = -700.0_f64;
        while x < 705.0 {
            let rel = (x.fast_exp() - x.exp()).abs() / x.exp();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 4e-16, "worst relative error {worst}");
        assert_eq!((-1e4_f64).fast_exp(), 0.0);
        assert!(1e4_f64.fast_exp().is_finite());
    }

    #[test]
    fn fast_exp_matches_std_f32() {
        let mut worst = 0.0_f64;
        let mut x = -87.0_f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let rel = (x.fast_exp() as f64 - want).abs() / want;
            worst = worst.max(rel);
            x += 0.00731;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert_eq!((-1e4_f32).fast_exp(), 0.0);
        assert!(1e4_f32.fast_exp().is_finite());
        assert_eq!(0.0_f32.fast_exp(), 1.0);
    }
}
