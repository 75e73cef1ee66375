"""Times PyTorch eager matmul + F.cross_entropy (forward, and forward + backward) on the shapes of linear_ce_bench.

Usage: python3 linear_ce_torch.py [--out FILE.md] [--reps N] [--shapes 2048x1024x32000,8192x4096x32000,8192x4096x131072]
                                  [--dtypes bf16]

Run by the GPU bundle's run.sh (`cargo xtask gpu-bundle`). H [N, d] uniform in [-1, 1), W [C, d] uniform in
[-3/sqrt(d), 3/sqrt(d)), i64 targets, mean reduction; the logits are materialised (N x C), which is what the fused
kernel avoids. "extra MiB" is torch.cuda.max_memory_allocated during forward + backward minus the memory held by H,
W, the targets and the gradients of H and W. linear_ce_bench --torch FILE.md reads this table (its "forward+backward
ms" column) to print its own time as a multiple of PyTorch's.
"""

import argparse
import statistics

import torch
import torch.nn.functional as F

DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def timed(fn, warmup, reps):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def bench(n, d, c, dtype, reps):
    gen = torch.Generator(device="cuda").manual_seed(0)
    dt = DTYPES[dtype]
    h = (torch.rand(n, d, device="cuda", generator=gen) * 2 - 1).to(dt).requires_grad_(True)
    s = 3.0 / d**0.5
    w = ((torch.rand(c, d, device="cuda", generator=gen) * 2 - 1) * s).to(dt).requires_grad_(True)
    y = torch.randint(0, c, (n,), device="cuda", generator=gen)

    def forward():
        with torch.no_grad():
            F.cross_entropy(h @ w.t(), y)

    def forward_backward():
        h.grad = None
        w.grad = None
        F.cross_entropy(h @ w.t(), y).backward()

    fwd = timed(forward, 1, reps)
    forward_backward()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    both = timed(forward_backward, 1, reps)
    extra = (torch.cuda.max_memory_allocated() - base) / 2**20
    gemm = 2.0 * n * c * d
    loss = F.cross_entropy((h @ w.t()).float(), y).item()
    del h, w, y
    torch.cuda.empty_cache()
    return (
        f"| {n}×{d}×{c} | {dtype} | {fwd:.1f} | {gemm / (fwd * 1e-3) / 1e12:.1f} | {both:.1f} | "
        f"{3 * gemm / (both * 1e-3) / 1e12:.1f} | {extra:.0f} | {loss:.4f} |"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--shapes", default="2048x1024x32000,8192x4096x32000,8192x4096x131072")
    ap.add_argument("--dtypes", default="bf16")
    a = ap.parse_args()
    name = torch.cuda.get_device_name(0)
    lines = [
        f"## PyTorch {torch.__version__} matmul + F.cross_entropy ({name})",
        "",
        f"Median of {a.reps} runs after one warm-up, CUDA events. TFLOP/s counts 2·N·C·d per GEMM (1 forward, 3 forward + backward: "
        "PyTorch does not recompute the logits). extra MiB: peak memory beyond inputs and gradients.",
        "",
        "| N×d×C | dtype | forward ms | TFLOP/s | forward+backward ms | TFLOP/s | extra MiB | loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for shape in a.shapes.split(","):
        n, d, c = (int(v) for v in shape.split("x"))
        for dtype in a.dtypes.split(","):
            line = bench(n, d, c, dtype, a.reps)
            print(line, flush=True)
            lines.append(line)
    table = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(table)
    print(table)


if __name__ == "__main__":
    main()
