#!/usr/bin/env python3
"""SMOTE, edited nearest neighbours and Tomek links: imbalanced-learn against the `losskit` binary, same threads.

    LOSSKIT_BIN=target/release/losskit LOSSKIT_THREADS=2 /root/.cache/losskit/venv/bin/python benches/peers/samplers.py

Workloads (issue 5), seeded Gaussian blobs, X float64 [n, d], y int64 [n]:

* `smote` on 1,000,000 × 32 with a 10% minority (800,000 new points to balance), and on 100,000 × 32 with a 2%
  minority (96,000 new points);
* `edited-nearest-neighbours` and `tomek-links` on 200,000 × 16 (two overlapping classes, 30% / 70%).

Both sides do the same work in one child process each: read the input NPZ, resample, write an uncompressed NPZ
(`X`, `y` and, where the method keeps input rows, `sample_indices`). Two times come out of each run, giving two
tables compared like for like:

* **library only**: the resampling call alone, timed inside the process: imbalanced-learn's `fit_resample`
  (`time.perf_counter`), losskit's `fit_resample` as printed by `losskit resample --timing` (`resample=`);
* **end to end**: the wall clock of the whole child process (interpreter or binary start, imports, NPZ read,
  resampling, NPZ write), measured by the parent.

Peak RSS is that of each child process alone, read from `/usr/bin/time -f %M` when present, otherwise from a small
launcher process (`python -S`) that starts the child and reaps it with `os.wait4`. The child is never started
directly from this script: Linux carries the high-water RSS of the process that forks (or vforks) a child into the
child's `ru_maxrss` across `exec`, so a child of this script (which holds the generated data) would report at least
this script's own peak (about 490 MiB here, whatever the child did). The launcher and `time` are small, so the
figure is the child's own. imbalanced-learn's includes the Python interpreter, NumPy and scikit-learn.

Both sides get n threads, n = `LOSSKIT_THREADS` (default: the CPU count): `OMP_NUM_THREADS`, `OPENBLAS_NUM_THREADS`,
`MKL_NUM_THREADS` and `threadpoolctl.threadpool_limits(n)` (and `n_jobs=n`) for imbalanced-learn / scikit-learn,
`RAYON_NUM_THREADS` and `LOSSKIT_THREADS` for losskit. `LOSSKIT_PEERS_REPEAT` (default 1) runs each pair that many
times (the 100k SMOTE at least 7 times), alternating imbalanced-learn and losskit, and reports the medians. The class counts of both outputs are
compared (identical counts required for these methods).

`LOSSKIT_PEERS_SCALE` (default 1) divides every row count, for a quick smoke run of the script itself.
If the binary has no `resample` command yet, the table says so and only imbalanced-learn is timed.

Prints one Markdown section to stdout (progress goes to stderr).
"""

import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

SEED = 11
PY = sys.executable
TIME_BIN = "/usr/bin/time"

# (label, method, n, d, minority fraction, least number of runs): the 100k SMOTE takes milliseconds, where one run's
# page faults and scheduling move the figure by a quarter, so it always runs at least 7 times (about 10 s in all).
WORKLOADS = [
    ("smote 1,000,000×32, 10% minority", "smote", 1_000_000, 32, 0.10, 1),
    ("smote 100,000×32, 2% minority", "smote", 100_000, 32, 0.02, 7),
    ("edited-nearest-neighbours 200,000×16", "edited-nearest-neighbours", 200_000, 16, 0.30, 1),
    ("tomek-links 200,000×16", "tomek-links", 200_000, 16, 0.30, 1),
]

IMBLEARN_CHILD = r"""
import json, sys, time
import numpy as np
from threadpoolctl import threadpool_limits
method, path, out, n_threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
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
arrays = {"X": Xr, "y": yr}
if hasattr(s, "sample_indices_"):
    arrays["sample_indices"] = s.sample_indices_.astype(np.int64)
np.savez(out, **arrays)
print(json.dumps({"seconds": t}))
"""

# Starts argv[1:], reaps it with os.wait4 and prints its exit code and peak RSS (KiB) as JSON on the last line of
# stderr. Run with `python -S` so that this process itself stays small.
LAUNCHER = r"""
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(p.pid, 0)
sys.stderr.write("\n" + json.dumps({"rc": os.waitstatus_to_exitcode(status), "maxrss_kib": usage.ru_maxrss}) + "\n")
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
    """Runs cmd; returns (wall seconds, peak RSS in MiB of cmd's own process, stdout, stderr, return code)."""
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = os.path.join(tmp, "rss")
        use_time = os.access(TIME_BIN, os.X_OK)
        wrapped = [TIME_BIN, "-q", "-f", "%M", "-o", rss_file, *cmd] if use_time else [PY, "-S", "-c", LAUNCHER, *cmd]
        t0 = time.perf_counter()
        proc = subprocess.run(wrapped, capture_output=True, env=env, check=False)
        wall = time.perf_counter() - t0
        out, err = proc.stdout.decode(), proc.stderr.decode()
        rc, rss_kib = proc.returncode, None
        if use_time:
            try:
                with open(rss_file) as f:
                    nums = re.findall(r"^\d+$", f.read(), re.M)
                rss_kib = int(nums[-1]) if nums else None
            except OSError:
                pass
        else:
            lines = err.rstrip().splitlines()
            if lines:
                try:
                    res = json.loads(lines[-1])
                    rc, rss_kib = res["rc"], res["maxrss_kib"]
                    err = "\n".join(lines[:-1])
                except (ValueError, KeyError):
                    pass
        return wall, (None if rss_kib is None else rss_kib / 1024.0), out, err, rc


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
    return proc.returncode == 0 and "--timing" in proc.stdout


def counts_and_mib(path):
    with np.load(path) as z:
        y = z["y"]
        mib = sum(z[k].nbytes for k in z.files) / 2**20
        u, c = np.unique(y, return_counts=True)
    return {str(int(a)): int(b) for a, b in zip(u, c)}, mib


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main():
    n_threads = threads()
    scale = max(1, int(os.environ.get("LOSSKIT_PEERS_SCALE", "1")))
    repeat = max(1, int(os.environ.get("LOSSKIT_PEERS_REPEAT", "1")))
    binary = os.environ.get("LOSSKIT_BIN")
    notes = []
    if binary and not os.path.exists(binary):
        notes.append(f"LOSSKIT_BIN={binary} does not exist: losskit was not run")
        binary = None
    elif not binary:
        notes.append("LOSSKIT_BIN not set: losskit was not run")
    losskit_ok = has_resample(binary)
    if binary and not losskit_ok:
        notes.append(f"`{binary}` has no `resample --timing` yet: only imbalanced-learn was timed")
    env = thread_env(n_threads)
    rng = np.random.default_rng(SEED)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, method, n, d, minority, least in WORKLOADS:
            n //= scale
            reps = max(repeat, least)
            X, y = make_data(n, d, minority, rng)
            path = os.path.join(tmp, "in.npz")
            out = os.path.join(tmp, "out.npz")
            np.savez(path, X=X, y=y)
            in_mib = (X.nbytes + y.nbytes) / 2**20
            del X, y
            runs = {"i_lib": [], "i_e2e": [], "i_rss": [], "l_lib": [], "l_e2e": [], "l_rss": []}
            out_mib = None
            i_counts = l_counts = None
            for rep in range(reps):
                log(f"imbalanced-learn {label} ({rep + 1}/{reps}) ...")
                wall, rss, so, se, rc = run_child([PY, "-c", IMBLEARN_CHILD, method, path, out, str(n_threads)], env)
                if rc != 0:
                    notes.append(f"{label}: imbalanced-learn failed ({rc}): {se.strip()[-300:]}")
                else:
                    res = json.loads(so.strip().splitlines()[-1])
                    runs["i_lib"].append(res["seconds"])
                    runs["i_e2e"].append(wall)
                    runs["i_rss"].append(rss)
                    i_counts, out_mib = counts_and_mib(out)
                    os.remove(out)
                if losskit_ok:
                    log(f"losskit {label} ({rep + 1}/{reps}) ...")
                    cmd = [binary, "resample", method, "--input", path, "--output", out, "--seed", "0", "--quiet",
                           "--timing"]
                    wall, rss, so, se, rc = run_child(cmd, env)
                    m = re.search(r"timing: read=\S+ resample=(\S+)", se)
                    if rc != 0 or not m:
                        notes.append(f"{label}: losskit failed ({rc}): {se.strip()[-300:]}")
                    else:
                        runs["l_lib"].append(float(m.group(1)))
                        runs["l_e2e"].append(wall)
                        runs["l_rss"].append(rss)
                        l_counts, l_mib = counts_and_mib(out)
                        out_mib = out_mib or l_mib
                        os.remove(out)
            if i_counts is not None and l_counts is not None and l_counts != i_counts:
                notes.append(f"{label}: class counts differ: imbalanced-learn {i_counts}, losskit {l_counts}")
            rows.append((label, in_mib, out_mib, reps, {k: median(v) for k, v in runs.items()}))

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    import imblearn
    import sklearn

    fmt = lambda v, p=2: "—" if v is None else f"{v:.{p}f}"  # noqa: E731
    ratio = lambda a, b: f"{a / b:.2f}×" if a is not None and b else "—"  # noqa: E731
    rss_how = "`/usr/bin/time -f %M`" if os.access(TIME_BIN, os.X_OK) else "a `python -S` launcher's `os.wait4`"
    print("### samplers: losskit vs imbalanced-learn (CPU, f64)")
    print()
    print(f"{time.strftime('%Y-%m-%d')}, {cpu}, {n_threads} thread(s), imbalanced-learn {imblearn.__version__}, "
          f"scikit-learn {sklearn.__version__}; median of the runs given in each row, imbalanced-learn "
          f"and losskit alternating. Each side is one process that reads the input NPZ, resamples and writes an uncompressed "
          f"NPZ.{' Row counts divided by ' + str(scale) + '.' if scale > 1 else ''}")
    print()
    print("Library only (`fit_resample` alone, timed inside each process):")
    print()
    print("| workload | runs | imblearn s | losskit s | speed-up (imblearn / losskit) |")
    print("|---|---|---|---|---|")
    for label, _, _, reps, r in rows:
        print(f"| {label} | {reps} | {fmt(r['i_lib'], 4)} | {fmt(r['l_lib'], 4)} | {ratio(r['i_lib'], r['l_lib'])} |")
    print()
    print(f"End to end (wall clock of the whole process: start, imports, NPZ read, resampling, NPZ write); peak RSS "
          f"of each process alone by {rss_how} (imbalanced-learn's includes the interpreter and its libraries):")
    print()
    print("| workload | imblearn s | losskit s | speed-up | imblearn peak RSS MiB | losskit peak RSS MiB "
          "| input + output MiB | losskit RSS / (input + output) |")
    print("|---|---|---|---|---|---|---|---|")
    for label, in_mib, out_mib, _, r in rows:
        io = f"{in_mib:.0f}" + (f" + {out_mib:.0f}" if out_mib is not None else "")
        rel = f"{r['l_rss'] / (in_mib + out_mib):.2f}" if r["l_rss"] is not None and out_mib is not None else "—"
        print(f"| {label} | {fmt(r['i_e2e'])} | {fmt(r['l_e2e'])} | {ratio(r['i_e2e'], r['l_e2e'])} "
              f"| {fmt(r['i_rss'], 0)} | {fmt(r['l_rss'], 0)} | {io} | {rel} |")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")
    print()


if __name__ == "__main__":
    main()
