"""A network over a data set: logits -> every requested decoder -> image pixels, once, and the scores of it.

``predict_dataset`` (or ``predict_loader`` for a loader of one's own, e.g. a DDP shard) runs the network
once; every decoder reads the same logits, at one beta or (the ``_at`` forms) at several. ``score``,
``splits`` and ``heatmap_report`` turn the typed result into the JSON-ready metrics that
``training.evaluate``, ``training.export``, ``training.compare`` and the trainer's validation report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from os import PathLike
from typing import Any

import numpy as np
import torch
from torch import nn

from pose.data import TopDownDataset, make_loader
from pose.decode import DECODERS
from pose.evaluation import summarize, visibility_masks
from pose.evaluation.coco import coco_ap
from pose.evaluation.heatmaps import background_levels, second_modes
from pose.evaluation.metrics import endpoint_errors
from pose.evaluation.protocols import head_sizes, pckh_table, protocol_keys
from pose.evaluation.splits import difficulty_splits
from pose.geometry import apply_affine, xyxy_to_xywh
from pose.inference import flip_test_logits
from pose.keypoints import MPII_16, KeypointSchema

# The data set's per-item fields that are kept, stacked over the set, beside the predictions.
ITEM_FIELDS = ("keypoints_image", "visibility", "box", "area", "image_id", "score", "ann_id")


@dataclass
class DatasetPredictions:
    """Decoded keypoints of N data set items, with the items' own fields (arrays stacked over N).

    Attributes:
        preds: per decoder name, ``(N, K, 2)`` predicted ``(x, y)`` in image pixels.
        scores: per decoder name, ``(N, K)`` confidences in [0, 1].
        keypoints_image: ``(N, K, 2)`` ground truth, image pixels.
        visibility: ``(N, K)`` COCO ``v`` flags.
        box: ``(N, 4)`` person boxes ``(x1, y1, x2, y2)``, image pixels.
        image_id: ``(N,)`` COCO image ids.
        area, score, ann_id: ``(N,)`` annotation area, detector score (1 for ground-truth boxes) and
            annotation id, or None where not collected.
        background: ``(N, K)`` mean logit more than 6 heatmap px from each map's peak, or None when
            logit statistics were not asked for (``pose.evaluation.heatmaps``).
        second_mode: ``(N, K)`` bool, the map has a second mode; or None, as ``background``.
    """

    preds: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    keypoints_image: np.ndarray
    visibility: np.ndarray
    box: np.ndarray
    image_id: np.ndarray
    area: np.ndarray | None = None
    score: np.ndarray | None = None
    ann_id: np.ndarray | None = None
    background: np.ndarray | None = None
    second_mode: np.ndarray | None = None

    def by_annotation(self) -> dict[int, dict[str, Any]]:
        """One record per annotation id (every field's row ``i``): what ranks exchange to merge shards."""
        rows: dict[int, dict[str, Any]] = {}
        for i, ann_id in enumerate(self.ann_id.tolist()):  # keyed: drops a sampler's padding duplicates
            row = {f.name: _row(getattr(self, f.name), i) for f in fields(self)}
            rows[int(ann_id)] = row
        return rows

    @classmethod
    def from_annotations(cls, rows: Mapping[int, dict[str, Any]]) -> DatasetPredictions:
        """The inverse of :meth:`by_annotation` over any merged set of records, ordered by annotation id."""
        ordered = [rows[k] for k in sorted(rows)]
        values = {}
        for f in fields(cls):
            column = [row[f.name] for row in ordered]
            if f.name in ("preds", "scores"):
                values[f.name] = {n: np.stack([c[n] for c in column]) for n in (column[0] if column else {})}
            else:
                values[f.name] = None if not column or column[0] is None else np.stack(column)
        return cls(**values)


def _row(value: np.ndarray | dict[str, np.ndarray] | None, i: int) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {name: array[i] for name, array in value.items()}
    return value[i]


@torch.no_grad()
def predict_loader_at(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    plan: Mapping[float, Sequence[str]],
    *,
    flip: bool = False,
    logit_stats: bool = True,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict[float, DatasetPredictions]:
    """Run ``model`` (a PoseModel, put in eval mode) once over the batches of ``loader`` and decode each
    batch's logits at every beta of ``plan`` with that beta's decoders; heatmap coordinates go to image
    pixels with the batch's ``matrix``. One network pass however many betas: the decoders read the same
    logits, so a model scored at its own beta and at a low one costs one pass, not two.

    Args:
        model: forward ``(B, 3, H, W) -> (B, K, h, w)`` logits; ``schema.flip`` for ``flip``.
        loader: batches of ``TopDownDataset`` items.
        plan: softmax sharpness beta -> keys of ``pose.decode.DECODERS`` to decode at it.
        flip: average the logits with those of the mirrored crops (``pose.inference.flip_test_logits``).
        logit_stats: also measure ``background`` and ``second_mode`` (costs a few passes over the logits).
        progress: wraps the loader, e.g. in a tqdm bar.

    Returns:
        per beta of ``plan``, its decoders' predictions; the items' fields and logit statistics are the
        same arrays in each (they do not depend on beta).
    """
    model.eval()
    device = next(model.parameters()).device
    flip_perm = torch.tensor(model.schema.flip, device=device) if flip else None
    preds = {beta: {name: [] for name in names} for beta, names in plan.items()}
    scores = {beta: {name: [] for name in names} for beta, names in plan.items()}
    items: dict[str, list] = {key: [] for key in ITEM_FIELDS}
    stats: dict[str, list] = {"background": [], "second_mode": []}
    for batch in progress(loader) if progress else loader:
        logits = flip_test_logits(model, batch["image"].to(device), flip_perm).float()
        matrices = batch["matrix"].numpy()
        for beta, names in plan.items():
            for name in names:
                coords, conf = DECODERS[name](logits, beta)
                preds[beta][name].append(apply_affine(coords.cpu().numpy(), matrices))  # heatmap -> image px
                scores[beta][name].append(conf.cpu().numpy())
        for key in ITEM_FIELDS:
            items[key].append(batch[key].numpy())
        if logit_stats:
            stats["background"].append(background_levels(logits).cpu().numpy())
            stats["second_mode"].append(second_modes(logits).cpu().numpy())
    shared = {key: np.concatenate(value) for key, value in items.items()}
    shared.update({key: np.concatenate(value) if logit_stats else None for key, value in stats.items()})
    return {
        beta: DatasetPredictions(
            preds={name: np.concatenate(preds[beta][name]) for name in names},
            scores={name: np.concatenate(scores[beta][name]) for name in names},
            **shared,
        )
        for beta, names in plan.items()
    }


def predict_loader(
    model: nn.Module,
    loader: Iterable[dict[str, Any]],
    decoders: Sequence[str],
    beta: float,
    *,
    flip: bool = False,
    logit_stats: bool = True,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> DatasetPredictions:
    """:func:`predict_loader_at` at one ``beta``: each of ``decoders`` on every batch's logits."""
    plan = {beta: decoders}
    return predict_loader_at(model, loader, plan, flip=flip, logit_stats=logit_stats, progress=progress)[beta]


def predict_dataset_at(
    model: nn.Module,
    dataset: TopDownDataset,
    plan: Mapping[float, Sequence[str]],
    batch_size: int = 32,
    workers: int = 0,
    flip: bool = False,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict[float, DatasetPredictions]:
    """:func:`predict_loader_at` over all of ``dataset`` in order, ``batch_size`` items a batch."""
    loader = make_loader(dataset, batch_size, False, workers)
    return predict_loader_at(model, loader, plan, flip=flip, progress=progress)


def predict_dataset(
    model: nn.Module,
    dataset: TopDownDataset,
    decoders: Sequence[str],
    beta: float,
    batch_size: int = 32,
    workers: int = 0,
    flip: bool = False,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> DatasetPredictions:
    """:func:`predict_dataset_at` at one ``beta``: each of ``decoders`` on every item."""
    return predict_dataset_at(model, dataset, {beta: decoders}, batch_size, workers, flip, progress)[beta]


def headline(
    data: DatasetPredictions,
    name: str,
    schema: KeypointSchema,
    annotations: str | PathLike[str] | None = None,
) -> dict[str, Any]:
    """``pose.evaluation.summarize`` of decoder ``name`` on ground-truth boxes (AP from ``annotations``)."""
    visible, _ = visibility_masks(data.visibility)
    return summarize(
        data.preds[name],
        data.scores[name],
        data.keypoints_image,
        visible,
        xyxy_to_xywh(data.box),  # the data set's boxes are corners; PCK's box norms need w and h
        schema,
        image_ids=data.image_id,
        annotations=annotations,
    )


def score(
    data: DatasetPredictions,
    name: str,
    schema: KeypointSchema,
    annotations: str | PathLike[str] | None = None,
    detections: bool = False,
) -> dict[str, Any]:
    """Headline metrics of decoder ``name`` (:func:`headline`, plus the PCKh table for MPII-16).

    With ``detections`` (the items are detector boxes) only AP is defined: there is no instance matching.
    """
    pred, conf = data.preds[name], data.scores[name]
    if detections:
        ap = coco_ap(pred, conf, data.image_id, annotations, schema, box_scores=data.score)
        ap_value = None if ap is None else ap["AP"]
        undefined = dict.fromkeys(("pck@0.2", "pck_norm", "epe", "auc", *protocol_keys(schema)))
        return {**undefined, "ap": ap_value, "coco": ap, "n_instances": int(len(pred))}
    result = headline(data, name, schema, annotations)
    if schema.names == MPII_16.names:  # the MPII results row (README), head-segment norm
        visible, _ = visibility_masks(data.visibility)
        size = head_sizes(data.keypoints_image, visible, schema)
        row = pckh_table(pred, data.keypoints_image, visible, size, schema)
        result["pckh_table"] = {k: (v if np.isfinite(v) else None) for k, v in row.items()}
    return result


def splits(data: DatasetPredictions, name: str) -> dict[str, Any]:
    """Paper Table 1: EPE by box size, labelled joints and occlusion share for decoder ``name``."""
    visible, occluded = visibility_masks(data.visibility)
    errors = endpoint_errors(data.preds[name], data.keypoints_image)
    return difficulty_splits(errors, visible, np.sqrt(data.area), occluded)


def heatmap_report(data: DatasetPredictions) -> dict[str, Any]:
    """The logits against the zero-background assumption, over the labelled joints' maps: the mean and
    median background logit (> 6 heatmap px from the peak) and the share of maps with a second mode."""
    labelled = data.visibility > 0
    background = data.background[labelled & np.isfinite(data.background)]
    return {
        "background_mean": float(background.mean()) if background.size else None,
        "background_median": float(np.median(background)) if background.size else None,
        "second_mode_share": float(data.second_mode[labelled].mean()) if labelled.any() else None,
    }
