"""Times PyTorch's F.cross_entropy (forward, and forward + backward) on the shapes of ce_bench, for comparison.

Usage: python3 ce_torch.py [--out FILE.md] [--reps N] [--shapes 4096x1000,1024x32000,8192x131072] [--dtypes f32,bf16]

Run by the GPU bundle's run.sh (`cargo xtask gpu-bundle`). Same inputs as ce_bench: logits uniform in [-4, 4),
i64 targets, mean reduction; same bandwidth formula (logits read once, gradient written once, targets and per-row
values), so the GB/s columns of the two tables compare directly.
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
    return statistics.median(times), min(times)


def bench(n, c, dtype, reps):
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = (torch.rand(n, c, device="cuda", generator=gen) * 8 - 4).to(DTYPES[dtype]).requires_grad_(True)
    y = torch.randint(0, c, (n,), device="cuda", generator=gen)

    def forward():
        with torch.no_grad():
            F.cross_entropy(x, y)

    def forward_backward():
        x.grad = None
        F.cross_entropy(x, y).backward()

    fwd = timed(forward, 3, reps)
    both = timed(forward_backward, 3, reps)
    elem = x.element_size()
    per_row = 8 + 4
    gbs = lambda nbytes, ms: nbytes / (ms * 1e-3) / 1e9
    loss = F.cross_entropy(x.detach().float(), y).item()
    del x, y
    torch.cuda.empty_cache()
    return (
        f"| {n}×{c} | {dtype} | {fwd[0]:.3f} ({fwd[1]:.3f}) | {gbs(n * c * elem + n * per_row, fwd[0]):.0f} | "
        f"{both[0]:.3f} ({both[1]:.3f}) | {gbs(2 * n * c * elem + n * per_row, both[0]):.0f} | {loss:.4f} |"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--shapes", default="4096x1000,1024x32000,8192x131072")
    ap.add_argument("--dtypes", default="f32,bf16")
    a = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in a.shapes.split(",")]
    name = torch.cuda.get_device_name(0)
    lines = [
        f"## PyTorch {torch.__version__} F.cross_entropy ({name})",
        "",
        f"Median (minimum) of {a.reps} calls, CUDA events; forward under no_grad, forward+backward from a fresh "
        "graph each call. GB/s as in the losskit table.",
        "",
        "| N×C | dtype | forward ms | GB/s | forward+backward ms | GB/s | loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, c in shapes:
        for dtype in a.dtypes.split(","):
            row = bench(n, c, dtype, a.reps)
            print(row, flush=True)
            lines.append(row)
    table = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(table)
    print(table)


if __name__ == "__main__":
    main()
