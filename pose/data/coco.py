"""COCO-format keypoint files -> a flat list of person instances (ground truth or detection boxes).

Bad annotations are cleaned or dropped here and counted per reason, so the dataset can warn once.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from pose.keypoints import KeypointSchema, schema_from_coco_category

# Reasons counted in ``AnnotationFile.problems`` / the dataset warning.
MISSING_IMAGE = "missing image file"
DEGENERATE_BOX = "empty or degenerate box (w or h <= 1 px)"
NO_VALID_JOINTS = "no labelled joint inside the image"
NAN_JOINT = "NaN coordinates"  # joint reasons: the joint becomes unlabelled, the instance stays
OUTSIDE_JOINT = "outside the image"


@dataclass(frozen=True, eq=False)
class Instance:
    """One person to crop: a box in one image, with its ground-truth joints when known.

    Attributes:
        image_id: COCO image id.
        ann_id: COCO annotation id; -1 for a detection box.
        path: image file.
        image_size: ``(height, width)`` of the image, pixels.
        box: ``(4,)`` float64 ``(x0, y0, x1, y1)``, image pixels, clipped to the image.
        keypoints: ``(K, 2)`` float64 image pixels, NaN where unlabelled (or dropped as bad).
        visibility: ``(K,)`` int64 COCO ``v`` (0 where unlabelled or dropped).
        area: COCO ``area`` (segment area) if given, else the box area; image pixels squared.
        score: detection score; 1.0 for ground truth.
    """

    image_id: int
    ann_id: int
    path: Path
    image_size: tuple[int, int]
    box: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    area: float
    score: float = 1.0

    def __post_init__(self) -> None:
        # Shared by every worker and epoch: make accidental in-place edits fail loudly.
        for array in (self.box, self.keypoints, self.visibility):
            array.flags.writeable = False


@dataclass(frozen=True)
class AnnotationFile:
    """The parts of a COCO keypoint file a top-down dataset needs."""

    schema: KeypointSchema
    category_id: int
    images: dict[int, dict[str, Any]]
    annotations: list[dict[str, Any]]


def read_annotation_file(
    path: str | PathLike[str], category_id: int | None = None, image_ids: set[int] | None = None
) -> AnnotationFile:
    """Load a COCO keypoint JSON: schema from the category, images, that category's annotations.

    Args:
        path: COCO-format annotation file.
        category_id: keypoint category to use; None for ``categories[0]``.
        image_ids: keep only these images (and their annotations); None keeps all.

    Raises:
        ValueError: no such category, or it has no ``keypoints``.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    categories = data.get("categories") or []
    if category_id is not None:
        categories = [c for c in categories if c.get("id") == category_id]
    if not categories:
        raise ValueError(f"{path}: no keypoint category (category_id={category_id})")
    category = categories[0]
    schema = schema_from_coco_category(category)
    images = {
        int(im["id"]): im for im in data.get("images", []) if image_ids is None or im["id"] in image_ids
    }
    annotations = [
        a
        for a in data.get("annotations", [])
        if a.get("category_id") == category["id"] and a["image_id"] in images
    ]
    return AnnotationFile(schema, int(category["id"]), images, annotations)


def clip_box(bbox_xywh: Any, image_size: tuple[int, int]) -> np.ndarray | None:
    """COCO ``[x, y, w, h]`` -> ``(4,)`` xyxy clipped to the image; None if w or h <= 1 px or not finite."""
    height, width = image_size
    try:
        x, y, w, h = (float(v) for v in bbox_xywh)
    except (TypeError, ValueError):
        return None
    box = np.clip([x, y, x + w, y + h], 0.0, [width, height, width, height])
    if not np.all(np.isfinite(box)) or box[2] - box[0] <= 1 or box[3] - box[1] <= 1:
        return None
    return box


def clean_keypoints(
    flat: Any, num_keypoints: int, image_size: tuple[int, int], problems: Counter[str]
) -> tuple[np.ndarray, np.ndarray]:
    """COCO ``[x1, y1, v1, ...]`` -> ``(K, 2)`` coordinates and ``(K,)`` visibility.

    A labelled joint (``v > 0``) with NaN coordinates, or outside the image raster
    ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, becomes unlabelled (NaN, ``v = 0``) and is counted.
    """
    raw = np.asarray(flat if flat is not None else [], dtype=np.float64)
    if raw.size != 3 * num_keypoints:
        raw = np.zeros(3 * num_keypoints)  # wrong length: treat every joint as unlabelled
    raw = raw.reshape(num_keypoints, 3)
    coords, visibility = raw[:, :2].copy(), np.nan_to_num(raw[:, 2]).astype(np.int64)
    labelled = visibility > 0
    finite = np.all(np.isfinite(coords), axis=1)
    height, width = image_size
    x, y = coords[:, 0], coords[:, 1]
    with np.errstate(invalid="ignore"):
        inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    problems[NAN_JOINT] += int(np.sum(labelled & ~finite))
    problems[OUTSIDE_JOINT] += int(np.sum(labelled & finite & ~inside))
    keep = labelled & finite & inside
    coords[~keep] = np.nan
    visibility[~keep] = 0
    return coords, visibility


def _image_info(image: dict[str, Any], images_dir: Path) -> tuple[Path, tuple[int, int]]:
    return images_dir / image["file_name"], (int(image["height"]), int(image["width"]))


def _problem(image_exists: bool, box: np.ndarray | None) -> str | None:
    """Why an instance cannot be used (the first reason that applies), or None."""
    if not image_exists:
        return MISSING_IMAGE
    return DEGENERATE_BOX if box is None else None


def ground_truth_instances(
    ann_file: AnnotationFile, images_dir: Path, problems: Counter[str]
) -> list[Instance]:
    """One :class:`Instance` per non-crowd annotation with ``num_keypoints > 0``.

    Annotations without labelled joints (e.g. small people in COCO) are left out silently; bad ones
    (see the module's reasons) are dropped and counted in ``problems``.
    """
    k = ann_file.schema.num_keypoints
    exists: dict[int, bool] = {}
    instances = []
    for ann in ann_file.annotations:
        if ann.get("iscrowd", 0) or ann.get("num_keypoints", 1) == 0:
            continue
        image = ann_file.images[ann["image_id"]]
        path, size = _image_info(image, images_dir)
        box = clip_box(ann.get("bbox"), size)
        keypoints, visibility = clean_keypoints(ann.get("keypoints"), k, size, problems)
        if ann["image_id"] not in exists:
            exists[ann["image_id"]] = path.is_file()
        reason = _problem(exists[ann["image_id"]], box) or (None if visibility.any() else NO_VALID_JOINTS)
        if reason is not None:
            problems[reason] += 1
            continue
        area = float(ann.get("area") or (box[2] - box[0]) * (box[3] - box[1]))
        instances.append(
            Instance(int(image["id"]), int(ann["id"]), path, size, box, keypoints, visibility, area)
        )
    return instances


def detection_instances(
    ann_file: AnnotationFile,
    images_dir: Path,
    detections: str | PathLike[str],
    score_threshold: float,
    problems: Counter[str],
) -> list[Instance]:
    """One :class:`Instance` per detection of the keypoint category with ``score >= score_threshold``.

    Args:
        detections: COCO results JSON, a list of ``{"image_id", "category_id", "bbox", "score"}``;
            entries without ``category_id`` are taken as that category.

    Returns:
        Instances without joints (NaN keypoints, visibility 0, ``ann_id = -1``).
    """
    with open(detections, encoding="utf-8") as f:
        results = json.load(f)
    k = ann_file.schema.num_keypoints
    instances = []
    for det in results:
        if det.get("category_id", ann_file.category_id) != ann_file.category_id:
            continue
        if float(det.get("score", 1.0)) < score_threshold:
            continue
        image = ann_file.images.get(det["image_id"])
        if image is None:
            continue  # an image outside the subset (or unknown): not a problem of this file
        path, size = _image_info(image, images_dir)
        box = clip_box(det.get("bbox"), size)
        reason = _problem(path.is_file(), box)
        if reason is not None:
            problems[reason] += 1
            continue
        area = float((box[2] - box[0]) * (box[3] - box[1]))
        instances.append(
            Instance(
                int(image["id"]), -1, path, size, box, np.full((k, 2), np.nan), np.zeros(k, np.int64),
                area, float(det.get("score", 1.0)),
            )
        )  # fmt: skip
    return instances
