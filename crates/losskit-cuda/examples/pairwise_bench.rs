//! Times the GPU pairwise losses (multi-similarity, contrastive, SupCon; forward + backward, B × D embeddings) and the
//! GPU exact kNN + SMOTE (N rows × D features, one minority class).
//!
//! Pairwise: embeddings and labels already on the device (`Gpu::pair_loss_device`, as pytorch-metric-learning is
//! timed by `pairwise_torch.py`), each run followed by a synchronize before the clock is read; median of `--reps`
//! runs after two warm-up runs; peak extra device memory from `cuMemGetInfo` (the workspace, the outputs and the
//! cuBLAS handle, measured with the last outputs alive). The end-to-end time from host arrays (`Gpu::pair_loss`:
//! upload, launches, download) is an extra column; the CPU (losskit-losses, f32) is timed once at the first batch
//! size. kNN / SMOTE: end to end from host arrays, after one warm-up search (NVRTC compile, cuBLAS handle).
//!
//! ```text
//! pairwise_bench [--out FILE.md] [--reps N] [--batch 4096,8192] [--dim 512] [--knn-rows 1000000] [--knn-dim 32]
//!                [--minority 100000] [--cpu 0|1]
//! ```
//! Run by the GPU bundle's `run.sh` (`cargo xtask gpu-bundle`); `pairwise_torch.py` times pytorch-metric-learning on
//! the same shapes.

use std::process::ExitCode;
use std::time::Instant;

use half::bf16;
use losskit_cuda::{Gpu, GpuFloat, GpuPairLoss, Result};
use losskit_losses::{Contrastive, EmbeddingLoss, MultiSimilarity, SupCon};
use losskit_samplers::{Sampler, Smote};
use ndarray::{Array1, Array2};

struct Args {
    out: Option<String>,
    reps: usize,
    batches: Vec<usize>,
    dim: usize,
    knn_rows: usize,
    knn_dim: usize,
    minority: usize,
    cpu: bool,
}

fn parse() -> std::result::Result<Args, String> {
    let mut a = Args {
        out: None,
        reps: 10,
        batches: vec![4096, 8192],
        dim: 512,
        knn_rows: 1_000_000,
        knn_dim: 32,
        minority: 100_000,
        cpu: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.parse::<usize>().map_err(|_| format!("{flag} {v:?} is not a number"));
        match flag.as_str() {
            "--out" => a.out = Some(value),
            "--reps" => a.reps = num(&value)?.max(1),
            "--batch" => a.batches = value.split(',').map(num).collect::<std::result::Result<_, _>>()?,
            "--dim" => a.dim = num(&value)?,
            "--knn-rows" => a.knn_rows = num(&value)?,
            "--knn-dim" => a.knn_dim = num(&value)?,
            "--minority" => a.minority = num(&value)?,
            "--cpu" => a.cpu = value != "0",
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(a)
}

/// A seeded xorshift stream in [-1, 1) (no rand dependency needed here).
fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time_pair<T: GpuFloat, L: GpuPairLoss + EmbeddingLoss<f32>>(
    gpu: &Gpu,
    a: &Args,
    batch: usize,
    name: &str,
    loss: &L,
    rows: &mut Vec<String>,
) -> Result<()> {
    let mut r = uniform(7);
    let x64 = Array2::from_shape_fn((batch, a.dim), |_| r());
    // P×K batches: 64 classes.
    let y = Array1::from_shape_fn(batch, |i| (i % 64) as i64);
    let x = x64.mapv(T::from_f64);
    let xs = x.as_slice().ok_or_else(|| losskit_cuda::Error::Input { what: "not contiguous".into() })?;
    let xd = gpu.to_device(xs)?;
    let yd = gpu.to_device(y.as_slice().unwrap_or(&[]))?;
    gpu.free_pair_workspace()?;
    gpu.synchronize()?;
    let (free0, _) = gpu.memory_info()?;
    // Warm-up: NVRTC compile and cuBLAS handle (first call of the process), workspace, cuBLAS kernels.
    for _ in 0..2 {
        std::hint::black_box(gpu.pair_loss_device(loss, &xd, a.dim, &yd, true)?);
    }
    gpu.synchronize()?;
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..a.reps {
        drop(last.take()); // free the previous outputs first, as a training step would
        let t0 = Instant::now();
        let out = gpu.pair_loss_device(loss, &xd, a.dim, &yd, true)?;
        gpu.synchronize()?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
        last = Some(out);
    }
    let (free1, _) = gpu.memory_info()?;
    let extra_mib = free0.saturating_sub(free1) as f64 / (1 << 20) as f64;
    let value = last.map_or(f64::NAN, |o| o.value);
    let dev_ms = median(times);
    // End to end from host arrays (fewer runs: it is the slow column).
    let mut e2e = Vec::new();
    for _ in 0..a.reps.div_ceil(2).max(3) {
        let t0 = Instant::now();
        std::hint::black_box(gpu.pair_loss(loss, x.view(), y.view(), true)?);
        e2e.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let e2e_ms = median(e2e);
    let cpu_ms = if a.cpu && T::NAME == "f32" && Some(&batch) == a.batches.first() {
        let x32 = x.mapv(|v| v.to_f32());
        let t0 = Instant::now();
        let out = EmbeddingLoss::<f32>::compute(loss, x32.view(), y.view(), None, true);
        std::hint::black_box(out.ok());
        format!("{:.1}", t0.elapsed().as_secs_f64() * 1e3)
    } else {
        "-".into()
    };
    let line = format!(
        "| {name} | {} | {batch}x{} | {dev_ms:.2} | {extra_mib:.0} | {e2e_ms:.2} | {cpu_ms} | {value:.6} |",
        T::NAME,
        a.dim
    );
    println!("{line}");
    rows.push(line);
    Ok(())
}

fn run(a: &Args) -> Result<String> {
    let gpu = Gpu::new(0)?;
    let device = gpu.name()?;
    let mut md = format!("### losskit-cuda pairwise losses and kNN on {device}\n\n");
    md.push_str("Forward + backward. GPU ms: embeddings and labels on the device (`Gpu::pair_loss_device`), ");
    md.push_str(&format!("synchronised, median of {} runs after 2 warm-up runs; extra MiB: device memory ", a.reps));
    md.push_str("in use beyond the inputs (workspace + outputs + cuBLAS, cuMemGetInfo); end-to-end ms: from host ");
    md.push_str("arrays (`Gpu::pair_loss`: upload, launches, download); CPU = losskit-losses f32 on this machine's ");
    md.push_str("CPU, one run, first batch size only.\n\n");
    md.push_str("| loss | dtype | B x D | GPU ms | extra MiB | end-to-end ms | CPU ms | value |\n");
    md.push_str("|---|---|---|---|---|---|---|---|\n");
    let mut rows = Vec::new();
    for &b in &a.batches {
        let ms = MultiSimilarity::new();
        time_pair::<f32, _>(&gpu, a, b, "multi-similarity", &ms, &mut rows)?;
        time_pair::<bf16, _>(&gpu, a, b, "multi-similarity", &ms, &mut rows)?;
        time_pair::<f32, _>(&gpu, a, b, "multi-similarity (miner)", &ms.clone().miner(true), &mut rows)?;
        time_pair::<f32, _>(&gpu, a, b, "contrastive", &Contrastive::new(), &mut rows)?;
        time_pair::<bf16, _>(&gpu, a, b, "contrastive", &Contrastive::new(), &mut rows)?;
        time_pair::<f32, _>(&gpu, a, b, "supcon", &SupCon::new(), &mut rows)?;
        time_pair::<bf16, _>(&gpu, a, b, "supcon", &SupCon::new(), &mut rows)?;
    }
    gpu.free_pair_workspace()?;
    md.push_str(&rows.join("\n"));
    md.push_str("\n\n");

    // kNN + SMOTE: N rows, one minority class of `minority` rows (SMOTE searches within it).
    let mut r = uniform(11);
    let n = a.knn_rows;
    let x = Array2::from_shape_fn((n, a.knn_dim), |_| r());
    let step = (n / a.minority.max(1)).max(1);
    let y = Array1::from_shape_fn(n, |i| i64::from(i % step == 0));
    let minority: Vec<usize> = (0..n).filter(|i| i % step == 0).collect();
    let xm = Array2::from_shape_fn((minority.len(), a.knn_dim), |(i, j)| x[[minority[i], j]]);
    // Warm-up: the kNN kernel file's NVRTC compile and first cuBLAS launch are not part of a search.
    gpu.kneighbors_self(xm.slice(ndarray::s![..xm.nrows().min(1000), ..]), 5)?;
    let t0 = Instant::now();
    let (_, stats) = gpu.kneighbors_self(xm.view(), 5)?;
    let knn_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    let res = gpu.smote(&Smote::new(), x.view(), y.view(), 0)?;
    let smote_ms = t0.elapsed().as_secs_f64() * 1e3;
    let (cpu_knn, cpu_smote, same) = if a.cpu {
        let t0 = Instant::now();
        let cpu = losskit_samplers::knn::kneighbors_self(xm.view(), 5)?;
        let cpu_knn = t0.elapsed().as_secs_f64() * 1e3;
        let (g, _) = gpu.kneighbors_self(xm.view(), 5)?;
        let t0 = Instant::now();
        let cs = Smote::new().fit_resample(x.view(), y.view(), 0)?;
        let cpu_smote = t0.elapsed().as_secs_f64() * 1e3;
        (format!("{cpu_knn:.0}"), format!("{cpu_smote:.0}"), format!("{}", g.indices == cpu.indices && cs.x == res.x))
    } else {
        ("-".into(), "-".into(), "not checked".into())
    };
    md.push_str("| search | rows x D | minority | GPU ms | CPU ms | identical to CPU | fallback queries |\n");
    md.push_str("|---|---|---|---|---|---|---|\n");
    md.push_str(&format!(
        "| kNN k=5 (minority, self) | {}x{} | {} | {knn_ms:.0} | {cpu_knn} | {same} | {} of {} |\n",
        minority.len(),
        a.knn_dim,
        minority.len(),
        stats.fallback_queries,
        stats.queries
    ));
    md.push_str(&format!(
        "| SMOTE k=5 (auto) | {n}x{} | {} | {smote_ms:.0} | {cpu_smote} | {same} | |\n",
        a.knn_dim,
        minority.len()
    ));
    Ok(md)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pairwise_bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(md) => {
            println!("{md}");
            if let Some(out) = &args.out
                && let Err(e) = std::fs::write(out, &md)
            {
                eprintln!("pairwise_bench: writing {out}: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pairwise_bench: {e}");
            ExitCode::from(1)
        }
    }
}
