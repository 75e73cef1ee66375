//! Vectorisable sweeps over one logit row, shared by the row kernels.
//!
//! Every reduction keeps [`LANES`] independent accumulators and combines them in a fixed tree at the end: a float
//! sum written as one running total cannot vectorise (the compiler must keep the serial rounding order), while lane
//! accumulators map onto SIMD registers. The order is fixed by the code, not by the thread count, so results are
//! bit-identical whatever the number of threads. (On AVX-512 CPUs the f32 exponential sweep runs
//! [`simd::exp_sum`], which fuses multiply-adds: within 1 ulp per exponential of the portable form.)

use losskit_tensor::Real;

#[cfg(target_arch = "x86_64")]
use super::simd;

/// Independent accumulators per reduction: 16 fills one AVX-512 register of f32 (two of f64, four SSE registers).
pub(crate) const LANES: usize = 16;

/// Sums the lanes pairwise in a fixed order.
#[inline(always)]
fn sum_lanes<F: Real>(mut a: [F; LANES]) -> F {
    let mut width = LANES / 2;
    while width > 0 {
        for k in 0..width {
            a[k] += a[k + width];
        }
        width /= 2;
    }
    a[0]
}

#[inline(always)]
fn max2<F: Real>(a: F, b: F) -> F {
    if b > a { b } else { a }
}

/// Row maximum and whether every element is finite, in one read of the row.
///
/// The finiteness flag is a per-lane select, `flag = if |v| ≤ MAX { flag } else { 1 }` (false for ±∞ and NaN): it
/// vectorises like the maximum beside it, while an integer OR of `!v.is_finite()` runs at half the speed and a float
/// probe such as Σ (v − v) keeps the compiler from vectorising the loop at all. On a CPU with AVX-512, f32 rows run
/// the bit-identical [`simd::max_and_finite`] instead.
#[inline(always)]
pub(crate) fn max_and_finite<F: Real>(z: &[F]) -> (F, bool) {
    #[cfg(target_arch = "x86_64")]
    if let Some(z32) = simd::as_f32(z)
        && simd::avx512()
    {
        // SAFETY: the CPU has AVX-512F (checked just above).
        let (m, ok) = unsafe { simd::max_and_finite(z32) };
        return (F::c(f64::from(m)), ok);
    }
    max_and_finite_portable(z)
}

/// [`max_and_finite`] without the AVX-512 form (the reference the AVX-512 form is tested against).
#[inline(always)]
pub(crate) fn max_and_finite_portable<F: Real>(z: &[F]) -> (F, bool) {
    let big = F::max_value();
    let mut mx = [F::neg_infinity(); LANES];
    let mut bad = [F::zero(); LANES];
    let mut chunks = z.chunks_exact(LANES);
    for ch in &mut chunks {
        for k in 0..LANES {
            let v = ch[k];
            mx[k] = max2(mx[k], v);
            bad[k] = if v.abs() <= big { bad[k] } else { F::one() };
        }
    }
    for (k, &v) in chunks.remainder().iter().enumerate() {
        mx[k] = max2(mx[k], v);
        bad[k] = if v.abs() <= big { bad[k] } else { F::one() };
    }
    let mut m = mx[0];
    for &v in &mx[1..] {
        m = max2(m, v);
    }
    (m, bad.iter().all(|&b| b == F::zero()))
}

/// Σⱼ exp((z[j] − m)·s); when `out` is given, also writes each exponential there (same length as `z`). On a CPU with
/// AVX-512, f32 rows run [`simd::exp_sum`] instead (fused multiply-adds: each exponential within 1 ulp of these).
#[inline(always)]
pub(crate) fn exp_sum<F: Real>(z: &[F], m: F, s: F, out: Option<&mut [F]>) -> F {
    #[cfg(target_arch = "x86_64")]
    if let Some(z32) = simd::as_f32(z)
        && simd::avx512()
    {
        let out32 = match out {
            Some(o) => match simd::as_f32_mut(o) {
                Some(o) => Some(o),
                None => return F::nan(), // unreachable: F is f32 here
            },
            None => None,
        };
        let (m32, s32) = (m.to_f32().unwrap_or(f32::NAN), s.to_f32().unwrap_or(f32::NAN));
        // SAFETY: the CPU has AVX-512F (checked just above).
        let lanes = unsafe { simd::exp_sum(z32, m32, s32, out32) };
        return sum_lanes(lanes.map(|v| F::c(f64::from(v))));
    }
    exp_sum_portable(z, m, s, out)
}

/// [`exp_sum`] without the AVX-512 form (the reference the AVX-512 form is tested against).
#[inline(always)]
pub(crate) fn exp_sum_portable<F: Real>(z: &[F], m: F, s: F, out: Option<&mut [F]>) -> F {
    let mut acc = [F::zero(); LANES];
    match out {
        Some(out) => {
            debug_assert_eq!(z.len(), out.len());
            let mut zc = z.chunks_exact(LANES);
            let mut oc = out.chunks_exact_mut(LANES);
            for (zs, os) in (&mut zc).zip(&mut oc) {
                for k in 0..LANES {
                    let e = ((zs[k] - m) * s).fast_exp();
                    os[k] = e;
                    acc[k] += e;
                }
            }
            for (k, (&v, o)) in zc.remainder().iter().zip(oc.into_remainder()).enumerate() {
                let e = ((v - m) * s).fast_exp();
                *o = e;
                acc[k] += e;
            }
        }
        None => {
            let mut zc = z.chunks_exact(LANES);
            for zs in &mut zc {
                for k in 0..LANES {
                    acc[k] += ((zs[k] - m) * s).fast_exp();
                }
            }
            for (k, &v) in zc.remainder().iter().enumerate() {
                acc[k] += ((v - m) * s).fast_exp();
            }
        }
    }
    sum_lanes(acc)
}

/// Σⱼ wⱼ·(z[j] − m)·s, or Σⱼ (z[j] − m)·s without weights (every term ≤ 0, so no cancellation).
#[inline(always)]
pub(crate) fn shifted_dot<F: Real>(z: &[F], w: Option<&[F]>, m: F, s: F) -> F {
    let mut acc = [F::zero(); LANES];
    match w {
        Some(w) => {
            debug_assert_eq!(z.len(), w.len());
            let mut zc = z.chunks_exact(LANES);
            let mut wc = w.chunks_exact(LANES);
            for (zs, ws) in (&mut zc).zip(&mut wc) {
                for k in 0..LANES {
                    acc[k] += ws[k] * ((zs[k] - m) * s);
                }
            }
            for (k, (&v, &wv)) in zc.remainder().iter().zip(wc.remainder()).enumerate() {
                acc[k] += wv * ((v - m) * s);
            }
        }
        None => {
            let mut zc = z.chunks_exact(LANES);
            for zs in &mut zc {
                for k in 0..LANES {
                    acc[k] += (zs[k] - m) * s;
                }
            }
            for (k, &v) in zc.remainder().iter().enumerate() {
                acc[k] += (v - m) * s;
            }
        }
    }
    sum_lanes(acc)
}

/// Σⱼ wⱼ·t'ⱼ and Σⱼ wⱼ·t'ⱼ·(z[j] − m)·s with t'ⱼ = keep·t[j] + spread (label smoothing of a probability
/// target); wⱼ = 1 without weights.
#[inline(always)]
pub(crate) fn target_sums<F: Real>(z: &[F], t: &[F], w: Option<&[F]>, m: F, s: F, keep: F, spread: F) -> (F, F) {
    debug_assert_eq!(z.len(), t.len());
    let mut tw = [F::zero(); LANES];
    let mut dz = [F::zero(); LANES];
    for (j, (&zj, &tj)) in z.iter().zip(t).enumerate() {
        let k = j % LANES;
        let wt = w.map_or(F::one(), |w| w[j]) * (keep * tj + spread);
        tw[k] += wt;
        dz[k] += wt * ((zj - m) * s);
    }
    (sum_lanes(tw), sum_lanes(dz))
}

/// g[j] ← a·g[j] − b·w[j]·t'[j] with t'ⱼ = keep·t[j] + spread (wⱼ = 1 without weights).
#[inline(always)]
pub(crate) fn scale_shift_target<F: Real>(g: &mut [F], a: F, b: F, t: &[F], w: Option<&[F]>, keep: F, spread: F) {
    debug_assert_eq!(g.len(), t.len());
    for (j, (v, &tj)) in g.iter_mut().zip(t).enumerate() {
        let wt = w.map_or(F::one(), |w| w[j]) * (keep * tj + spread);
        *v = a * *v - b * wt;
    }
}

/// g[j] ← a·g[j] − b·w[j] (or − b without weights).
#[inline(always)]
pub(crate) fn scale_shift<F: Real>(g: &mut [F], a: F, b: F, w: Option<&[F]>) {
    match w {
        Some(w) => {
            debug_assert_eq!(g.len(), w.len());
            for (v, &wv) in g.iter_mut().zip(w) {
                *v = a * *v - b * wv;
            }
        }
        None => {
            for v in g.iter_mut() {
                *v = a * *v - b;
            }
        }
    }
}

/// ln(1 + u) for u ∈ [0, 1], branch-free so that loops over slices vectorise: 2·atanh(w) with w = u/(2 + u) ∈ [0, ⅓],
/// by its odd series 2·Σₖ w^(2k+1)/(2k+1). The tail after n terms is below w·9⁻ⁿ/(2n+1), so 7 terms (f32) and 16
/// terms (f64) reach the type's rounding; there is no cancellation, so small u keep their relative accuracy.
#[inline(always)]
pub(crate) fn log1p_unit<F: Real>(u: F) -> F {
    const INV_ODD: [f64; 16] = [
        1.0,
        1.0 / 3.0,
        1.0 / 5.0,
        1.0 / 7.0,
        1.0 / 9.0,
        1.0 / 11.0,
        1.0 / 13.0,
        1.0 / 15.0,
        1.0 / 17.0,
        1.0 / 19.0,
        1.0 / 21.0,
        1.0 / 23.0,
        1.0 / 25.0,
        1.0 / 27.0,
        1.0 / 29.0,
        1.0 / 31.0,
    ];
    let terms = if std::mem::size_of::<F>() == 4 { 7 } else { 16 };
    let two = F::c(2.0);
    let w = u / (two + u);
    let w2 = w * w;
    let mut p = F::zero();
    for &c in INV_ODD[..terms].iter().rev() {
        p = p * w2 + F::c(c);
    }
    two * w * p
}

/// softplus(x) = ln(1 + eˣ) = max(x, 0) + ln(1 + e^(−|x|)), branch-free.
#[inline(always)]
pub(crate) fn softplus<F: Real>(x: F) -> F {
    x.max(F::zero()) + log1p_unit((-x.abs()).fast_exp())
}

/// sigmoid(x) = 1/(1 + e^(−x)), as e^(−|x|)/(1 + e^(−|x|)) for x < 0 so that no exponential overflows; branch-free.
#[inline(always)]
pub(crate) fn sigmoid<F: Real>(x: F) -> F {
    let u = (-x.abs()).fast_exp();
    let num = if x >= F::zero() { F::one() } else { u };
    num / (F::one() + u)
}

/// Writes softplus(z[j]) into `out` and returns their sum.
#[inline(always)]
pub(crate) fn softplus_sum<F: Real>(z: &[F], out: &mut [F]) -> F {
    debug_assert_eq!(z.len(), out.len());
    let mut acc = [F::zero(); LANES];
    let mut zc = z.chunks_exact(LANES);
    let mut oc = out.chunks_exact_mut(LANES);
    for (zs, os) in (&mut zc).zip(&mut oc) {
        for k in 0..LANES {
            let v = softplus(zs[k]);
            os[k] = v;
            acc[k] += v;
        }
    }
    for (k, (&v, o)) in zc.remainder().iter().zip(oc.into_remainder()).enumerate() {
        let sp = softplus(v);
        *o = sp;
        acc[k] += sp;
    }
    sum_lanes(acc)
}

/// Σⱼ a[j]·b[j].
#[inline(always)]
pub(crate) fn dot<F: Real>(a: &[F], b: &[F]) -> F {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [F::zero(); LANES];
    let mut ac = a.chunks_exact(LANES);
    let mut bc = b.chunks_exact(LANES);
    for (xs, ys) in (&mut ac).zip(&mut bc) {
        for k in 0..LANES {
            acc[k] += xs[k] * ys[k];
        }
    }
    for (k, (&x, &y)) in ac.remainder().iter().zip(bc.remainder()).enumerate() {
        acc[k] += x * y;
    }
    sum_lanes(acc)
}

/// Σⱼ |z[j]|.
#[inline(always)]
pub(crate) fn abs_sum<F: Real>(z: &[F]) -> F {
    let mut acc = [F::zero(); LANES];
    let mut zc = z.chunks_exact(LANES);
    for zs in &mut zc {
        for k in 0..LANES {
            acc[k] += zs[k].abs();
        }
    }
    for (k, &v) in zc.remainder().iter().enumerate() {
        acc[k] += v.abs();
    }
    sum_lanes(acc)
}

/// Σⱼ v[j].
#[inline(always)]
pub(crate) fn sum<F: Real>(v: &[F]) -> F {
    let mut acc = [F::zero(); LANES];
    let mut vc = v.chunks_exact(LANES);
    for vs in &mut vc {
        for k in 0..LANES {
            acc[k] += vs[k];
        }
    }
    for (k, &x) in vc.remainder().iter().enumerate() {
        acc[k] += x;
    }
    sum_lanes(acc)
}

/// The exponentials of one row split around the target column y, so that Σ_{j≠y} is summed directly instead of
/// as S − e_y (which loses every digit of 1 − p_y when p_y ≈ 1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SplitSum<F> {
    /// Σ_{j≠y} exp((z_j − m)·s).
    pub rest: F,
    /// exp((z_y − m)·s).
    pub ey: F,
    /// S = rest + ey.
    pub total: F,
    /// ln S, accurate also when S ≈ 1.
    pub ln_total: F,
    /// log p_y = (z_y − m)·s − ln S, accurate also when p_y ≈ 1.
    pub log_py: F,
}

impl<F: Real> SplitSum<F> {
    /// 1 − p_y = Σ_{j≠y} p_j, without cancellation.
    #[inline(always)]
    pub(crate) fn one_minus_py(&self) -> F {
        self.rest / self.total
    }
    /// p_y.
    #[inline(always)]
    pub(crate) fn py(&self) -> F {
        self.ey / self.total
    }
}

/// Computes the [`SplitSum`] of row `z` (max `m`, logit scale `s` > 0) around column `y`, writing the exponentials of
/// the other columns into `out` when given (column y of `out` is left for the caller).
#[inline(always)]
pub(crate) fn split_exp_sum<F: Real>(z: &[F], m: F, s: F, y: usize, out: Option<&mut [F]>) -> SplitSum<F> {
    let (left, right) = (&z[..y], &z[y + 1..]);
    let (sl, sr) = match out {
        Some(out) => {
            let (ol, or) = out.split_at_mut(y);
            (exp_sum(left, m, s, Some(ol)), exp_sum(right, m, s, Some(&mut or[1..])))
        }
        None => (exp_sum(left, m, s, None), exp_sum(right, m, s, None)),
    };
    let rest = sl + sr;
    let zy = (z[y] - m) * s;
    let ey = zy.fast_exp();
    let total = rest + ey;
    // log p_y = z'_y − m' − ln S. When y holds the maximum, e_y = 1 and S = 1 + rest, and ln S = ln_1p(rest) keeps
    // the digits of a small rest that ln(S) would round away. Otherwise z'_y − m' < 0 and −ln S ≤ 0 add without
    // cancellation.
    let ln_total = if zy == F::zero() { rest.ln_1p() } else { total.ln() };
    SplitSum { rest, ey, total, ln_total, log_py: zy - ln_total }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_match_plain_loops() {
        let z: Vec<f64> = (0..37).map(|i| ((i * 7919) % 101) as f64 / 10.0 - 5.0).collect();
        let (m, ok) = max_and_finite(&z);
        assert!(ok);
        assert_eq!(m, z.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
        let want: f64 = z.iter().map(|v| ((v - m) * 0.5).exp()).sum();
        let mut out = vec![0.0; z.len()];
        let got = exp_sum(&z, m, 0.5, Some(&mut out));
        assert!((got - want).abs() < 1e-13 * want);
        assert!((exp_sum(&z, m, 0.5, None) - got).abs() == 0.0);
        for (o, v) in out.iter().zip(&z) {
            assert!((o - ((v - m) * 0.5).exp()).abs() < 1e-15);
        }
        let mut bad = z.clone();
        bad[33] = f64::INFINITY;
        assert!(!max_and_finite(&bad).1);
        bad[33] = f64::NAN;
        assert!(!max_and_finite(&bad).1);
    }

    #[test]
    fn vector_softplus_sigmoid_and_log1p_match_std() {
        for i in 0..=2000 {
            let u = i as f64 / 2000.0;
            let u = if i == 1 { 1e-300 } else { u };
            let want = u.ln_1p();
            assert!((log1p_unit(u) - want).abs() <= 4e-16 * want, "log1p({u})");
            let uf = u as f32;
            let wf = uf.ln_1p();
            assert!((log1p_unit(uf) - wf).abs() <= 3e-7 * wf, "log1p_f32({uf})");
        }
        for i in -400..=400 {
            let x = i as f64 / 4.0;
            let sp = x.max(0.0) + (-x.abs()).exp().ln_1p();
            assert!((softplus(x) - sp).abs() <= 1e-15 * sp, "softplus({x})");
            let sg = 1.0 / (1.0 + (-x).exp());
            assert!((sigmoid(x) - sg).abs() <= 1e-15 * sg, "sigmoid({x})");
            let xf = x as f32;
            let spf = xf.max(0.0) + (-xf.abs()).exp().ln_1p();
            // fast_exp flushes results below the smallest normal f32 to 0.
            assert!((softplus(xf) - spf).abs() <= 1e-6 * spf + 1e-37, "softplus_f32({xf})");
            let sgf = 1.0 / (1.0 + (-xf).exp());
            assert!((sigmoid(xf) - sgf).abs() <= 1e-6 * sgf + 1e-37, "sigmoid_f32({xf})");
        }
        let z: Vec<f64> = (0..37).map(|i| ((i * 7919) % 101) as f64 / 10.0 - 5.0).collect();
        let mut out = vec![0.0; z.len()];
        let total = softplus_sum(&z, &mut out);
        let want: f64 = z.iter().map(|&v| softplus(v)).sum();
        assert!((total - want).abs() < 1e-13 * want);
        assert!((abs_sum(&z) - z.iter().map(|v| v.abs()).sum::<f64>()).abs() < 1e-12);
        assert!((sum(&z) - z.iter().sum::<f64>()).abs() < 1e-12);
        assert!((dot(&z, &out) - z.iter().zip(&out).map(|(a, b)| a * b).sum::<f64>()).abs() < 1e-12);
    }

    #[test]
    fn split_sum_keeps_one_minus_p_when_confident() {
        let z = [40.0_f64, 0.0, 1.0];
        let s = split_exp_sum(&z, 40.0, 1.0, 0, None);
        let rest = (-40.0_f64).exp() + (-39.0_f64).exp();
        assert!((s.one_minus_py() - rest / (1.0 + rest)).abs() < 1e-15 * rest);
        assert!((s.log_py + rest.ln_1p()).abs() < 1e-15 * rest);
    }
}
