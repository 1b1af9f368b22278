"""COCO keypoint AP: OKS-based average precision through pycocotools' COCOeval, for any schema with sigmas."""

from __future__ import annotations

import contextlib
import copy
import io
import json
from os import PathLike
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from pose.keypoints import KeypointSchema

__all__ = ["COCO_AP_KEYS", "coco_ap", "coco_results", "load_coco"]

# The first six of COCOeval.stats for iouType 'keypoints', in order.
COCO_AP_KEYS = ("AP", "AP50", "AP75", "APm", "APl", "AR")


def load_coco(annotations: str | PathLike[str] | dict[str, Any] | COCO) -> COCO:
    """A pycocotools COCO index over a keypoint file, with the fields COCOeval needs filled in.

    COCOeval reads ``num_keypoints``, ``area`` and ``iscrowd`` of every ground-truth annotation; files
    written by other tools may omit them. Missing ones become: the count of ``v > 0`` keypoints, the box
    area ``w * h`` and 0. Annotations with ``num_keypoints == 0`` or ``iscrowd`` are ignored by COCOeval
    (neither matched nor missed). The input is not modified. pycocotools' prints are swallowed.

    Args:
        annotations: Path of a COCO-format JSON file, its parsed dict, or a COCO object.
    """
    if isinstance(annotations, COCO):
        dataset = annotations.dataset
    elif isinstance(annotations, dict):
        dataset = annotations
    else:
        with open(annotations, encoding="utf-8") as f:
            dataset = json.load(f)
    dataset = dict(dataset, annotations=[copy.copy(a) for a in dataset.get("annotations", [])])
    for ann in dataset["annotations"]:
        ann.setdefault("num_keypoints", int(np.count_nonzero(np.asarray(ann.get("keypoints", []))[2::3] > 0)))
        ann.setdefault("area", float(ann["bbox"][2] * ann["bbox"][3]) if "bbox" in ann else 0.0)
        ann.setdefault("iscrowd", 0)
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def coco_results(
    pred: np.ndarray,
    scores: np.ndarray,
    image_ids: np.ndarray,
    category_id: int,
    box_scores: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Predictions in COCO keypoint results format.

    Each instance's score is ``box_score * mean(keypoint scores)`` (box score 1 for ground-truth boxes):
    COCOeval ranks detections by it. The flattened keypoints carry ``v = 1``, which COCOeval ignores.

    Args:
        pred: ``(N, K, 2)`` predicted ``(x, y)``, image px.
        scores: ``(N, K)`` keypoint confidences in [0, 1].
        image_ids: ``(N,)`` COCO image ids.
        category_id: The category the predictions belong to.
        box_scores: ``(N,)`` detector scores, or None for 1.

    Returns:
        N dicts with ``image_id``, ``category_id``, ``keypoints`` (3K floats) and ``score``.
    """
    pred = np.asarray(pred, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    n, k = pred.shape[:2]
    if pred.shape != (n, k, 2) or scores.shape != (n, k) or np.shape(image_ids) != (n,):
        raise ValueError(
            f"need pred (N, K, 2), scores (N, K), image_ids (N,); got {pred.shape}, "
            f"{scores.shape}, {np.shape(image_ids)}"
        )
    box = np.ones(n) if box_scores is None else np.asarray(box_scores, dtype=np.float64).reshape(n)
    flat = np.concatenate([pred, np.ones((n, k, 1))], axis=-1).reshape(n, 3 * k)
    instance_scores = box * scores.mean(axis=1) if k else box
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [float(v) for v in row],
            "score": float(score),
        }
        for image_id, row, score in zip(image_ids, flat, instance_scores, strict=True)
    ]


def coco_ap(
    pred: np.ndarray,
    scores: np.ndarray,
    image_ids: np.ndarray,
    annotations: str | PathLike[str] | dict[str, Any] | COCO,
    schema: KeypointSchema,
    category_id: int | None = None,
    box_scores: np.ndarray | None = None,
) -> dict[str, float | None] | None:
    """COCO OKS average precision of keypoint predictions, with the schema's OKS sigmas.

    Only the images that appear in ``image_ids`` are evaluated, so a subset of a file can be scored;
    every ground-truth person with keypoints in those images counts (a missed one lowers recall).
    Leave out predictions for people without labelled keypoints: COCOeval ignores such ground truth,
    and a prediction it cannot match is a false positive.

    Args:
        pred: ``(N, K, 2)`` predicted ``(x, y)``, image px.
        scores: ``(N, K)`` keypoint confidences in [0, 1] (see ``coco_results`` for the instance score).
        image_ids: ``(N,)`` COCO image ids of the instances.
        annotations: Ground truth: JSON path, parsed dict or COCO object (see ``load_coco``).
        schema: Keypoint schema of the K joints; its ``sigmas`` are the OKS sigmas.
        category_id: Category of the predictions; None for the file's first category.
        box_scores: ``(N,)`` detector scores, or None for ground-truth boxes (score 1).

    Returns:
        ``{"AP", "AP50", "AP75", "APm", "APl", "AR"}`` as fractions in [0, 1] (None where COCOeval has no
        ground truth, e.g. APm without medium people); None when the schema has no sigmas or N is 0.
    """
    if schema.sigmas is None or len(pred) == 0:
        return None
    coco = load_coco(annotations)
    if category_id is None:
        category_id = sorted(coco.getCatIds())[0]
    results = coco_results(pred, scores, image_ids, category_id, box_scores)
    with contextlib.redirect_stdout(io.StringIO()):  # the CLI's last line must be clean JSON
        coco_eval = COCOeval(coco, coco.loadRes(results), iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = np.array(schema.sigmas)
        coco_eval.params.imgIds = sorted({int(i) for i in image_ids})
        coco_eval.params.catIds = [int(category_id)]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    # COCOeval writes -1 for "no ground truth in this range".
    return {
        key: (float(v) if v >= 0 else None) for key, v in zip(COCO_AP_KEYS, coco_eval.stats, strict=False)
    }
