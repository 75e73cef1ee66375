#!/usr/bin/env python3
"""Metrics: scikit-learn and pytorch-metric-learning against losskit, on the same inputs and thread count.

    LOSSKIT_BIN=target/release/losskit LOSSKIT_THREADS=2 /root/.cache/losskit/venv/bin/python benches/peers/metrics.py

Workloads (the sizes of the performance targets in the roadmap):

* binary ROC-AUC and average precision on 1e6 and 1e7 samples (balanced labels, scores = 0.3·label + uniform,
  rounded to 1e-6 so that there are ties) against `sklearn.metrics.roc_auc_score` / `average_precision_score`;
* macro-F1 over 1e6 samples and 10 classes (60 % correct predictions) against `f1_score(average="macro")`;
* MAP@R on 20,000 embeddings of D = 128 (100 classes of 200: class centres plus uniform noise) searched against
  themselves with k = max_bin_count, against pytorch-metric-learning's `AccuracyCalculator` (faiss `IndexFlatL2` when
  faiss is installed, else PML's torch `CustomKNN(LpDistance)`; the table says which).

losskit is timed two ways, in separate columns:

* **CLI**: wall time of `$LOSSKIT_BIN metrics --input X.npz --json` on the very inputs the peer gets. This includes
  process start, reading the .npz and the *whole* report (for binary inputs also the confusion-matrix and calibration
  keys; for multiclass every averaged precision/recall/F1, MCC, kappa, ...), so it is an upper bound on the metric.
  The values it prints are checked against the peer's.
* **library**: the timing programs in `crates/losskit-metrics/examples/` (built here with `cargo build --release`),
  which call the library directly and print `median`/`min` times; they generate their own inputs of the same sizes and
  distributions with a seeded SplitMix64 (not the bytes the peer sees), and time exactly the metric (state update +
  computation). When they cannot be built the column says so.

Both sides use n threads (`LOSSKIT_THREADS`, else the CPU count): rayon's pool, `torch.set_num_threads(n)`,
`faiss.omp_set_num_threads(n)`; scikit-learn's metrics are single-threaded. Peers are timed as the median of a few
runs after one warm-up (`LOSSKIT_REPEAT`, default 3). Prints one Markdown section to stdout (progress on stderr).
"""

import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

SEED = 13
RANKING_SIZES = [1_000_000, 10_000_000]
F1_SIZE, F1_CLASSES = 1_000_000, 10
RET_N, RET_D, RET_CLASSES = 20_000, 128, 100
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def threads():
    env = os.environ.get("LOSSKIT_THREADS")
    return int(env) if env else (os.cpu_count() or 1)


def timed(fn, repeat):
    """Median and minimum ms of `repeat` runs after one warm-up, and the last value."""
    value = fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - start) * 1e3)
    times.sort()
    return times[len(times) // 2], times[0], value


def run_cli(binary, path, n_threads, repeat):
    """Wall ms (median, min) of `losskit metrics --input path --json` and its JSON object."""
    env = dict(os.environ, LOSSKIT_THREADS=str(n_threads), RAYON_NUM_THREADS=str(n_threads))
    cmd = [binary, "metrics", "--input", path, "--json"]
    times = []
    out = None
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        times.append((time.perf_counter() - start) * 1e3)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
        out = json.loads(proc.stdout)
    times.sort()
    return times[len(times) // 2], times[0], out


def build_examples():
    """Paths of the release timing examples, building them when needed; None when cargo fails."""
    exe = os.path.join(ROOT, "target", "release", "examples")
    names = ["ranking_timing", "macro_f1_timing", "retrieval_timing"]
    log("cargo build --release -p losskit-metrics --examples ...")
    proc = subprocess.run(["cargo", "build", "--release", "-q", "-p", "losskit-metrics", "--examples"],
                          cwd=ROOT, capture_output=True, text=True, check=False)
    paths = {n: os.path.join(exe, n) for n in names}
    if proc.returncode != 0 or not all(os.path.exists(p) for p in paths.values()):
        log(f"building the examples failed: {proc.stderr.strip()[-500:]}")
        return None
    return paths


def run_example(path, args, n_threads):
    env = dict(os.environ, RAYON_NUM_THREADS=str(n_threads))
    proc = subprocess.run([path, *map(str, args)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{path} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def example_times(text, prefix):
    """(median, min) ms from a timing example's line starting with `prefix`."""
    for line in text.splitlines():
        if line.startswith(prefix):
            m = re.search(r"median[ _=]*(?:ms=)?\s*([0-9.]+)(?: ms)?,?\s+min[ _=]*(?:ms=)?\s*([0-9.]+)", line)
            if m:
                return float(m.group(1)), float(m.group(2))
    raise RuntimeError(f"no `{prefix} ... median ... min ...` line in: {text.strip()[:300]!r}")


def fmt(med, mn):
    return "—" if med is None else f"{med:,.1f} ({mn:,.1f})"


def ratio(peer, ours):
    return "—" if ours is None else f"{peer / ours:.1f}×"


def main():
    n_threads = threads()
    repeat = int(os.environ.get("LOSSKIT_REPEAT", "3"))
    binary = os.environ.get("LOSSKIT_BIN")
    if binary and not os.path.exists(binary):
        log(f"LOSSKIT_BIN={binary} does not exist")
        binary = None
    rng = np.random.default_rng(SEED)
    rows = []  # (workload, peer name, peer med, peer min, cli med, cli min, lib med, lib min)
    notes = []
    examples = build_examples()
    if examples is None:
        notes.append("the timing examples could not be built: no library column")

    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    with tempfile.TemporaryDirectory() as tmp:
        # Binary ranking.
        for n in RANKING_SIZES:
            y = rng.integers(0, 2, size=n, dtype=np.int64)
            s = np.round((0.3 * y + rng.random(n)) * 1e6) / 1e6
            path = os.path.join(tmp, f"binary_{n}.npz")
            np.savez(path, y_true=y, y_score=s)
            reps = repeat if n <= 1_000_000 else max(1, repeat - 1)
            log(f"scikit-learn ranking N={n} ...")
            peers = {
                "roc_auc": timed(lambda: roc_auc_score(y, s), reps),
                "average_precision": timed(lambda: average_precision_score(y, s), reps),
            }
            cli = (None, None, {})
            if binary:
                log(f"losskit metrics N={n} ...")
                try:
                    cli = run_cli(binary, path, n_threads, reps)
                except (RuntimeError, OSError, ValueError) as e:
                    notes.append(f"binary N={n}: losskit CLI failed: {e}")
            lib = {}
            if examples:
                try:
                    text = run_example(examples["ranking_timing"], [n, max(3, reps)], n_threads)
                    lib = {m: example_times(text, m) for m in peers}
                except RuntimeError as e:
                    notes.append(f"ranking_timing N={n}: {e}")
            for metric, (p_med, p_min, p_val) in peers.items():
                got = cli[2].get(metric)
                if got is not None and abs(got - p_val) > 1e-9:
                    notes.append(f"{metric} N={n}: losskit {got} differs from scikit-learn {p_val}")
                l_med, l_min = lib.get(metric, (None, None))
                rows.append((f"{metric}, N={n:.0e}", "scikit-learn", p_med, p_min, cli[0], cli[1], l_med, l_min))
            del y, s

        # Macro-F1.
        n, c = F1_SIZE, F1_CLASSES
        y_true = rng.integers(0, c, size=n, dtype=np.int64)
        y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, c, size=n, dtype=np.int64))
        path = os.path.join(tmp, "multiclass.npz")
        np.savez(path, y_true=y_true, y_pred=y_pred)
        log("scikit-learn macro-F1 ...")
        p_med, p_min, p_val = timed(lambda: f1_score(y_true, y_pred, average="macro"), max(repeat, 5))
        cli = (None, None, {})
        if binary:
            try:
                cli = run_cli(binary, path, n_threads, repeat)
            except (RuntimeError, OSError, ValueError) as e:
                notes.append(f"macro-F1: losskit CLI failed: {e}")
        got = cli[2].get("f1_macro")
        if got is not None and abs(got - p_val) > 1e-12:
            notes.append(f"macro-F1: losskit {got} differs from scikit-learn {p_val}")
        l_med = l_min = None
        if examples:
            try:
                text = run_example(examples["macro_f1_timing"], [n, c, 21], n_threads)
                l_med, l_min = example_times(text, "macro-F1")
            except RuntimeError as e:
                notes.append(f"macro_f1_timing: {e}")
        rows.append((f"macro-F1, N={n:.0e}, C={c}", "scikit-learn", p_med, p_min, cli[0], cli[1], l_med, l_min))

        # MAP@R.
        n, d, c = RET_N, RET_D, RET_CLASSES
        centres = rng.random((c, d)) * 2.0 - 1.0
        labels = np.arange(n, dtype=np.int64) % c
        x = centres[labels] + 1.5 * (rng.random((n, d)) - 0.5)
        path = os.path.join(tmp, "embeddings.npz")
        np.savez(path, embeddings=x, labels=labels)
        peer_name, p_med, p_min, p_val = "pytorch-metric-learning", None, None, None
        try:
            import torch
            from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator

            torch.set_num_threads(n_threads)
            try:
                import faiss

                faiss.omp_set_num_threads(n_threads)
                knn_func, how = None, f"faiss {faiss.__version__} IndexFlatL2"
            except ImportError:
                from pytorch_metric_learning.distances import LpDistance
                from pytorch_metric_learning.utils.inference import CustomKNN

                knn_func, how = CustomKNN(LpDistance(normalize_embeddings=False)), "torch CustomKNN(LpDistance)"
            import pytorch_metric_learning

            peer_name = f"PML {pytorch_metric_learning.__version__} ({how}, float32)"
            calc = AccuracyCalculator(include=("mean_average_precision_at_r", "precision_at_1", "r_precision"),
                                      k="max_bin_count", knn_func=knn_func)
            xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(labels)
            log(f"{peer_name} MAP@R ...")
            p_med, p_min, res = timed(lambda: calc.get_accuracy(xt, yt), repeat)
            p_val = float(res["mean_average_precision_at_r"])
        except ImportError as e:
            notes.append(f"MAP@R: pytorch-metric-learning is not installed ({e}); no peer timing")
        cli = (None, None, {})
        if binary:
            log("losskit metrics MAP@R ...")
            try:
                cli = run_cli(binary, path, n_threads, repeat)
            except (RuntimeError, OSError, ValueError) as e:
                notes.append(f"MAP@R: losskit CLI failed: {e}")
        got = cli[2].get("map_at_r")
        if got is not None and p_val is not None:
            notes.append(f"MAP@R values: losskit (float64, exact kNN) {got:.9f}, PML {p_val:.9f}")
        l_med = l_min = None
        if examples:
            try:
                text = run_example(examples["retrieval_timing"], [n, d, c, repeat], n_threads)
                l_med, l_min = example_times(text, "retrieval")
            except RuntimeError as e:
                notes.append(f"retrieval_timing: {e}")
        rows.append((f"MAP@R, {n}×{d}, k=max_bin_count", peer_name, p_med, p_min, cli[0], cli[1], l_med, l_min))

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import sklearn

    print("### Metrics: losskit vs scikit-learn and pytorch-metric-learning (CPU)")
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {cpu}, {n_threads} thread(s), scikit-learn {sklearn.__version__}. Times in ms, "
          "median (min). *CLI* = wall time of `losskit metrics --input X.npz --json` on the peer's inputs (process "
          "start, .npz reading and the whole report included); *library* = the `losskit-metrics` timing examples "
          "(the metric alone, same sizes, own seeded inputs). Speed-ups are peer / losskit.")
    print()
    print("| workload | peer | peer ms | losskit CLI ms | losskit library ms | speed-up (CLI) | speed-up (library) |")
    print("|---|---|---|---|---|---|---|")
    for work, peer, p_med, p_min, c_med, c_min, l_med, l_min in rows:
        sp_c = "—" if p_med is None else ratio(p_med, c_med)
        sp_l = "—" if p_med is None else ratio(p_med, l_med)
        print(f"| {work} | {peer} | {fmt(p_med, p_min)} | {fmt(c_med, c_min)} | {fmt(l_med, l_min)} | {sp_c} | {sp_l} |")
    if not binary:
        notes.append("LOSSKIT_BIN not set: the losskit CLI was not run")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print()


if __name__ == "__main__":
    main()
