"""COCO-format top-down pose data (any keypoint schema): dataset, augmentation and loader.

See :class:`TopDownDataset` for what an item holds and how bad annotations are handled.
"""

from pose.data.coco import Instance
from pose.data.dataset import (
    CropSpec,
    Selection,
    TopDownDataset,
    TrainSpec,
    make_loader,
    seed_worker,
    set_loader_epoch,
)
from pose.data.transforms import NO_AUGMENT, AugmentConfig, body_halves

__all__ = [
    "NO_AUGMENT",
    "AugmentConfig",
    "CropSpec",
    "Instance",
    "Selection",
    "TopDownDataset",
    "TrainSpec",
    "body_halves",
    "make_loader",
    "seed_worker",
    "set_loader_epoch",
]
