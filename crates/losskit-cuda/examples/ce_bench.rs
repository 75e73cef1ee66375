//! Times the fused cross-entropy kernel (forward alone and forward + backward) on the GPU and reports milliseconds
//! and achieved bandwidth (the bytes the kernel must move: logits read once, gradient written once, ÷ time).
//!
//! ```text
//! ce_bench [--out FILE.md] [--reps N] [--shapes 4096x1000,1024x32000,8192x131072] [--dtypes f32,bf16]
//! ```
//! Run by the GPU bundle's `run.sh` (`cargo xtask gpu-bundle`); `ce_torch.py` times PyTorch on the same shapes.

use std::process::ExitCode;

use half::bf16;
use losskit_cuda::{Gpu, GpuFloat, Result};
use losskit_losses::CrossEntropy;
use ndarray::{Array1, Array2};

struct Args {
    out: Option<String>,
    reps: usize,
    shapes: Vec<(usize, usize)>,
    dtypes: Vec<String>,
}

fn parse() -> std::result::Result<Args, String> {
    let mut args = Args {
        out: None,
        reps: 20,
        shapes: vec![(4096, 1000), (1024, 32_000), (8192, 131_072)],
        dtypes: vec!["f32".into(), "bf16".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--out" => args.out = Some(value),
            "--reps" => args.reps = value.parse().map_err(|_| format!("--reps {value:?}"))?,
            "--shapes" => {
                args.shapes = value
                    .split(',')
                    .map(|s| {
                        let (n, c) = s.split_once('x').ok_or_else(|| format!("shape {s:?} is not NxC"))?;
                        Ok((n.parse().map_err(|_| format!("{s:?}"))?, c.parse().map_err(|_| format!("{s:?}"))?))
                    })
                    .collect::<std::result::Result<_, String>>()?
            }
            "--dtypes" => args.dtypes = value.split(',').map(str::to_string).collect(),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if args.reps == 0 {
        return Err("--reps must be at least 1".into());
    }
    Ok(args)
}

/// Deterministic logits in [-4, 4) (SplitMix64 of the flat index), generated on all cores.
fn logits<T: GpuFloat>(n: usize, c: usize) -> Array2<T> {
    let mut data = vec![T::from_f32(0.0); n * c];
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = (n * c).div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (k, part) in data.chunks_mut(chunk).enumerate() {
            s.spawn(move || {
                for (i, v) in part.iter_mut().enumerate() {
                    let u = splitmix((k * chunk + i) as u64);
                    *v = T::from_f32((u >> 40) as f32 / (1u64 << 24) as f32 * 8.0 - 4.0);
                }
            });
        }
    });
    Array2::from_shape_vec((n, c), data).unwrap_or_else(|_| Array2::from_elem((n, c), T::from_f32(0.0)))
}

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn median_min(mut t: Vec<f32>) -> (f64, f64) {
    t.sort_by(f32::total_cmp);
    (f64::from(t[t.len() / 2]), f64::from(t[0]))
}

/// One table row: times forward and forward + backward, and checks 16 rows against an f64 host computation.
fn bench<T: GpuFloat>(gpu: &Gpu, n: usize, c: usize, reps: usize, copy: f64) -> Result<String> {
    let x = logits::<T>(n, c);
    let targets = Array1::from_iter((0..n).map(|i| (splitmix(i as u64 ^ 0xabcd) % c as u64) as i64));
    let loss = CrossEntropy::default();
    let mut batch = gpu.cross_entropy_batch(&loss, x.view(), targets.view(), None)?;
    let (fwd, fwd_min) = median_min(batch.time(false, 3, reps)?);
    let (both, both_min) = median_min(batch.time(true, 3, reps)?);
    batch.launch(false)?;
    let out = batch.output()?;
    let rows = out.per_sample.map(|r| r.to_vec()).unwrap_or_default();
    let mut worst = 0.0_f64;
    for i in 0..n.min(16) {
        let r: Vec<f64> = x.row(i).iter().map(|v| f64::from(v.to_f32())).collect();
        let m = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + r.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
        let want = lse - r[targets[i] as usize];
        let got = rows.get(i).map_or(f64::NAN, |v| f64::from(v.to_f32()));
        worst = worst.max((got - want).abs() / want.abs());
    }
    let gbs = |bytes: u64, ms: f64| bytes as f64 / (ms * 1e-3) / 1e9;
    Ok(format!(
        "| {n}×{c} | {} | {fwd:.3} ({fwd_min:.3}) | {:.0} | {both:.3} ({both_min:.3}) | {:.0} | {:.0}% | {:.4} | \
         {worst:.1e} |",
        T::NAME,
        gbs(batch.bytes_moved(false), fwd),
        gbs(batch.bytes_moved(true), both),
        100.0 * gbs(batch.bytes_moved(true), both) / copy,
        f64::from(out.value.to_f32()),
    ))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("ce_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let gpu = match Gpu::new(0) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("ce_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = gpu.name().unwrap_or_else(|_| "unknown GPU".into());
    let copy = match gpu.copy_bandwidth(1 << 30, 10) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("ce_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut table = format!(
        "## losskit-cuda fused cross-entropy ({name})\n\nMedian (minimum) of {} launches, CUDA events; GB/s = bytes the \
         kernel must move (logits read once, gradient written once) ÷ median time; % copy = that ÷ the measured \
         device-to-device copy bandwidth, {copy:.0} GB/s (1 GiB copies, bytes read + written, median of 10). Mean \
         reduction, i64 targets, logits uniform in [−4, 4). Last column: largest relative error of 16 per-row losses \
         against f64 on the host.\n\n| N×C | dtype | forward ms | GB/s | forward+backward ms | GB/s | % copy | loss | \
         check |\n|---|---|---|---|---|---|---|---|---|\n",
        args.reps
    );
    let mut failed = false;
    for &(n, c) in &args.shapes {
        for dtype in &args.dtypes {
            let row = match dtype.as_str() {
                "f32" => bench::<f32>(&gpu, n, c, args.reps, copy),
                "bf16" => bench::<bf16>(&gpu, n, c, args.reps, copy),
                "f16" => bench::<half::f16>(&gpu, n, c, args.reps, copy),
                other => {
                    eprintln!("ce_bench: unknown dtype {other}");
                    return ExitCode::from(2);
                }
            };
            match row {
                Ok(line) => {
                    println!("{line}");
                    table.push_str(&line);
                    table.push('\n');
                }
                Err(e) => {
                    eprintln!("ce_bench: {n}×{c} {dtype}: {e}");
                    table.push_str(&format!("| {n}×{c} | {dtype} | failed: {e} | | | | | | |\n"));
                    failed = true;
                }
            }
        }
    }
    if let Some(path) = &args.out
        && let Err(e) = std::fs::write(path, &table)
    {
        eprintln!("ce_bench: writing {path}: {e}");
        return ExitCode::FAILURE;
    }
    print!("{table}");
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
