"""Speed of pose.decode.debiased against a naive soft-argmax and a bare torch.exp pass (CPU).

    python -m benchmarks.decode [--threads 2] [--repeats 50]

B=64, K=17, 64x48 float32 logits: Gaussian bumps (sigma 2) plus small noise, as a trained model emits.
All times are medians measured in this one run, so the printed ratios compare like with like.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from pose.decode import debiased, integral
from pose.targets import gaussian_heatmaps

BATCH, JOINTS, HEIGHT, WIDTH, BETA = 64, 17, 64, 48, 10.0


def realistic_logits(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(BATCH, JOINTS, 2, generator=gen) * torch.tensor([WIDTH - 1.0, HEIGHT - 1.0])
    noise = 0.02 * torch.randn(BATCH, JOINTS, HEIGHT, WIDTH, generator=gen)
    return gaussian_heatmaps(centres, (HEIGHT, WIDTH), 2.0) + noise


def naive_soft_argmax(logits: torch.Tensor, beta: float) -> torch.Tensor:
    """What most public code does: softmax, then multiply by full coordinate grids and sum."""
    b, k, h, w = logits.shape
    p = torch.softmax(beta * logits.reshape(b, k, h * w), dim=-1).reshape(b, k, h, w)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=p.dtype), torch.arange(w, dtype=p.dtype), indexing="ij")
    return torch.stack([(p * xs).sum(dim=(-2, -1)), (p * ys).sum(dim=(-2, -1))], dim=-1)


def median_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each function in ms (timeit's advice: the rest is noise), interleaved."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeats + 3):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_ >= 3:  # the first rounds warm up allocators and caches
                times[name].append(time.perf_counter() - start)
    return {name: 1e3 * min(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logits = realistic_logits()
    with torch.no_grad():
        t = median_ms(
            {
                "exp": lambda: torch.exp(logits),
                "debiased": lambda: debiased(logits, BETA),
                "integral": lambda: integral(logits, BETA),
                "naive": lambda: naive_soft_argmax(logits, BETA),
            },
            args.repeats,
        )
    t_exp, t_debiased, t_integral, t_naive = t["exp"], t["debiased"], t["integral"], t["naive"]
    print(f"logits {tuple(logits.shape)} float32, beta {BETA}, {torch.get_num_threads()} CPU threads")
    exp_ratio, naive_ratio = t_debiased / t_exp, t_naive / t_debiased
    print(f"torch.exp pass          {t_exp:7.2f} ms")
    print(
        f"debiased (J_r and J_o)  {t_debiased:7.2f} ms   {exp_ratio:4.2f}x the exp pass",
        verdict(exp_ratio <= 4),
    )
    print(f"integral (J_r)          {t_integral:7.2f} ms   {t_integral / t_exp:4.2f}x the exp pass")
    print(
        f"naive soft-argmax       {t_naive:7.2f} ms   {naive_ratio:4.2f}x debiased's time",
        verdict(naive_ratio >= 3),
    )


def verdict(ok: bool) -> str:
    """Targets of the foundation issue: debiased <= 4x the exp pass, naive >= 3x slower than debiased."""
    return "(target met)" if ok else "(target missed)"


if __name__ == "__main__":
    main()
