#!/usr/bin/env python3
"""Cross-entropy forward + backward: PyTorch CPU against the `losskit` binary, on the same inputs and thread count.

    LOSSKIT_BIN=target/release/losskit LOSSKIT_THREADS=2 /root/.cache/losskit/venv/bin/python benches/peers/losses.py

For each shape (N, C) it writes seeded standard-normal `logits` (float32 [N, C]) and uniform `targets` (int64 [N])
to an .npz, times `torch.nn.functional.cross_entropy(logits, targets)` + `.backward()` (mean reduction, fresh gradient
each run, as a training step pays), then runs

    $LOSSKIT_BIN loss cross-entropy --input X.npz --output Y.npz --repeat K

which prints `median_ms=<float> min_ms=<float>` for K forward + backward runs (file I/O excluded), and checks that
the loss it wrote agrees with PyTorch's. `losskit loss` times `ClassLoss::compute`, which allocates a fresh gradient
each run as torch's backward does (`CrossEntropy::value_and_grad_into`, writing into a reused buffer, is timed by
the criterion bench `benches/benches/losses.rs`). Both use n threads: `torch.set_num_threads(n)` and rayon's pool, where n
is `LOSSKIT_THREADS` or the number of CPUs. K is `LOSSKIT_REPEAT` (default 20).

Prints one Markdown section to stdout (progress goes to stderr). Without LOSSKIT_BIN the losskit column says so.
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
import torch.nn.functional as F

SHAPES = [(4096, 1000), (1024, 32000)]
SEED = 7


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def threads():
    env = os.environ.get("LOSSKIT_THREADS")
    return int(env) if env else (os.cpu_count() or 1)


def time_torch(logits, targets, repeat):
    x = torch.from_numpy(logits)
    t = torch.from_numpy(targets)
    times = []
    value = None
    for i in range(repeat + 3):
        xg = x.detach().requires_grad_(True)
        start = time.perf_counter()
        loss = F.cross_entropy(xg, t)
        loss.backward()
        elapsed = (time.perf_counter() - start) * 1e3
        if i >= 3:  # warm-up
            times.append(elapsed)
        value = loss.item()
    times.sort()
    return times[len(times) // 2], times[0], value


def run_losskit(binary, path, out, repeat, n_threads):
    env = dict(os.environ, LOSSKIT_THREADS=str(n_threads), RAYON_NUM_THREADS=str(n_threads))
    cmd = [binary, "loss", "cross-entropy", "--input", path, "--output", out, "--repeat", str(repeat)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    m = re.search(r"median_ms=([0-9.eE+-]+)\s+min_ms=([0-9.eE+-]+)", proc.stdout)
    if not m:
        raise RuntimeError(f"no `median_ms=... min_ms=...` line in losskit's output: {proc.stdout.strip()!r}")
    with np.load(out) as z:
        value = float(np.asarray(z["loss"]).reshape(-1)[0])
    return float(m.group(1)), float(m.group(2)), value


def main():
    n_threads = threads()
    repeat = int(os.environ.get("LOSSKIT_REPEAT", "20"))
    torch.set_num_threads(n_threads)
    binary = os.environ.get("LOSSKIT_BIN")
    if binary and not os.path.exists(binary):
        log(f"LOSSKIT_BIN={binary} does not exist")
        binary = None
    rows = []
    notes = []
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        for n, c in SHAPES:
            logits = rng.standard_normal((n, c), dtype=np.float32)
            targets = rng.integers(0, c, size=n, dtype=np.int64)
            path = os.path.join(tmp, f"ce_{n}x{c}.npz")
            out = os.path.join(tmp, f"ce_{n}x{c}_out.npz")
            np.savez(path, logits=logits, targets=targets)
            log(f"torch {n}x{c} ...")
            t_med, t_min, t_value = time_torch(logits, targets, repeat)
            l_med = l_min = None
            if binary:
                log(f"losskit {n}x{c} ...")
                try:
                    l_med, l_min, l_value = run_losskit(binary, path, out, repeat, n_threads)
                    rel = abs(l_value - t_value) / abs(t_value)
                    if rel > 1e-5:
                        notes.append(f"{n}x{c}: losskit loss {l_value} differs from torch {t_value} (rel {rel:.1e})")
                except (RuntimeError, OSError, KeyError) as e:
                    notes.append(f"{n}x{c}: losskit failed: {e}")
            rows.append((n, c, t_med, t_min, l_med, l_min))

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    print("### cross-entropy forward + backward: losskit vs PyTorch (CPU, f32)")
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {cpu}, {n_threads} thread(s), torch {torch.__version__}, median of {repeat} "
          f"runs (min in parentheses); losskit times `ClassLoss::compute` (a fresh gradient per run, as torch's "
          f"backward); mean reduction, hard targets, standard-normal logits.")
    print()
    print("| shape (N×C) | torch ms | losskit ms | speed-up (torch / losskit) |")
    print("|---|---|---|---|")
    for n, c, t_med, t_min, l_med, l_min in rows:
        if l_med is None:
            lk, ratio = "—", "—"
        else:
            lk, ratio = f"{l_med:.2f} ({l_min:.2f})", f"{t_med / l_med:.2f}×"
        print(f"| {n}×{c} | {t_med:.2f} ({t_min:.2f}) | {lk} | {ratio} |")
    if not binary:
        notes.append("LOSSKIT_BIN not set: losskit was not run")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print()


if __name__ == "__main__":
    main()
