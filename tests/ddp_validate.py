"""Run by tests/test_training.py under torchrun: validate one fixed model on every rank, then train briefly.

Prints (rank 0) one JSON line: the validation metrics of the untrained model, the world size, and
whether the short training run finished.
"""

import json
import sys

import torch

from training.config import load_config
from training.trainer import Trainer


def main() -> None:
    config = load_config(None, sys.argv[1:])
    torch.manual_seed(0)  # every rank builds the same initial weights
    trainer = Trainer(config)
    metrics = trainer.validate()
    trainer.fit()
    if trainer.rank == 0:
        print(json.dumps({**metrics, "world": trainer.world, "trained": True}))


if __name__ == "__main__":
    main()
