#!/usr/bin/env python3
"""Pair-based embedding losses forward + backward: pytorch-metric-learning (CPU) against the `losskit` binary, on the
same inputs and thread count, plus the peak memory of losskit's tiled mode on a batch whose B×B matrix would not fit.

    LOSSKIT_BIN=target/release/losskit LOSSKIT_THREADS=2 /root/.cache/losskit/venv/bin/python benches/peers/metric_learning.py

For each loss (`multi-similarity`, `contrastive`, `supcon`, PML defaults on both sides) and shape B×D it writes seeded
standard-normal float32 `embeddings` [B, D] and `labels` [B] (B/4 classes, about four samples per class) to an .npz,
times PML's `loss(embeddings, labels)` + `.backward()` (fresh gradient each run), then runs

    $LOSSKIT_BIN loss NAME --input X.npz --output Y.npz --repeat K

which prints `median_ms=<float> min_ms=<float>` for K forward + backward runs (file I/O excluded), and checks that
the loss it wrote agrees with PML's (relative 1e-4 in float32). Both use n threads: `torch.set_num_threads(n)` and
rayon's pool (`RAYON_NUM_THREADS`), n = `LOSSKIT_THREADS` or the CPU count. K = `LOSSKIT_REPEAT` (default 10).

Then, unless LOSSKIT_SKIP_RSS is set, it runs `multi-similarity` once on B = 32768, D = 128 (float32) under
`/usr/bin/time -v` and reports the maximum resident set size: the tiled mode (automatic for matrices above 2^24
entries) never holds the 32768² matrix (4 GiB in float32).

Prints one Markdown section to stdout (progress goes to stderr).
"""

import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from pytorch_metric_learning import losses

SHAPES = [(512, 128), (2048, 512)]
LOSSES = [
    ("multi-similarity", losses.MultiSimilarityLoss),
    ("contrastive", losses.ContrastiveLoss),
    ("supcon", losses.SupConLoss),
]
RSS_SHAPE = (32768, 128)
SEED = 11


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def threads():
    env = os.environ.get("LOSSKIT_THREADS")
    return int(env) if env else (os.cpu_count() or 1)


def batch(rng, b, d):
    x = rng.standard_normal((b, d), dtype=np.float32)
    y = (np.arange(b, dtype=np.int64) * 7919) % (b // 4)
    return x, y


def time_pml(make, x, y, repeat):
    loss_fn = make()
    xt = torch.from_numpy(x)
    yt = torch.from_numpy(y)
    times = []
    value = None
    for i in range(repeat + 2):
        xg = xt.detach().requires_grad_(True)
        start = time.perf_counter()
        loss = loss_fn(xg, yt)
        loss.backward()
        elapsed = (time.perf_counter() - start) * 1e3
        if i >= 2:  # warm-up
            times.append(elapsed)
        value = loss.item()
    times.sort()
    return times[len(times) // 2], times[0], value


def env_for(n_threads):
    return dict(os.environ, LOSSKIT_THREADS=str(n_threads), RAYON_NUM_THREADS=str(n_threads))


def run_losskit(binary, name, path, out, repeat, n_threads):
    cmd = [binary, "loss", name, "--input", path, "--output", out, "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env_for(n_threads), check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    m = re.search(r"median_ms=([0-9.eE+-]+)\s+min_ms=([0-9.eE+-]+)", proc.stdout)
    if not m:
        raise RuntimeError(f"no `median_ms=... min_ms=...` line in losskit's output: {proc.stdout.strip()!r}")
    with np.load(out) as z:
        value = float(np.asarray(z["loss"]).reshape(-1)[0])
    return float(m.group(1)), float(m.group(2)), value


def peak_rss(binary, tmp, n_threads):
    if not os.path.exists("/usr/bin/time"):
        return None, "/usr/bin/time not found"
    b, d = RSS_SHAPE
    x, y = batch(np.random.default_rng(SEED), b, d)
    path = os.path.join(tmp, "rss.npz")
    out = os.path.join(tmp, "rss_out.npz")
    np.savez(path, embeddings=x, labels=y)
    cmd = ["/usr/bin/time", "-v", binary, "loss", "multi-similarity", "--input", path, "--output", out]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env_for(n_threads), check=False)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return None, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
    m = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", proc.stderr)
    if not m:
        return None, "no maximum resident set size in /usr/bin/time's output"
    return (int(m.group(1)) / 1024.0, wall), None


def main():
    n_threads = threads()
    repeat = int(os.environ.get("LOSSKIT_REPEAT", "10"))
    torch.set_num_threads(n_threads)
    binary = os.environ.get("LOSSKIT_BIN")
    if binary and not os.path.exists(binary):
        log(f"LOSSKIT_BIN={binary} does not exist")
        binary = None
    rows, notes = [], []
    rss = None
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in LOSSES:
            rng = np.random.default_rng(SEED)
            for b, d in SHAPES:
                x, y = batch(rng, b, d)
                path = os.path.join(tmp, f"{name}_{b}x{d}.npz")
                out = os.path.join(tmp, f"{name}_{b}x{d}_out.npz")
                np.savez(path, embeddings=x, labels=y)
                log(f"pml {name} {b}x{d} ...")
                t_med, t_min, t_value = time_pml(make, x, y, repeat)
                l_med = l_min = None
                if binary:
                    log(f"losskit {name} {b}x{d} ...")
                    try:
                        l_med, l_min, l_value = run_losskit(binary, name, path, out, repeat, n_threads)
                        rel = abs(l_value - t_value) / max(abs(t_value), 1e-30)
                        if rel > 1e-4:
                            notes.append(f"{name} {b}x{d}: losskit loss {l_value} differs from PML {t_value} "
                                         f"(rel {rel:.1e})")
                    except (RuntimeError, OSError, KeyError) as e:
                        notes.append(f"{name} {b}x{d}: losskit failed: {e}")
                rows.append((name, b, d, t_med, t_min, l_med, l_min))
        if binary and not os.environ.get("LOSSKIT_SKIP_RSS"):
            log(f"losskit multi-similarity {RSS_SHAPE[0]}x{RSS_SHAPE[1]} under /usr/bin/time -v ...")
            rss, err = peak_rss(binary, tmp, n_threads)
            if err:
                notes.append(f"peak RSS: {err}")

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import pytorch_metric_learning

    print("### metric learning forward + backward: losskit vs pytorch-metric-learning (CPU, f32)")
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {cpu}, {n_threads} thread(s), torch {torch.__version__}, "
          f"pytorch-metric-learning {pytorch_metric_learning.__version__}, median of {repeat} runs (min in "
          f"parentheses); PML defaults, B/4 classes.")
    print()
    print("| loss | B×D | PML ms | losskit ms | speed-up (PML / losskit) |")
    print("|---|---|---|---|---|")
    for name, b, d, t_med, t_min, l_med, l_min in rows:
        if l_med is None:
            lk, ratio = "—", "—"
        else:
            lk, ratio = f"{l_med:.2f} ({l_min:.2f})", f"{t_med / l_med:.2f}×"
        print(f"| {name} | {b}×{d} | {t_med:.2f} ({t_min:.2f}) | {lk} | {ratio} |")
    if rss is not None:
        mib, wall = rss
        b, d = RSS_SHAPE
        print()
        print(f"Tiled mode: `losskit loss multi-similarity` on B×D = {b}×{d} (float32; the dense B×B matrix alone "
              f"would be {b * b * 4 / 2**30:.0f} GiB): peak RSS {mib:.0f} MiB, wall {wall:.1f} s including file I/O.")
    if not binary:
        notes.append("LOSSKIT_BIN not set: losskit was not run")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print()


if __name__ == "__main__":
    main()
