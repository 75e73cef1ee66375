#!/usr/bin/env python3
"""The softmax-family classification losses, forward + backward: PyTorch CPU against the `losskit` binary.

    LOSSKIT_BIN=target/release/losskit LOSSKIT_THREADS=2 /root/.cache/losskit/venv/bin/python \\
        benches/peers/classification.py

For each shape (N, C) in SHAPES it writes seeded standard-normal `logits` (float32 [N, C]) and uniform `targets`
(int64 [N]) to an .npz. For each loss it times a PyTorch implementation (forward + `.backward()`, mean reduction,
fresh gradient each run, as a training step pays; written below from the formulas and the official code, at the
registry's default parameters), then runs

    $LOSSKIT_BIN loss NAME --input X.npz --output Y.npz --repeat K

which prints `median_ms=<float> min_ms=<float>` for K forward + backward runs (file I/O excluded), and checks that
the loss value it wrote agrees with PyTorch's (relative 1e-4: both are f32; PyTorch reduces in f32, losskit in f64).
`losskit loss` times `ClassLoss::compute`, the allocating API: each run returns a freshly allocated gradient, as
each torch run allocates a fresh `.grad` (losskit's `value_and_grad_into`, which writes into a reused buffer, is
timed by the criterion bench `benches/benches/losses.rs`, ids `<loss>/f32-into/<N>x<C>`).

The two sides are interleaved so that a machine whose load changes during the run affects both alike: each
(loss, shape) is timed in R rounds (`LOSSKIT_ROUNDS`, default 4), each round K/R torch runs then K/R losskit runs;
torch's median and minimum are over all its runs, losskit's median is the median of its per-round medians and its
minimum the least per-round minimum.
Both use n threads: `torch.set_num_threads(n)` and rayon's pool, where n is `LOSSKIT_THREADS` or the number of CPUs.
K is `LOSSKIT_REPEAT` (default 20). `LOSSKIT_LOSSES=a,b` restricts the run to some losses.

Besides the times it reports losskit's achieved bandwidth: a fused loss must read the logits once and write the
gradient once, 2·N·C·4 bytes, against the machine's copy bandwidth measured here (np.copyto of 256 MiB, best of 7,
counting the bytes read and written), and against a copy of the logits' own size (N·C·4 bytes into a reused buffer,
best of 20): where logits and gradient fit in the last-level cache (4096×1000 is 16 MiB each), the latter is the
fair ceiling, and the share of the 256 MiB figure can pass 100%.

`losskit loss --repeat` runs 3 untimed warm-up runs first (its `--warmup` default), as the torch side's first
round does; later torch rounds warm up once more in the same, already warm process.

Prints one Markdown section to stdout (progress goes to stderr). Without LOSSKIT_BIN the losskit columns say so.
"""

import math
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
REL_TOL = 1e-4

# Registry defaults (`losskit list`): focal γ = 2; GCE q = 0.7; sum-exponential's exp turns linear above 50 (never
# reached by standard-normal logits); LDR-KL λ = 10, c = 0.1, softplus-mean scores; Z-loss a = 0.1, b = 10.
FOCAL_GAMMA = 2.0
GCE_Q = 0.7
LDR_LAMBDA = 10.0
LDR_MARGIN = 0.1
Z_A = 0.1
Z_B = 10.0
Z_EPS = 1e-12


def cross_entropy(x, t):
    return F.cross_entropy(x, t)


def focal(x, t):
    # Lin et al. 2017, softmax form: −(1 − p_y)^γ · log p_y.
    logp = F.log_softmax(x, dim=1).gather(1, t[:, None]).squeeze(1)
    return (-((1.0 - logp.exp()) ** FOCAL_GAMMA) * logp).mean()


def gce(x, t):
    # Zhang & Sabuncu 2018: (1 − p_y^q)/q.
    p = F.softmax(x, dim=1).gather(1, t[:, None]).squeeze(1)
    return ((1.0 - p**GCE_Q) / GCE_Q).mean()


def mae(x, t):
    # Comp-sum Ψ = MAE (Mao, Mohri, Zhong 2023): 1 − p_y.
    p = F.softmax(x, dim=1).gather(1, t[:, None]).squeeze(1)
    return (1.0 - p).mean()


def sum_exponential(x, t):
    # Comp-sum Ψ = sum-exp: Σ_{j≠y} exp(z_j − z_y).
    d = x - x.gather(1, t[:, None])
    e = d.exp()
    return (e.sum(dim=1) - 1.0).mean()


def ldr_kl(x, t):
    # Zhu, Ying, Yang 2023, official LDRLoss_V1: s = K·softplus(z)/Σ softplus(z),
    # ℓ = λ·log((1/K)·Σ_k exp((c·1[k≠y] + s_k − s_y)/λ)).
    k = x.shape[1]
    s = F.softplus(x)
    s = k * s / s.sum(dim=1, keepdim=True).clamp_min(1e-12)
    margin = torch.full_like(s, LDR_MARGIN).scatter_(1, t[:, None], 0.0)
    a = margin + s - s.gather(1, t[:, None])
    return (LDR_LAMBDA * (torch.logsumexp(a / LDR_LAMBDA, dim=1) - math.log(k))).mean()


def z_loss(x, t):
    # de Brébisson & Vincent 2016: z = (o − mean(o))/std(o), ℓ = softplus(a·(b − z_y))/a.
    mu = x.mean(dim=1, keepdim=True)
    var = ((x - mu) ** 2).mean(dim=1, keepdim=True)
    zy = ((x - mu) / (var + Z_EPS).sqrt()).gather(1, t[:, None]).squeeze(1)
    return (F.softplus(Z_A * (Z_B - zy)) / Z_A).mean()


LOSSES = [
    ("cross-entropy", cross_entropy),
    ("focal", focal),
    ("generalized-cross-entropy", gce),
    ("mae", mae),
    ("sum-exponential", sum_exponential),
    ("ldr-kl", ldr_kl),
    ("z-loss", z_loss),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def threads():
    env = os.environ.get("LOSSKIT_THREADS")
    return int(env) if env else (os.cpu_count() or 1)


def copy_bandwidth(elems=64 << 20, reps=7):
    """Bytes read + written per second by np.copyto of `elems` float32 (default 256 MiB) into a reused buffer,
    best of `reps`."""
    src = np.ones(elems, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = math.inf
    for _ in range(reps):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * src.nbytes / best


def time_torch_runs(fn, logits, targets, repeat, warm_up=3):
    """All `repeat` forward + backward times in ms (after `warm_up` untimed runs) and the last loss value."""
    x = torch.from_numpy(logits)
    t = torch.from_numpy(targets)
    times = []
    value = None
    for i in range(repeat + warm_up):
        xg = x.detach().requires_grad_(True)
        start = time.perf_counter()
        loss = fn(xg, t)
        loss.backward()
        elapsed = (time.perf_counter() - start) * 1e3
        if i >= warm_up:
            times.append(elapsed)
        value = loss.item()
    return times, value


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def run_losskit(binary, name, path, out, repeat, n_threads):
    env = dict(os.environ, LOSSKIT_THREADS=str(n_threads), RAYON_NUM_THREADS=str(n_threads))
    cmd = [binary, "loss", name, "--input", path, "--output", out, "--repeat", str(repeat)]
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
    rounds = max(1, min(repeat, int(os.environ.get("LOSSKIT_ROUNDS", "4"))))
    per_round = max(1, repeat // rounds)
    torch.set_num_threads(n_threads)
    binary = os.environ.get("LOSSKIT_BIN")
    if binary and not os.path.exists(binary):
        log(f"LOSSKIT_BIN={binary} does not exist")
        binary = None
    only = os.environ.get("LOSSKIT_LOSSES")
    losses = [(n, f) for n, f in LOSSES if not only or n in only.split(",")]
    log("copy bandwidth ...")
    copy_bw = copy_bandwidth()
    rows = []
    same_size_bw = {}
    notes = []
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory() as tmp:
        for n, c in SHAPES:
            logits = rng.standard_normal((n, c), dtype=np.float32)
            targets = rng.integers(0, c, size=n, dtype=np.int64)
            path = os.path.join(tmp, f"x_{n}x{c}.npz")
            out = os.path.join(tmp, f"y_{n}x{c}.npz")
            np.savez(path, logits=logits, targets=targets)
            same_size_bw[(n, c)] = copy_bandwidth(n * c, 20)
            for name, fn in losses:
                log(f"{name} {n}x{c}: {rounds} interleaved rounds of {per_round} torch and {per_round} losskit runs ...")
                t_times, l_meds, l_mins = [], [], []
                t_value = l_value = None
                failed = not binary
                for r in range(rounds):
                    times, t_value = time_torch_runs(fn, logits, targets, per_round, warm_up=3 if r == 0 else 1)
                    t_times += times
                    if failed:
                        continue
                    try:
                        med, mn, l_value = run_losskit(binary, name, path, out, per_round, n_threads)
                        l_meds.append(med)
                        l_mins.append(mn)
                    except (RuntimeError, OSError, KeyError) as e:
                        notes.append(f"{name} {n}x{c}: losskit failed: {e}")
                        failed = True
                t_med, t_min = median(t_times), min(t_times)
                l_med = l_min = None
                if not failed and l_meds:
                    l_med, l_min = median(l_meds), min(l_mins)
                    rel = abs(l_value - t_value) / max(abs(t_value), 1e-30)
                    if not rel <= REL_TOL:
                        notes.append(
                            f"{name} {n}x{c}: losskit loss {l_value} differs from torch {t_value} (rel {rel:.1e})"
                        )
                rows.append((name, n, c, t_med, t_min, l_med, l_min))

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    print("### softmax-family classification losses, forward + backward: losskit vs PyTorch (CPU, f32)")
    print()
    print(
        f"{time.strftime('%Y-%m-%d')}, {cpu}, {n_threads} thread(s), torch {torch.__version__}, median of "
        f"{rounds * per_round} runs in {rounds} interleaved rounds (min in parentheses); losskit times "
        f"`ClassLoss::compute` (a fresh gradient per run, as torch's backward); mean reduction, hard targets, "
        f"standard-normal logits, registry defaults. "
        f"GB/s: losskit's 2·N·C·4 bytes (logits read once, gradient written once) per median time; copy: "
        f"np.copyto of 256 MiB, {copy_bw / 1e9:.1f} GB/s (read + write); same size: np.copyto of N·C float32 "
        f"into a reused buffer ("
        + ", ".join(f"{n}×{c}: {bw / 1e9:.1f} GB/s" for (n, c), bw in same_size_bw.items())
        + ")."
    )
    print()
    print(
        "| loss | shape (N×C) | torch ms | losskit ms | speed-up (torch / losskit) | losskit GB/s | of copy "
        "| of same-size copy |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, n, c, t_med, t_min, l_med, l_min in rows:
        if l_med is None:
            lk = ratio = gbs = frac = frac_same = "—"
        else:
            bw = 2 * n * c * 4 / (l_med * 1e-3)
            lk, ratio = f"{l_med:.2f} ({l_min:.2f})", f"{t_med / l_med:.2f}×"
            gbs, frac = f"{bw / 1e9:.1f}", f"{bw / copy_bw:.0%}"
            frac_same = f"{bw / same_size_bw[(n, c)]:.0%}"
        print(f"| {name} | {n}×{c} | {t_med:.2f} ({t_min:.2f}) | {lk} | {ratio} | {gbs} | {frac} | {frac_same} |")
    if not binary:
        notes.append("LOSSKIT_BIN not set: losskit was not run")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print()


if __name__ == "__main__":
    main()
