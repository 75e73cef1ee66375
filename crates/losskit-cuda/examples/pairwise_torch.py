"""Times pytorch-metric-learning's MultiSimilarityLoss, ContrastiveLoss and SupConLoss (forward + backward) on the GPU
at the shapes of pairwise_bench (B x D embeddings, 64 classes), for the GPU bundle's report.

    python3 pairwise_torch.py [--out FILE.md] [--batch 4096] [--dim 512] [--reps 10]

Embeddings live on the GPU already (PML's usual setting); pairwise_bench's times include host transfers.
Writes a markdown table; exits 0 with a note when pytorch-metric-learning is not installed.
"""

import argparse
import statistics
import sys
import time

import torch


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    try:
        from pytorch_metric_learning import losses
    except ImportError:
        md = "### pytorch-metric-learning: not installed on this machine (no peer timing)\n"
        print(md)
        if a.out:
            open(a.out, "w").write(md)
        return 0
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(7)
    x0 = (torch.rand(a.batch, a.dim, generator=g) * 2 - 1).to(dev)
    y = (torch.arange(a.batch) % 64).to(dev)
    rows = []
    for name, loss in [
        ("multi-similarity", losses.MultiSimilarityLoss()),
        ("contrastive", losses.ContrastiveLoss()),
        ("supcon", losses.SupConLoss()),
    ]:
        for dtype in (torch.float32, torch.bfloat16):
            x = x0.to(dtype).requires_grad_(True)
            try:
                loss(x, y).backward()  # warm-up
                torch.cuda.synchronize()
                times = []
                for _ in range(a.reps):
                    x.grad = None
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    loss(x, y).backward()
                    torch.cuda.synchronize()
                    times.append((time.perf_counter() - t0) * 1e3)
                ms = f"{statistics.median(times):.2f}"
            except Exception as e:  # noqa: BLE001 - report, do not fail the bundle
                ms = f"error: {type(e).__name__}"
            peak = torch.cuda.max_memory_allocated() / 2**20
            rows.append(f"| {name} | {str(dtype).split('.')[-1]} | {a.batch}x{a.dim} | {ms} | {peak:.0f} |")
            torch.cuda.reset_peak_memory_stats()
    md = f"### pytorch-metric-learning on {torch.cuda.get_device_name()}\n\n"
    md += "| loss | dtype | B x D | GPU ms (fwd+bwd, median) | peak MiB |\n|---|---|---|---|---|\n"
    md += "\n".join(rows) + "\n"
    print(md)
    if a.out:
        open(a.out, "w").write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
