//! Times the fused linear + cross-entropy (`Gpu::linear_cross_entropy_timed`: kernels only, CUDA events) forward and
//! forward + backward, and reports milliseconds, the effective TFLOP/s (2·N·C·d per logits GEMM: 1 forward, 4 with
//! the gradient) and the extra device memory of the plan (logits tile, accumulators, per-row state).
//!
//! ```text
//! linear_ce_bench [--out FILE.md] [--reps N] [--shapes 2048x1024x32000,8192x4096x32000] [--dtypes bf16]
//! ```
//! Run by the GPU bundle's `run.sh` (`cargo xtask gpu-bundle`); `linear_ce_torch.py` times PyTorch's matmul +
//! `F.cross_entropy` on the same shapes.

use std::process::ExitCode;

use half::bf16;
use losskit_cuda::{Gpu, GpuFloat, LinearCrossEntropy, Result};
use ndarray::{Array1, Array2};

struct Args {
    out: Option<String>,
    reps: usize,
    shapes: Vec<(usize, usize, usize)>,
    dtypes: Vec<String>,
}

fn parse() -> std::result::Result<Args, String> {
    let mut args = Args {
        out: None,
        reps: 3,
        shapes: vec![(2048, 1024, 32_000), (8192, 4096, 32_000)],
        dtypes: vec!["bf16".into()],
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
                        let p: Vec<usize> = s.split('x').filter_map(|v| v.parse().ok()).collect();
                        match p[..] {
                            [n, d, c] => Ok((n, d, c)),
                            _ => Err(format!("shape {s:?} is not NxdxC")),
                        }
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

fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Deterministic entries uniform in [−scale, scale) (SplitMix64 of the flat index and a salt), on all cores.
fn matrix<T: GpuFloat>(rows: usize, cols: usize, scale: f32, salt: u64) -> Array2<T> {
    let mut data = vec![T::from_f32(0.0); rows * cols];
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = (rows * cols).div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (k, part) in data.chunks_mut(chunk).enumerate() {
            s.spawn(move || {
                for (i, v) in part.iter_mut().enumerate() {
                    let u = splitmix(((k * chunk + i) as u64) ^ salt);
                    *v = T::from_f32(((u >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale);
                }
            });
        }
    });
    Array2::from_shape_vec((rows, cols), data).unwrap_or_else(|_| Array2::from_elem((rows, cols), T::from_f32(0.0)))
}

fn bench<T: GpuFloat>(gpu: &Gpu, n: usize, d: usize, c: usize, reps: usize) -> Result<String> {
    let h = matrix::<T>(n, d, 1.0, 1);
    let w = matrix::<T>(c, d, 3.0 / (d as f32).sqrt(), 2);
    let t = Array1::from_iter((0..n).map(|i| (splitmix(i as u64 ^ 0xabcd) % c as u64) as i64));
    let loss = LinearCrossEntropy::new();
    let extra = loss.plan(&h.view(), &w.view(), &t.view(), None, true)?.workspace_bytes(true);
    let mut fwd = Vec::new();
    let mut both = Vec::new();
    let mut value = 0.0;
    for _ in 0..reps {
        let (out, ms) = gpu.linear_cross_entropy_timed(&loss, h.view(), w.view(), t.view(), None, false)?;
        fwd.push(ms);
        value = out.value;
        let (_, ms) = gpu.linear_cross_entropy_timed(&loss, h.view(), w.view(), t.view(), None, true)?;
        both.push(ms);
    }
    fwd.sort_by(f32::total_cmp);
    both.sort_by(f32::total_cmp);
    let (f, b) = (f64::from(fwd[fwd.len() / 2]), f64::from(both[both.len() / 2]));
    let gemm = 2.0 * n as f64 * c as f64 * d as f64;
    Ok(format!(
        "| {n}×{d}×{c} | {} | {f:.1} | {:.1} | {b:.1} | {:.1} | {:.0} | {value:.4} |",
        T::NAME,
        gemm / (f * 1e-3) / 1e12,
        4.0 * gemm / (b * 1e-3) / 1e12,
        extra as f64 / (1 << 20) as f64,
    ))
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("linear_ce_bench: {e}");
            return ExitCode::from(2);
        }
    };
    let gpu = match Gpu::new(0) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("linear_ce_bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = gpu.name().unwrap_or_else(|_| "unknown GPU".into());
    let mut table = format!(
        "## losskit-cuda fused linear + cross-entropy ({name})\n\nMedian of {} runs, kernels only (CUDA events), \
         default chunks 2048 × 8192, Mean, i64 targets. TFLOP/s counts 2·N·C·d per logits-sized GEMM (1 forward, \
         4 forward + backward). Extra MiB: logits tile + f32 accumulators + per-row state (the plan's \
         workspace_bytes).\n\n| N×d×C | dtype | forward ms | TFLOP/s | forward+backward ms | TFLOP/s | extra MiB | \
         loss |\n|---|---|---|---|---|---|---|---|\n",
        args.reps
    );
    let mut failed = false;
    for &(n, d, c) in &args.shapes {
        for dtype in &args.dtypes {
            let row = match dtype.as_str() {
                "f32" => bench::<f32>(&gpu, n, d, c, args.reps),
                "bf16" => bench::<bf16>(&gpu, n, d, c, args.reps),
                "f16" => bench::<half::f16>(&gpu, n, d, c, args.reps),
                other => {
                    eprintln!("linear_ce_bench: unknown dtype {other}");
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
                    eprintln!("linear_ce_bench: {n}×{d}×{c} {dtype}: {e}");
                    table.push_str(&format!("| {n}×{d}×{c} | {dtype} | failed: {e} | | | | | |\n"));
                    failed = true;
                }
            }
        }
    }
    if let Some(path) = &args.out
        && let Err(e) = std::fs::write(path, &table)
    {
        eprintln!("linear_ce_bench: writing {path}: {e}");
        return ExitCode::FAILURE;
    }
    print!("{table}");
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
