#!/usr/bin/env python3
"""SMOTE, edited nearest neighbours and Tomek links: imbalanced-learn against the `losskit` binary, same threads.

    LOSSKIT_BIN=target/release/losskit LOSSKIT_THREADS=2 /root/.cache/losskit/venv/bin/python benches/peers/samplers.py

Workloads (issue 5), seeded Gaussian blobs, X float64 [n, d], y int64 [n]:

* `smote` on 1,000,000 × 32 with a 10% minority (800,000 new points to balance), and on 100,000 × 32 with a 2%
  minority (96,000 new points);
* `edited-nearest-neighbours` and `tomek-links` on 200,000 × 16 (two overlapping classes, 30% / 70%).

Each run is its own child process, reaped with `os.wait4`, so its peak resident memory (`ru_maxrss` of that child
alone) is reported beside its time:

* imbalanced-learn: a child Python loads the NPZ, then times `fit_resample` only (`time.perf_counter`); its peak RSS
  includes the interpreter, NumPy / scikit-learn and the input arrays.
* losskit: `$LOSSKIT_BIN resample METHOD --input X.npz --output Y.npz --seed 0`, timed as wall clock around the whole
  process, so **its time includes reading and writing the NPZ files** (imbalanced-learn's does not).

Both sides get n threads, n = `LOSSKIT_THREADS` (default: the CPU count): `OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS`,
`MKL_NUM_THREADS` and `threadpoolctl.threadpool_limits(n)` for imbalanced-learn / scikit-learn, `RAYON_NUM_THREADS`
and `LOSSKIT_THREADS` for losskit. Each run is timed once (these are long runs; the whole script stays within about
five minutes on two cores). The class counts of both outputs are compared (SMOTE: identical counts required).

`LOSSKIT_PEERS_SCALE` (default 1) divides every row count, for a quick smoke run of the script itself.
If the binary has no `resample` command yet, the table says so and only imbalanced-learn is timed.

Prints one Markdown section to stdout (progress goes to stderr).
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

SEED = 11
PY = sys.executable

# (label, method, n, d, minority fraction)
WORKLOADS = [
    ("smote 1,000,000×32, 10% minority", "smote", 1_000_000, 32, 0.10),
    ("smote 100,000×32, 2% minority", "smote", 100_000, 32, 0.02),
    ("edited-nearest-neighbours 200,000×16", "edited-nearest-neighbours", 200_000, 16, 0.30),
    ("tomek-links 200,000×16", "tomek-links", 200_000, 16, 0.30),
]

IMBLEARN_CHILD = r"""
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
method, path, n_threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
with np.load(path) as z:
    X, y = z["X"], z["y"]
if method == "smote":
    # SMOTE takes its neighbour search as an estimator: give it n_jobs too (k_neighbors = 5, + the point itself).
    from imblearn.over_sampling import SMOTE
    from sklearn.neighbors import NearestNeighbors
    s = SMOTE(random_state=0, k_neighbors=NearestNeighbors(n_neighbors=6, n_jobs=n_threads))
elif method == "edited-nearest-neighbours":
    from imblearn.under_sampling import EditedNearestNeighbours
    s = EditedNearestNeighbours(n_jobs=n_threads)
elif method == "tomek-links":
    from imblearn.under_sampling import TomekLinks
    s = TomekLinks(n_jobs=n_threads)
else:
    raise SystemExit("unknown method " + method)
with threadpool_limits(n_threads):
    t0 = time.perf_counter()
    Xr, yr = s.fit_resample(X, y)
    t = time.perf_counter() - t0
u, c = np.unique(yr, return_counts=True)
print(json.dumps({"seconds": t, "counts": {str(int(a)): int(b) for a, b in zip(u, c)}, "rows": int(len(yr))}))
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def threads():
    env = os.environ.get("LOSSKIT_THREADS")
    return int(env) if env else (os.cpu_count() or 1)


def thread_env(n):
    return dict(os.environ, OMP_NUM_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n),
                RAYON_NUM_THREADS=str(n), LOSSKIT_THREADS=str(n))


def run_child(cmd, env):
    """Runs cmd; returns (wall seconds, peak RSS in MiB of that child, stdout, stderr, return code)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        # ru_maxrss is in KiB on Linux
        return wall, usage.ru_maxrss / 1024.0, out.read().decode(), err.read().decode(), proc.returncode


def make_data(n, d, minority, rng):
    n_min = int(round(n * minority))
    y = np.zeros(n, dtype=np.int64)
    y[:n_min] = 1
    rng.shuffle(y)
    X = rng.standard_normal((n, d))
    X[y == 1] += 0.75  # overlapping blobs: the cleaners find real work
    return X, y


def has_resample(binary):
    if not binary:
        return False
    proc = subprocess.run([binary, "resample", "--help"], capture_output=True, text=True, check=False)
    return proc.returncode == 0


def main():
    n_threads = threads()
    scale = max(1, int(os.environ.get("LOSSKIT_PEERS_SCALE", "1")))
    binary = os.environ.get("LOSSKIT_BIN")
    notes = []
    if binary and not os.path.exists(binary):
        notes.append(f"LOSSKIT_BIN={binary} does not exist: losskit was not run")
        binary = None
    elif not binary:
        notes.append("LOSSKIT_BIN not set: losskit was not run")
    losskit_ok = has_resample(binary)
    if binary and not losskit_ok:
        notes.append(f"`{binary}` has no `resample` command yet: only imbalanced-learn was timed")
    env = thread_env(n_threads)
    rng = np.random.default_rng(SEED)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, method, n, d, minority in WORKLOADS:
            n //= scale
            X, y = make_data(n, d, minority, rng)
            path = os.path.join(tmp, "in.npz")
            out = os.path.join(tmp, "out.npz")
            np.savez(path, X=X, y=y)
            in_mib = (X.nbytes + y.nbytes) / 2**20
            del X, y
            log(f"imbalanced-learn {label} ...")
            wall, rss, so, se, rc = run_child([PY, "-c", IMBLEARN_CHILD, method, path, str(n_threads)], env)
            if rc != 0:
                notes.append(f"{label}: imbalanced-learn failed ({rc}): {se.strip()[-300:]}")
                i_sec, i_rss, i_counts = None, None, None
            else:
                res = json.loads(so.strip().splitlines()[-1])
                i_sec, i_rss, i_counts = res["seconds"], rss, res["counts"]
            l_sec = l_rss = None
            out_mib = None
            if losskit_ok:
                log(f"losskit {label} ...")
                cmd = [binary, "resample", method, "--input", path, "--output", out, "--seed", "0"]
                wall, rss, so, se, rc = run_child(cmd, env)
                if rc != 0:
                    notes.append(f"{label}: losskit failed ({rc}): {se.strip()[-300:]}")
                else:
                    l_sec, l_rss = wall, rss
                    with np.load(out) as z:
                        yr = z["y"]
                        out_mib = (z["X"].nbytes + yr.nbytes) / 2**20
                        u, c = np.unique(yr, return_counts=True)
                    l_counts = {str(int(a)): int(b) for a, b in zip(u, c)}
                    if i_counts is not None and l_counts != i_counts:
                        notes.append(f"{label}: class counts differ: imbalanced-learn {i_counts}, losskit {l_counts}")
                    if os.path.exists(out):
                        os.remove(out)
            rows.append((label, n, in_mib, out_mib, i_sec, i_rss, l_sec, l_rss))

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import imblearn
    import sklearn

    print("### samplers: losskit vs imbalanced-learn (CPU, f64)")
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {cpu}, {n_threads} thread(s), imbalanced-learn {imblearn.__version__}, "
          f"scikit-learn {sklearn.__version__}; one run each. imbalanced-learn s = `fit_resample` alone; "
          f"losskit s = wall clock of `losskit resample` **including reading and writing the NPZ files**. "
          f"Peak RSS is each child process's own `ru_maxrss` (imbalanced-learn's includes the Python interpreter "
          f"and its libraries).{' Row counts divided by ' + str(scale) + '.' if scale > 1 else ''}")
    print()
    print("| workload | imblearn s | losskit s (wall, with file I/O) | speed-up (imblearn / losskit) "
          "| imblearn peak RSS MiB | losskit peak RSS MiB | input + output MiB |")
    print("|---|---|---|---|---|---|---|")
    for label, n, in_mib, out_mib, i_sec, i_rss, l_sec, l_rss in rows:
        fmt = lambda v, p=2: "—" if v is None else f"{v:.{p}f}"  # noqa: E731
        ratio = f"{i_sec / l_sec:.2f}×" if i_sec is not None and l_sec else "—"
        io = f"{in_mib:.0f}" + (f" + {out_mib:.0f}" if out_mib is not None else "")
        print(f"| {label} | {fmt(i_sec)} | {fmt(l_sec)} | {ratio} | {fmt(i_rss, 0)} | {fmt(l_rss, 0)} | {io} |")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print()


if __name__ == "__main__":
    main()
