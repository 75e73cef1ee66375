"""Times pytorch-metric-learning's MultiSimilarityLoss, ContrastiveLoss and SupConLoss (forward + backward) on the GPU
at the shapes of pairwise_bench (B x D embeddings, 64 classes), for the GPU bundle's report.

    python3 pairwise_torch.py [--out FILE.md] [--batch 4096,8192] [--dim 512] [--reps 10]

Embeddings and labels live on the GPU already, as in pairwise_bench's "GPU ms" column (Gpu::pair_loss_device).
Each run: loss(x, y).backward(), then torch.cuda.synchronize() before the clock is read; median of --reps runs after
two warm-up runs. Peak extra MiB: torch.cuda.max_memory_allocated() during the runs minus the memory allocated before
them (the inputs), i.e. what the loss itself needs at its peak.
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
    ap.add_argument("--batch", default="4096,8192")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--reps", type=int, default=10)
    a = ap.parse_args()
    try:
        import pytorch_metric_learning
        from pytorch_metric_learning import losses
    except ImportError:
        md = "### pytorch-metric-learning: not installed on this machine (no peer timing)\n"
        print(md)
        if a.out:
            open(a.out, "w").write(md)
        return 0
    dev = torch.device("cuda")
    # Plain FP32 GEMMs, as losskit's (no TF32).
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    for batch in [int(b) for b in a.batch.split(",")]:
        g = torch.Generator().manual_seed(7)
        x0 = (torch.rand(batch, a.dim, generator=g) * 2 - 1).to(dev)
        y = (torch.arange(batch) % 64).to(dev)
        for name, loss in [
            ("multi-similarity", losses.MultiSimilarityLoss()),
            ("contrastive", losses.ContrastiveLoss()),
            ("supcon", losses.SupConLoss()),
        ]:
            for dtype in (torch.float32, torch.bfloat16):
                x = x0.to(dtype).requires_grad_(True)
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                value = float("nan")
                try:
                    for _ in range(2):  # warm-up
                        x.grad = None
                        loss(x, y).backward()
                    torch.cuda.synchronize()
                    times = []
                    for _ in range(a.reps):
                        x.grad = None
                        torch.cuda.synchronize()
                        t0 = time.perf_counter()
                        out = loss(x, y)
                        out.backward()
                        torch.cuda.synchronize()
                        times.append((time.perf_counter() - t0) * 1e3)
                    value = out.item()
                    ms = f"{statistics.median(times):.2f}"
                except Exception as e:  # noqa: BLE001 - report, do not fail the bundle
                    ms = f"error: {type(e).__name__}"
                peak = (torch.cuda.max_memory_allocated() - base) / 2**20
                rows.append(
                    f"| {name} | {str(dtype).split('.')[-1]} | {batch}x{a.dim} | {ms} | {peak:.0f} | {value:.6f} |"
                )
                del x
                torch.cuda.empty_cache()
    md = f"### pytorch-metric-learning {pytorch_metric_learning.__version__} on {torch.cuda.get_device_name()}\n\n"
    md += "Forward + backward on device tensors, synchronised, median; TF32 off.\n\n"
    md += "| loss | dtype | B x D | GPU ms | peak extra MiB | value |\n|---|---|---|---|---|---|\n"
    md += "\n".join(rows) + "\n"
    print(md)
    if a.out:
        open(a.out, "w").write(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
