"""Does the data loader keep up? The trainer's images/s against the model's own forward+backward.

    python -m benchmarks.train_throughput [--annotations A --images D] [--steps 20] [key=value ...]

Defaults to ../shared/data/lspet with the CPU-scale Lite0 config. Both numbers come from one run: first
the model alone on one fixed batch (the ceiling), then ``Trainer.train_epoch`` with its real loader.
Target (training issue): the trainer reaches at least 90% of the ceiling.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from training.config import load_config
from training.trainer import Trainer, step_loss

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lspet"


def model_only(trainer: Trainer, steps: int) -> float:
    """Images/s of forward + loss + backward + step on one batch held in memory."""
    batch = next(iter(trainer.train_loader))
    coord_loss, heatmap_epochs, _ = trainer.config.resolved()
    trainer.model.train()
    for i in range(steps + 2):
        if i == 2:  # two warm-up steps
            start = time.perf_counter()
        loss = step_loss(
            trainer.model(batch["image"]), batch, coord_loss, heatmap_epochs != 0, trainer.config
        )
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()
    return steps * len(batch["image"]) / (time.perf_counter() - start)


def with_loader(trainer: Trainer, steps: int) -> float:
    """Images/s of ``Trainer.train_epoch`` (loader, augmentation, targets, the same model step)."""
    trainer.steps = 2
    trainer.train_epoch()  # starts the workers and warms up
    trainer.steps = steps
    start = time.perf_counter()
    trainer.train_epoch()
    return steps * trainer.config.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", default=str(DEFAULT_DATA / "annotations.json"))
    parser.add_argument("--images", default=str(DEFAULT_DATA / "images"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config_file = Path(__file__).resolve().parents[1] / "training" / "configs" / "lspet_lite0_debiased.yaml"
    data = [f"train_annotations={args.annotations}", f"train_images={args.images}", "out_dir=runs/bench"]
    config = load_config(config_file, [*data, *args.overrides])
    trainer = Trainer(config)
    ceiling = model_only(trainer, args.steps)
    achieved = with_loader(trainer, args.steps)
    ratio = achieved / ceiling
    size = "x".join(map(str, config.input_size))
    workers = f"{config.num_workers} loader workers"
    print(f"{config.arch} {size}, batch {config.batch_size}, {workers}, {args.threads} threads")
    print(f"model forward+backward alone  {ceiling:6.1f} img/s")
    print(
        f"trainer with its data loader  {achieved:6.1f} img/s   {100 * ratio:5.1f}% of the model alone",
        end=" ",
    )
    print("(target >= 90%: met)" if ratio >= 0.9 else "(target >= 90%: missed)")


if __name__ == "__main__":
    main()
