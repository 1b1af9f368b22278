"""python -m training.budget SECONDS CONFIG.yaml [key=value ...]: train as many epochs as fit in SECONDS.

For a machine lent for a fixed time (a GPU session): a short probe of the same run measures the seconds a
training step and a validation take, then one cosine schedule, warm-up included, is sized to end inside
the budget, instead of a timeout cutting a longer schedule off at a high learning rate. The config's
``epochs`` is the most it may run. The probe trains 3 short epochs in ``OUT_DIR/probe`` (the first holds
the start-up: workers, cuDNN autotuning), and the plan is printed before the run starts. A run stopped
early resumes with ``python -m training.run OUT_DIR/config.yaml resume=true``: that file holds the sized
epochs. One process only (no torchrun).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pose.models import CheckpointError
from training.config import ConfigError, load_config
from training.trainer import Trainer, _steps_per_epoch

PROBE_EPOCHS = 3  # epoch 1: start-up; epoch 2: steps only; epoch 3: the same steps and a validation
RESERVE_S = 10.0  # the final model's save and card, and slack


@dataclass(frozen=True)
class Timing:
    """What the probe measured: seconds per training step, per validation and per epoch's saves (the
    state file, and ``best/`` at a validation that improves), and the steps of a whole epoch."""

    step_s: float
    val_s: float
    save_s: float
    steps_per_epoch: int

    def epoch_s(self, val_every: int) -> float:
        """Seconds an epoch takes at most on average, its share of the validations included."""
        return self.steps_per_epoch * self.step_s + self.save_s + self.val_s / val_every


def epochs_within(seconds: float, timing: Timing, val_every: int, most: int) -> int:
    """Whole epochs that fit in ``seconds``, after the validation of the last one and ``RESERVE_S``.

    Raises:
        ValueError: When not one epoch fits (the message gives both durations).
    """
    left = seconds - timing.val_s - RESERVE_S
    fit = math.floor(left / timing.epoch_s(val_every)) if left > 0 else 0
    if fit < 1:
        raise ValueError(
            f"no whole epoch fits: {max(left, 0.0):.0f} s left after the probe, and an epoch takes "
            f"{timing.epoch_s(val_every):.0f} s (a validation {timing.val_s:.0f} s)"
        )
    return min(fit, most)


def probe(config, steps: int) -> Timing:
    """Train ``config`` for ``PROBE_EPOCHS`` epochs of ``steps`` steps in ``out_dir/probe``; time them."""
    out = Path(config.out_dir) / "probe"
    short = dataclasses.replace(
        config,
        epochs=PROBE_EPOCHS,
        max_steps_per_epoch=steps,
        val_every=PROBE_EPOCHS,
        out_dir=str(out),
        resume=False,
        hub_repo="",
    )
    trainer = Trainer(short)
    batches = len(trainer.train_loader)
    trainer.fit()
    seconds = [json.loads(line)["seconds"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    step_s = seconds[1] / trainer.steps
    val_s = max(seconds[2] - seconds[1], 0.0)
    saving = time.monotonic()  # the saves between epochs, which the epochs' seconds leave out
    trainer._save_state(pending=None)
    trainer.eval_model.save_pretrained(out / "best")
    save_s = time.monotonic() - saving
    return Timing(step_s, val_s, save_s, _steps_per_epoch(batches, config))


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    parser = argparse.ArgumentParser(prog="python -m training.budget", description=__doc__.splitlines()[0])
    parser.add_argument("seconds", type=float, help="wall-clock budget for the probe and the run, s")
    parser.add_argument("config", help="YAML file of settings")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="settings that override the file")
    parser.add_argument("--probe-steps", type=int, default=20, help="steps in each probe epoch")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
        config.validate()
        if config.lr_schedule != "cosine":
            raise ConfigError("a time budget sizes a cosine schedule: set lr_schedule=cosine")
        if config.resume:
            raise ConfigError(
                f"resume=true: resume with python -m training.run {config.out_dir}/config.yaml resume=true"
            )
        timing = probe(config, args.probe_steps)
    except (ConfigError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    left = args.seconds - (time.monotonic() - started)
    try:
        epochs = epochs_within(left, timing, config.val_every, config.epochs)
    except ValueError as err:  # the budget, not the run: nothing else here raises it
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"budget: {timing.step_s * 1e3:.0f} ms a step, {timing.val_s:.1f} s a validation, "
        f"{timing.steps_per_epoch} steps an epoch -> {epochs} epochs in the {left:.0f} s left"
    )
    Trainer(dataclasses.replace(config, epochs=epochs)).fit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
