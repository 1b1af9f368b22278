"""Top-down pose dataset over any COCO-format keypoint file, and a reproducible multi-worker loader.

One item per person box: the crop warped to the network input, heatmap/coordinate targets from
:mod:`pose.targets`, and the heatmap -> image map that puts predictions back in the image.
"""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from pose.data.coco import (
    NAN_JOINT,
    OUTSIDE_JOINT,
    Instance,
    detection_instances,
    ground_truth_instances,
    read_annotation_file,
)
from pose.data.transforms import (
    AugmentConfig,
    body_halves,
    normalize_image,
    occlude,
    random_crop,
    warp_instance,
)
from pose.geometry import Size, box_to_crop, input_aspect
from pose.keypoints import KeypointSchema
from pose.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from pose.targets import keypoint_targets

_JOINT_REASONS = (NAN_JOINT, OUTSIDE_JOINT)


@dataclass(frozen=True)
class CropSpec:
    """How a person becomes a network input and its targets.

    Attributes:
        input_size: network input ``(H, W)``, both divisible by ``stride``.
        padding: crop enlargement around the (aspect-fixed) box.
        stride: input pixels per heatmap pixel.
        sigma: heatmap Gaussian standard deviation, heatmap pixels.
        mean, std: per-channel RGB normalisation on the [0, 1] scale (pass the model's).
    """

    input_size: Size = (256, 192)
    padding: float = 1.25
    stride: int = 4
    sigma: float = 2.0
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD


@dataclass(frozen=True)
class Selection:
    """Which people are items.

    Attributes:
        image_ids: use only these images; None for all.
        category_id: keypoint category; None for the file's first category.
        detections: COCO results JSON; items are its boxes of the keypoint category instead of the
            annotations (then all joints have weight 0).
        score_threshold: detections scoring below this are ignored.
    """

    image_ids: Iterable[int] | None = None
    category_id: int | None = None
    detections: str | PathLike[str] | None = None
    score_threshold: float = 0.0


@dataclass(frozen=True)
class TrainSpec:
    """Random augmentation of a training set: its settings (``pose.data.NO_AUGMENT`` turns it off) and
    the base seed (each item's draw is seeded by ``(seed, epoch, index)``)."""

    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0


class TopDownDataset(Dataset):
    """Person crops from a COCO keypoint file, any schema (taken from the keypoint category).

    Items are ground-truth annotations with labelled joints, or, when ``detections`` is given,
    detection boxes (then all joints have weight 0). Bad annotations are cleaned at construction and
    reported in one warning: a labelled joint with NaN coordinates or outside the image becomes
    unlabelled (the instance stays); an instance is skipped if its box is empty or degenerate
    (w or h <= 1 px after clipping to the image), its image file is missing, or no labelled joint is
    left. An image that cannot be decoded at load time is replaced by the next readable item (warned
    once, with its path; counted in ``load_failures`` of the process that read it).

    Augmentation (``train=True``) draws from a generator seeded with ``(seed, epoch, index)``, so an
    item is the same in any worker and after a resume; call :meth:`set_epoch` each epoch (it reaches
    persistent workers too).

    Each item is a dict of tensors; K joints, input ``(H, W)``, heatmap ``(h, w) = (H, W) / stride``:
        image: ``(3, H, W)`` float32, RGB normalised by ``mean`` / ``std``.
        heatmaps: ``(K, h, w)`` float32 Gaussian targets (zero for weight-0 joints).
        coords: ``(K, 2)`` float32 target ``(x, y)``, heatmap pixels (``(0, 0)`` where weight 0).
        weights: ``(K,)`` float32; 0 for unlabelled joints and joints outside the heatmap.
        flipped: bool; if True, row i of heatmaps/coords/weights is annotated joint ``schema.flip[i]``.
        matrix: ``(2, 3)`` float64 heatmap pixels -> image pixels (flip included).
        keypoints_image: ``(K, 2)`` float64 image pixels in annotation order, NaN where unlabelled.
        visibility: ``(K,)`` int64 COCO ``v`` in annotation order (0 where unlabelled or dropped).
        box: ``(4,)`` float64 xyxy image pixels; area, score: float64 scalars;
        image_id, ann_id: int64 scalars (``ann_id = -1`` for detections).
    """

    def __init__(
        self,
        annotations: str | PathLike[str],
        images: str | PathLike[str],
        crop: CropSpec = CropSpec(),
        select: Selection = Selection(),
        train: TrainSpec | None = None,
    ) -> None:
        """Load and clean the annotations (no image is read here).

        Args:
            annotations: COCO keypoint JSON.
            images: folder holding the images' ``file_name``.
            crop: input size, padding, stride, target sigma and normalisation (:class:`CropSpec`).
            select: which images, category and boxes (:class:`Selection`).
            train: augment as :class:`TrainSpec` says; None (evaluation) never augments.

        Raises:
            ValueError: bad sizes, or ``train`` with ``detections`` (no targets to train on).
        """
        input_size, stride = crop.input_size, crop.stride
        if input_size[0] % stride or input_size[1] % stride:
            raise ValueError(f"input_size {input_size} must be divisible by stride {stride}")
        if train is not None and select.detections is not None:
            raise ValueError("train=True needs ground-truth keypoints, not detections")
        image_ids, category_id, detections = select.image_ids, select.category_id, select.detections
        ids = None if image_ids is None else {int(i) for i in image_ids}
        ann_file = read_annotation_file(annotations, category_id, ids)
        problems: Counter[str] = Counter()
        if detections is None:
            instances = ground_truth_instances(ann_file, Path(images), problems)
        else:
            threshold = select.score_threshold
            instances = detection_instances(ann_file, Path(images), detections, threshold, problems)
        self._instances = tuple(instances)
        self.schema: KeypointSchema = ann_file.schema
        self.input_size: Size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size: Size = (self.input_size[0] // stride, self.input_size[1] // stride)
        self.sigma, self.padding = float(crop.sigma), float(crop.padding)
        self.seed = int(train.seed) if train is not None else 0
        self.mean, self.std = tuple(crop.mean), tuple(crop.std)
        self.augment = train.augment if train is not None else None
        self.problems = +problems  # unary plus drops the zero counts
        self.load_failures = 0
        self._halves = body_halves(self.schema)
        # Shared memory, so set_epoch in the main process reaches persistent worker processes.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._unreadable: set[int] = set()
        if self.problems:
            warnings.warn(_problem_summary(annotations, self.problems), stacklevel=2)

    @property
    def instances(self) -> tuple[Instance, ...]:
        """The items' instances, in item order (read-only)."""
        return self._instances

    @property
    def epoch(self) -> int:
        """The epoch that seeds augmentation."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch``; call before iterating a loader over that epoch."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(self._instances)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """The item at ``index``, or the next readable one if its image cannot be decoded."""
        n = len(self._instances)
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        for offset in range(n):
            i = (int(index) + offset) % n
            if i in self._unreadable:
                continue
            image = cv2.imread(str(self._instances[i].path), cv2.IMREAD_COLOR)
            if image is not None:
                return self._item(i, image)
            self._record_unreadable(i)
        raise RuntimeError("no image of this dataset could be decoded")

    def _record_unreadable(self, i: int) -> None:
        if not self._unreadable:
            warnings.warn(
                f"cannot decode image {self._instances[i].path}; using the next item instead"
                " (further failures are counted in TopDownDataset.load_failures without a warning)",
                stacklevel=3,
            )
        self._unreadable.add(i)
        self.load_failures += 1

    def _item(self, i: int, image: np.ndarray) -> dict[str, Tensor]:
        inst = self._instances[i]
        crop = box_to_crop(inst.box, input_aspect(self.input_size), self.padding)
        flip = False
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            crop, flip = random_crop(
                crop, inst.keypoints, rng, self.augment, self._halves, input_aspect(self.input_size)
            )
        warped, coords, matrix = warp_instance(
            image, crop, flip, inst.keypoints, self.input_size, self.heatmap_size, self.schema.flip
        )
        if self.augment is not None:
            warped = occlude(warped, rng, self.augment)
        visibility = inst.visibility[list(self.schema.flip)] if flip else inst.visibility
        heatmaps, targets, weights = keypoint_targets(
            torch.from_numpy(coords), torch.from_numpy(visibility.copy()), self.heatmap_size, self.sigma
        )
        return {
            "image": torch.from_numpy(normalize_image(warped, self.mean, self.std)),
            "heatmaps": heatmaps,
            "coords": targets,
            "weights": weights,
            "flipped": torch.tensor(flip),
            "matrix": torch.from_numpy(matrix),
            "keypoints_image": torch.tensor(inst.keypoints),
            "visibility": torch.tensor(inst.visibility),
            "box": torch.tensor(inst.box),
            "area": torch.tensor(inst.area, dtype=torch.float64),
            "score": torch.tensor(inst.score, dtype=torch.float64),
            "image_id": torch.tensor(inst.image_id, dtype=torch.int64),
            "ann_id": torch.tensor(inst.ann_id, dtype=torch.int64),
        }


def _problem_summary(annotations: str | PathLike[str], problems: Counter[str]) -> str:
    """One line: instances skipped and joints dropped, counted per reason."""
    skipped = {r: n for r, n in problems.items() if r not in _JOINT_REASONS and n}
    dropped = {r: n for r, n in problems.items() if r in _JOINT_REASONS and n}
    parts = []
    if skipped:
        parts.append(f"skipped {sum(skipped.values())} instances (" + _join_counts(skipped) + ")")
    if dropped:
        parts.append(f"treated {sum(dropped.values())} joints as unlabelled (" + _join_counts(dropped) + ")")
    return f"{annotations}: bad annotations: " + "; ".join(parts)


def _join_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items()))


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one OpenCV/torch thread per worker process.

    Two workers on two cores already fill the machine; OpenCV's and torch's own thread pools would
    oversubscribe it. The global RNGs need nothing here: the DataLoader seeds ``random``, numpy and
    torch in each worker from its generator (see :func:`make_loader`), and augmentation uses its own
    per-item generator anyway.
    """
    cv2.setNumThreads(0)
    torch.set_num_threads(1)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    distributed: bool = False,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader whose order depends only on ``(seed, epoch)``, on one process or many.

    The sampler is always a :class:`DistributedSampler` (one replica unless ``distributed``, which
    takes rank and world size from the initialised process group), so each epoch's order is
    reproducible after a resume. Per epoch call ``set_loader_epoch(loader, epoch)``.

    Args:
        dataset: e.g. a :class:`TopDownDataset`.
        batch_size: items per batch (per process when distributed).
        shuffle: shuffle each epoch.
        num_workers: worker processes; > 0 keeps them alive across epochs.
        seed: seed of the shuffle.
        distributed: shard the data over the ranks of ``torch.distributed``; the last shard is padded
            with repeated items unless ``drop_last``.
        drop_last: drop the last incomplete batch (and uneven shard tail when distributed).
        pin_memory: pin batches for faster host -> GPU copies.
    """
    if distributed:
        sampler = ResumableSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    else:
        sampler = ResumableSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        worker_init_fn=seed_worker if num_workers > 0 else None,
        drop_last=drop_last,
        pin_memory=pin_memory,
        # Fixes the workers' base seeds, so any global-RNG use in them is reproducible too.
        generator=torch.Generator().manual_seed(seed),
    )


class ResumableSampler(DistributedSampler):
    """A :class:`DistributedSampler` that can start an epoch part-way: after ``start`` of its items.

    The order still depends only on ``(seed, epoch)``, so a run resumed from a checkpoint taken after
    ``n`` steps gets exactly the batches it would have got: it starts at ``n * batch_size``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)


def set_loader_epoch(loader: DataLoader, epoch: int, start_batch: int = 0) -> None:
    """Set the epoch of the loader's sampler (shuffle order) and dataset (augmentation).

    Args:
        start_batch: batches of this epoch already trained (a mid-epoch resume); the loader yields the
            rest. Needs a loader from :func:`make_loader`.
    """
    for part in (loader.sampler, loader.dataset):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)
    if isinstance(loader.sampler, ResumableSampler):
        loader.sampler.start = start_batch * loader.batch_size
    elif start_batch:
        raise TypeError("a mid-epoch start needs a loader from make_loader (a ResumableSampler)")
