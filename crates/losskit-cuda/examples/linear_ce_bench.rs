//! Times the fused linear + cross-entropy (`Gpu::linear_cross_entropy_timed`: cuBLAS GEMMs and kernels only, CUDA
//! events) forward and forward + backward (median of `--reps` after one warm-up), and reports milliseconds, the
//! effective TFLOP/s (2·N·C·d per logits-sized GEMM: 1 forward, 3 with the gradient, like PyTorch), the extra device
//! memory (the plan's f32 tile + cuBLAS workspace + per-row losses, and the drop of free device memory measured with
//! cuMemGetInfo while inputs, outputs and workspace are allocated minus the inputs and outputs) and, given
//! `--torch FILE.md` (the table of `linear_ce_torch.py`), our forward + backward time as a multiple of PyTorch's.
//!
//! ```text
//! linear_ce_bench [--out FILE.md] [--reps N] [--torch linear_ce_torch_bench.md]
//!                 [--shapes 2048x1024x32000,8192x4096x32000,8192x4096x131072] [--dtypes bf16]
//! ```
//! Run by the GPU bundle's `run.sh` (`cargo xtask gpu-bundle`); `linear_ce_torch.py` times PyTorch's matmul +
//! `F.cross_entropy` on the same shapes (run it first to fill the "× torch" column).

use std::process::ExitCode;

use std::sync::Arc;

use cudarc::driver::CudaContext;
use half::bf16;
use losskit_cuda::{Gpu, GpuFloat, LinearCrossEntropy, Result};
use ndarray::{Array1, Array2};

struct Args {
    out: Option<String>,
    reps: usize,
    shapes: Vec<(usize, usize, usize)>,
    dtypes: Vec<String>,
    torch: Option<String>,
}

fn parse() -> std::result::Result<Args, String> {
    let mut args = Args {
        out: None,
        reps: 3,
        shapes: vec![(2048, 1024, 32_000), (8192, 4096, 32_000), (8192, 4096, 131_072)],
        dtypes: vec!["bf16".into()],
        torch: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--out" => args.out = Some(value),
            "--torch" => args.torch = Some(value),
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

/// Forward + backward milliseconds of PyTorch per (N×d×C, dtype), read from `linear_ce_torch.py`'s table (rows
/// `| N×d×C | dtype | forward ms | TFLOP/s | forward+backward ms | ...`); empty when there is no file.
fn torch_times(path: Option<&str>) -> Vec<(String, String, f64)> {
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else { return Vec::new() };
    text.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let ms = cells.get(5)?.parse::<f64>().ok()?;
            Some((cells.get(1)?.to_string(), cells.get(2)?.to_string(), ms))
        })
        .collect()
}

/// Free device memory in bytes (cuMemGetInfo on the device's primary context, which the [`Gpu`] shares), or `None`.
fn free_memory(ctx: Option<&Arc<CudaContext>>) -> Option<usize> {
    ctx?.mem_get_info().ok().map(|(free, _)| free)
}

fn bench<T: GpuFloat>(
    gpu: &Gpu,
    ctx: Option<&Arc<CudaContext>>,
    (n, d, c): (usize, usize, usize),
    reps: usize,
    torch_ms: Option<f64>,
) -> Result<String> {
    let h = matrix::<T>(n, d, 1.0, 1);
    let w = matrix::<T>(c, d, 3.0 / (d as f32).sqrt(), 2);
    let t = Array1::from_iter((0..n).map(|i| (splitmix(i as u64 ^ 0xabcd) % c as u64) as i64));
    let loss = LinearCrossEntropy::new();
    let plan = loss.plan(&h.view(), &w.view(), &t.view(), None, true)?;
    let planned = plan.workspace_bytes(true);
    // Inputs (H, W, targets) and outputs (dH, dW, per-row losses are counted in the plan) on the device.
    let io = 2 * std::mem::size_of::<T>() * (n + c) * d + 8 * n;
    // Peak free-memory drop: sampled from a thread while one forward + backward runs (the warm-up).
    let before = free_memory(ctx);
    let low = std::sync::atomic::AtomicUsize::new(before.unwrap_or(0));
    let done = std::sync::atomic::AtomicBool::new(false);
    let warm = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(f) = free_memory(ctx) {
                    low.fetch_min(f, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        });
        let r = gpu.linear_cross_entropy_timed(&loss, h.view(), w.view(), t.view(), None, true);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    });
    warm?;
    let measured = before.map(|b| b.saturating_sub(low.into_inner()).saturating_sub(io));
    let mut fwd = Vec::new();
    let mut both = Vec::new();
    let mut value = 0.0;
    let _ = gpu.linear_cross_entropy_timed(&loss, h.view(), w.view(), t.view(), None, false)?;
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
    let mib = |v: usize| v as f64 / (1 << 20) as f64;
    let measured = measured.map_or_else(|| "n/a".to_string(), |m| format!("{:.0}", mib(m)));
    let ratio = torch_ms.map_or_else(|| "n/a".to_string(), |tm| format!("{:.2}×", b / tm));
    Ok(format!(
        "| {n}×{d}×{c} | {} | {} | {f:.1} | {:.1} | {b:.1} | {:.1} | {ratio} | {:.0} | {measured} | {value:.4} |",
        T::NAME,
        plan.ws_rows,
        gemm / (f * 1e-3) / 1e12,
        3.0 * gemm / (b * 1e-3) / 1e12,
        mib(planned),
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
    let torch = torch_times(args.torch.as_deref());
    // The primary context of the same device, for cuMemGetInfo from any thread (it binds itself).
    let ctx = std::panic::catch_unwind(|| CudaContext::new(gpu.ordinal())).ok().and_then(|c| c.ok());
    let mut table = format!(
        "## losskit-cuda fused linear + cross-entropy, cuBLAS GEMMs ({name})\n\nMedian of {} runs after one warm-up, \
         GEMMs and kernels only (CUDA events), default tiles (r rows × all C, f32), Mean, i64 targets. TFLOP/s counts \
         2·N·C·d per logits-sized GEMM (1 forward, 3 forward + backward). × torch: our forward + backward time over \
         PyTorch's (matmul + F.cross_entropy, from --torch; below 1.3 is the target). Extra MiB: planned = f32 tile + \
         cuBLAS workspace + per-row losses (LinearCePlan::workspace_bytes); measured = peak drop of free device \
         memory (cuMemGetInfo, sampled) minus inputs and outputs.\n\n| N×d×C | dtype | tile rows | forward ms | \
         TFLOP/s | forward+backward ms | TFLOP/s | × torch | extra MiB planned | extra MiB measured | loss |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        args.reps
    );
    let mut failed = false;
    for &(n, d, c) in &args.shapes {
        for dtype in &args.dtypes {
            let key = format!("{n}×{d}×{c}");
            let torch_ms = torch.iter().find(|(s, t, _)| *s == key && t == dtype).map(|(_, _, ms)| *ms);
            let row = match dtype.as_str() {
                "f32" => bench::<f32>(&gpu, ctx.as_ref(), (n, d, c), args.reps, torch_ms),
                "bf16" => bench::<bf16>(&gpu, ctx.as_ref(), (n, d, c), args.reps, torch_ms),
                "f16" => bench::<half::f16>(&gpu, ctx.as_ref(), (n, d, c), args.reps, torch_ms),
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
                    table.push_str(&format!("| {n}×{d}×{c} | {dtype} | failed: {e} | | | | | | | | |\n"));
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
