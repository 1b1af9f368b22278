"""The paper's other benchmark protocols: MPII PCKh (head-normalised PCK, per-joint table) and the RHD 2D
hand metrics (AUC of PCK over 0-30 px, per-keypoint EPE), over the arrays of ``pose.evaluation.metrics``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from pose.evaluation.metrics import _checked, _hits, endpoint_errors, pck, pck_per_joint
from pose.keypoints import HAND_21, MPII_16, KeypointSchema

__all__ = [
    "MPII_SC_BIAS",
    "PCKH_TABLE_JOINTS",
    "RHD_AUC_THRESHOLDS",
    "head_sizes",
    "pckh",
    "pckh_table",
    "protocol_keys",
    "protocol_metrics",
    "rhd_auc",
    "rhd_epe",
]

# MPII's evalPCKh: head size = SC_BIAS x the diagonal of the annotated head box.
MPII_SC_BIAS = 0.6
# Joints the MPII "Mean" leaves out (as the official and SimpleBaseline/HRNet evaluations do).
_PCKH_EXCLUDED = ("pelvis", "thorax")
# The MPII results table: column -> joints averaged (left and right weigh the same, as in HRNet's).
PCKH_TABLE_JOINTS: dict[str, tuple[str, ...]] = {
    "Head": ("head_top",),
    "Shoulder": ("left_shoulder", "right_shoulder"),
    "Elbow": ("left_elbow", "right_elbow"),
    "Wrist": ("left_wrist", "right_wrist"),
    "Hip": ("left_hip", "right_hip"),
    "Knee": ("left_knee", "right_knee"),
    "Ankle": ("left_ankle", "right_ankle"),
}
# ColorHandPose3D's 2D protocol (Zimmermann & Brox 2017): 20 thresholds 0, 30/19, ..., 30 px.
RHD_AUC_THRESHOLDS = np.linspace(0.0, 30.0, 20)


def head_sizes(
    gt: np.ndarray, visible: np.ndarray, schema: KeypointSchema, head_boxes: np.ndarray | None = None
) -> np.ndarray:
    """Per-person PCKh norm in px.

    With ``head_boxes`` (MPII's ``headboxes_src``), the official ``0.6 x`` head-box diagonal. Without them
    (COCO-format files carry none), the ground-truth head segment ``|head_top - upper_neck|``; NaN where
    either end is unlabelled or they coincide, which leaves that person out of PCKh.

    Args:
        gt: ``(N, K, 2)`` ground-truth ``(x, y)``, image px.
        visible: ``(N, K)`` bool, labelled joints.
        schema: Must name ``head_top`` and ``upper_neck`` (e.g. MPII_16) when ``head_boxes`` is None.
        head_boxes: ``(N, 4)`` ``(x1, y1, x2, y2)`` head boxes, image px, or None.

    Returns:
        ``(N,)`` float64 lengths in px.
    """
    gt, _, visible = _checked(gt, gt, visible)
    if head_boxes is not None:
        boxes = np.asarray(head_boxes, dtype=np.float64)
        if boxes.shape != (len(gt), 4):
            raise ValueError(f"head_boxes must be (N, 4) = ({len(gt)}, 4), got {boxes.shape}")
        size = MPII_SC_BIAS * np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
        return np.where(size > 0, size, np.nan)
    top, neck = schema.index("head_top"), schema.index("upper_neck")
    length = np.linalg.norm(gt[:, top] - gt[:, neck], axis=-1)
    return np.where(visible[:, top] & visible[:, neck] & (length > 0), length, np.nan)


def _mean_joints(schema: KeypointSchema, visible: np.ndarray) -> np.ndarray:
    """``visible`` without the joints the MPII mean leaves out."""
    counted = np.array(visible, dtype=bool, copy=True)
    for name in _PCKH_EXCLUDED:
        if name in schema.names:
            counted[:, schema.index(name)] = False
    return counted


def pckh(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_size: np.ndarray,
    schema: KeypointSchema,
    threshold: float = 0.5,
) -> float:
    """MPII PCKh "Mean": fraction of labelled joints with error ``<= threshold * head_size``.

    Pooled over every labelled joint except pelvis and thorax (the official mean weighs each joint type
    by its count, which is the same thing).

    Args:
        pred: ``(N, K, 2)`` predicted ``(x, y)``, image px.
        gt: ``(N, K, 2)`` ground truth, image px.
        visible: ``(N, K)`` bool, labelled joints.
        head_size: ``(N,)`` px (``head_sizes``); people with NaN are left out.
        schema: Keypoint schema of the K joints.
        threshold: Fraction of the head size (0.5 for PCKh@0.5).

    Returns:
        A fraction in [0, 1]; NaN when no joint counts.
    """
    return pck(pred, gt, _mean_joints(schema, visible), head_size, threshold)


def pckh_table(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_size: np.ndarray,
    schema: KeypointSchema,
    threshold: float = 0.5,
) -> dict[str, float]:
    """The MPII results row: Head, Shoulder, Elbow, Wrist, Hip, Knee, Ankle and Mean PCKh (fractions).

    A column averages the per-joint PCKh of its left and right joint (NaN if neither ever counts);
    Mean is ``pckh``. Arguments as in ``pckh``.
    """
    per_joint = pck_per_joint(pred, gt, visible, head_size, threshold)
    row = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN: an empty column is NaN
        for column, names in PCKH_TABLE_JOINTS.items():
            row[column] = float(np.nanmean([per_joint[schema.index(n)] for n in names]))
    row["Mean"] = pckh(pred, gt, visible, head_size, schema, threshold)
    return row


def rhd_auc(
    pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, thresholds: np.ndarray = RHD_AUC_THRESHOLDS
) -> float:
    """RHD 2D AUC: area under the PCK curve over pixel thresholds, normalised to [0, 1].

    As ColorHandPose3D's ``EvalUtil``: for each keypoint, PCK (error ``<= t`` px over the instances
    where it is visible) at each threshold, the trapezoid area divided by the threshold range; then the
    mean over keypoints that are visible at least once.

    Args:
        pred: ``(N, K, 2)`` predicted ``(x, y)``, image px.
        gt: ``(N, K, 2)`` ground truth, image px.
        visible: ``(N, K)`` bool, visible keypoints (the only ones RHD scores).
        thresholds: Increasing pixel thresholds (default 20 points from 0 to 30 px).

    Returns:
        The mean normalised area; NaN when no keypoint is visible.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or len(t) < 2 or not np.all(np.diff(t) > 0):
        raise ValueError("rhd_auc needs at least two increasing thresholds")
    ones = np.ones(len(np.asarray(pred)))
    hits, counted = _hits(pred, gt, visible, ones, t)  # norm 1: thresholds are in px
    n = counted.sum(axis=0)  # (K,)
    if not n.any():
        return float("nan")
    curves = (hits & counted).sum(axis=1)[:, n > 0] / n[n > 0]  # (T, K') per-keypoint PCK
    areas = np.sum(np.diff(t)[:, None] * (curves[1:] + curves[:-1]) / 2, axis=0) / (t[-1] - t[0])
    return min(float(areas.mean()), 1.0)  # rounding can give 1 + 2e-16 for perfect curves


def rhd_epe(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray) -> tuple[float, float]:
    """RHD's EPE: ``(mean, median)`` of each keypoint's mean / median error, averaged over keypoints (px).

    Keypoints never visible are skipped; both are NaN when none is visible.
    """
    pred, gt, visible = _checked(pred, gt, visible)
    errors = endpoint_errors(pred, gt)
    per_joint = [errors[visible[:, k], k] for k in range(errors.shape[1]) if visible[:, k].any()]
    if not per_joint:
        return float("nan"), float("nan")
    return float(np.mean([e.mean() for e in per_joint])), float(np.mean([np.median(e) for e in per_joint]))


def protocol_keys(schema: KeypointSchema) -> tuple[str, ...]:
    """The keys ``protocol_metrics`` returns for ``schema``: MPII-16's, hand-21's, or none."""
    if schema.names == MPII_16.names:
        return ("pckh@0.5", "pckh@0.1", "pckh_norm", "pckh_n_instances")
    if schema.names == HAND_21.names:
        return ("auc_0_30", "rhd_epe_mean", "rhd_epe_median")
    return ()


def protocol_metrics(
    pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, schema: KeypointSchema
) -> dict[str, Any]:
    """The benchmark metrics that belong to ``schema`` (by its joint names), NaN where undefined.

    MPII-16: ``pckh@0.5``, ``pckh@0.1`` (``pckh``, head segment norm: COCO-format files have no head
    boxes), ``pckh_norm`` (``"head_segment"``), ``pckh_n_instances``. Hand-21: ``auc_0_30``
    (``rhd_auc``), ``rhd_epe_mean`` and ``rhd_epe_median`` (``rhd_epe``, px). Other schemas: ``{}``.
    """
    keys = protocol_keys(schema)
    if not keys:
        return {}
    if schema.names == MPII_16.names:
        size = head_sizes(gt, visible, schema)
        return {
            "pckh@0.5": pckh(pred, gt, visible, size, schema, 0.5),
            "pckh@0.1": pckh(pred, gt, visible, size, schema, 0.1),
            "pckh_norm": "head_segment",
            "pckh_n_instances": int(np.isfinite(size).sum()),
        }
    mean, median = rhd_epe(pred, gt, visible)
    return {"auc_0_30": rhd_auc(pred, gt, visible), "rhd_epe_mean": mean, "rhd_epe_median": median}
