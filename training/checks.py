"""Checks of a run's data before any work: the training file's schema, the image folders, enough crops.

Each problem is one ``ConfigError`` naming the key and the fix, raised before a model is built or a
step is taken (``Trainer.__init__`` calls these after ``TrainConfig.validate``).
"""

from __future__ import annotations

import json
from pathlib import Path

from pose.data import TopDownDataset
from pose.data.coco import MISSING_IMAGE, NAN_JOINT, OUTSIDE_JOINT
from pose.keypoints import KeypointSchema, schema_from_coco_file
from training.config import ConfigError, TrainConfig


def training_schema(config: TrainConfig) -> KeypointSchema:
    """The keypoint schema of the training file; an unreadable file is a ConfigError naming the key."""
    try:
        return schema_from_coco_file(config.train_annotations)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # bad JSON: ValueError
        raise ConfigError(
            f"train_annotations: cannot read a COCO keypoint category from {config.train_annotations!r} "
            f"({err}); give a COCO keypoint JSON"
        ) from None


def check_image_folders(config: TrainConfig) -> None:
    """Each image folder holds some of its annotation file's images (checked on the first 50 names), so
    a wrong folder is one clear error instead of a data set emptied by "missing image file" skips."""
    pairs = [("train_images", config.train_annotations, config.train_images)]
    if config.val_annotations:
        pairs.append(("val_images", config.val_annotations, config.val_images or config.train_images))
    for key, ann_file, folder in pairs:
        with open(ann_file, encoding="utf-8") as f:
            names = [str(image.get("file_name", "")) for image in json.load(f).get("images", [])[:50]]
        if names and not any((Path(folder) / name).is_file() for name in names):
            raise ConfigError(
                f"{key}: {folder!r} holds none of the images that {ann_file} names (e.g. {names[0]!r}); "
                f"set {key}= to the folder that holds them"
            )


def check_sizes(train_set: TopDownDataset, val_set: TopDownDataset, config: TrainConfig) -> None:
    """Enough training crops for one batch and at least one validation crop, else say why (before work)."""
    for key, dataset, needed in (("train", train_set, config.batch_size), ("val", val_set, 1)):
        if len(dataset) >= needed:
            continue
        images = getattr(config, f"{key}_images") or config.train_images
        skipped = {r: n for r, n in dataset.problems.items() if r not in (NAN_JOINT, OUTSIDE_JOINT)}
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        fix = (
            f"check that {key}_images={images!r} holds the annotation file's images"
            if dataset.problems.get(MISSING_IMAGE)
            else f"use more images or a smaller {'batch_size' if key == 'train' else 'val_fraction'}"
        )
        raise ConfigError(
            f"the {'training' if key == 'train' else 'validation'} set has {len(dataset)} person crops, "
            f"fewer than {needed}{f' (skipped: {reasons})' if reasons else ''}; {fix}"
        )
