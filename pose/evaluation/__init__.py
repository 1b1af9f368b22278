"""Evaluation over numpy arrays in image pixels: PCK / AUC / EPE (metrics), COCO OKS AP (coco), MPII PCKh
and RHD AUC (protocols), the paper's Table 1 difficulty splits (splits), and ``summarize``, the JSON object
``training.evaluate`` prints.
"""

from __future__ import annotations

import math
from os import PathLike
from typing import Any

import numpy as np
from pycocotools.coco import COCO

from pose.evaluation.coco import COCO_AP_KEYS, coco_ap, coco_results, load_coco
from pose.evaluation.metrics import (
    AUC_THRESHOLDS,
    BOX_TORSO_RATIO,
    TORSO_DIAGONALS,
    auc,
    endpoint_errors,
    epe,
    pck,
    pck_curve,
    pck_norms,
    pck_per_joint,
    pck_swap_tolerant,
    torso_sizes,
)
from pose.evaluation.protocols import (
    MPII_SC_BIAS,
    PCKH_TABLE_JOINTS,
    RHD_AUC_THRESHOLDS,
    head_sizes,
    pckh,
    pckh_table,
    protocol_keys,
    protocol_metrics,
    rhd_auc,
    rhd_epe,
)
from pose.evaluation.splits import OCCLUSION_EDGES, difficulty_splits, format_splits_table, joint_count_edges
from pose.keypoints import KeypointSchema

__all__ = [
    "AUC_THRESHOLDS",
    "BOX_TORSO_RATIO",
    "COCO_AP_KEYS",
    "MPII_SC_BIAS",
    "OCCLUSION_EDGES",
    "PCKH_TABLE_JOINTS",
    "RHD_AUC_THRESHOLDS",
    "TORSO_DIAGONALS",
    "auc",
    "coco_ap",
    "coco_results",
    "difficulty_splits",
    "endpoint_errors",
    "epe",
    "format_splits_table",
    "head_sizes",
    "joint_count_edges",
    "load_coco",
    "pck",
    "pck_curve",
    "pck_norms",
    "pck_per_joint",
    "pck_swap_tolerant",
    "pckh",
    "pckh_table",
    "protocol_keys",
    "protocol_metrics",
    "rhd_auc",
    "rhd_epe",
    "summarize",
    "torso_sizes",
    "visibility_masks",
]


def visibility_masks(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split COCO visibility flags into ``(visible, occluded)``.

    Args:
        flags: ``(N, K)`` COCO ``v``: 0 unlabelled, 1 labelled but occluded, 2 labelled and visible.

    Returns:
        ``visible = v > 0`` and ``occluded = v == 1``; ``occluded`` is None when no joint has ``v == 1``
        (data that does not mark occlusion, such as LSPET), which turns the occlusion split off.
    """
    flags = np.asarray(flags)
    occluded = flags == 1
    return flags > 0, (occluded if occluded.any() else None)


def _finite_or_none(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _pck_metrics(pred, gt, visible, boxes, schema: KeypointSchema, threshold: float) -> dict[str, Any]:
    """The PCK keys of ``summarize``: every person (torso, else box fallback), the torso-only figure, AUC."""
    norm, fallback, kind = pck_norms(gt, visible, schema, boxes)
    torso_only = np.where(fallback, np.nan, norm)
    return {
        f"pck@{threshold:g}": _finite_or_none(pck(pred, gt, visible, norm, threshold)),
        "pck_norm": kind,
        "pck_fallback": f"{BOX_TORSO_RATIO:g} x box long side" if kind == "torso" else None,
        "pck_n_instances": int((np.isfinite(norm) & (norm > 0)).sum()),
        "pck_n_fallback": int(fallback.sum()),
        f"pck@{threshold:g}_torso": (
            _finite_or_none(pck(pred, gt, visible, torso_only, threshold)) if kind == "torso" else None
        ),
        f"pck@{threshold:g}_lr_tolerant": (
            _finite_or_none(pck_swap_tolerant(pred, gt, visible, norm, schema.flip, threshold))
            if tuple(schema.flip) != tuple(range(schema.num_keypoints))
            else None  # no left/right pairs to swap
        ),
        "auc": _finite_or_none(auc(pred, gt, visible, norm)),
    }


# 10 parameters: each is one plain array (or file) of the same N people, as every caller holds them;
# a record type here would only re-wrap pose.evaluation.predictions.DatasetPredictions one layer down.
def summarize(
    pred: np.ndarray,
    scores: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    boxes: np.ndarray,
    schema: KeypointSchema,
    *,
    image_ids: np.ndarray | None = None,
    annotations: str | PathLike[str] | dict[str, Any] | COCO | None = None,
    box_scores: np.ndarray | None = None,
    threshold: float = 0.2,
) -> dict[str, Any]:
    """The headline metrics of one evaluation, as a JSON-ready dict.

    Keys: ``pck@0.2`` (at ``threshold``, every person scored: the torso norm, else the box fallback of
    ``pck_norms``), ``pck_norm`` (``"torso"`` or ``"box"``, see ``torso_sizes``), ``pck_fallback`` (what
    people without a torso diagonal are normalised by; None for box norms), ``pck_n_instances`` (people
    scored), ``pck_n_fallback`` (of them, on the fallback), ``pck@0.2_torso`` (the torso-only figure: only
    people with a labelled diagonal; None for box norms), ``pck@0.2_lr_tolerant`` (every person scored as
    labelled and left/right swapped, the better kept; None for a schema without pairs), ``epe`` (px),
    ``auc`` (PCK over thresholds 0-0.2, same norms as ``pck@0.2``),
    ``ap`` (COCO OKS AP; None without schema sigmas or without ``annotations``/``image_ids``), ``coco``
    (all of ``coco_ap``'s values, or None) and ``n_instances``; for MPII-16 and hand-21 also the keys of
    ``protocol_metrics`` (PCKh; RHD AUC 0-30 px and EPE), which other schemas do not get. Values are
    Python floats, ints, str or None (for undefined ones, e.g. no visible joint), so
    ``json.dumps(..., allow_nan=False)`` works. Instances without a visible joint are left out of AP.

    Args:
        pred: ``(N, K, 2)`` predicted ``(x, y)``, image px.
        scores: ``(N, K)`` keypoint confidences in [0, 1].
        gt: ``(N, K, 2)`` ground truth, image px.
        visible: ``(N, K)`` bool, labelled joints.
        boxes: ``(N, 4)`` ground-truth boxes ``(x, y, w, h)``, image px (box norms and the PCK fallback;
            ``pose.geometry.xyxy_to_xywh`` converts the data set's corner boxes).
        schema: Keypoint schema of the K joints.
        image_ids: ``(N,)`` COCO image ids, for AP.
        annotations: The ground-truth COCO file (path, dict or COCO object), for AP.
        box_scores: ``(N,)`` detector scores, or None for ground-truth boxes.
        threshold: PCK threshold as a fraction of the norm.
    """
    visible = np.asarray(visible, dtype=bool)
    coco = None
    if schema.sigmas is not None and annotations is not None and image_ids is not None:
        keep = visible.any(axis=1)  # COCOeval ignores the ground truth of people with none visible
        boxes_kept = None if box_scores is None else np.asarray(box_scores)[keep]
        pred_kept, scores_kept, ids_kept = (np.asarray(a)[keep] for a in (pred, scores, image_ids))
        coco = coco_ap(pred_kept, scores_kept, ids_kept, annotations, schema, box_scores=boxes_kept)
    benchmark = {
        k: v if isinstance(v, str | int) else _finite_or_none(v)
        for k, v in protocol_metrics(pred, gt, visible, schema).items()
    }
    return {
        **_pck_metrics(pred, gt, visible, boxes, schema, threshold),
        "epe": _finite_or_none(epe(pred, gt, visible)),
        "ap": None if coco is None else coco["AP"],
        "coco": coco,
        "n_instances": len(visible),
        **benchmark,
    }
