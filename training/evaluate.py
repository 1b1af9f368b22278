"""python -m training.evaluate CHECKPOINT --annotations FILE.json --images DIR: score a PoseModel.

The network runs once over the set; every requested decoder reads the same logits. The last line
printed is one JSON object (see ``--help``); the difficulty splits (paper Table 1) go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from pose.data import TopDownDataset, make_loader
from pose.decode import DECODERS
from pose.evaluation import (
    coco_ap,
    difficulty_splits,
    endpoint_errors,
    format_splits_table,
    head_sizes,
    pckh_table,
    protocol_keys,
    summarize,
    visibility_masks,
)
from pose.geometry import apply_affine
from pose.inference import flip_test_logits
from pose.keypoints import MPII_16
from pose.models import CheckpointError, PoseModel


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Score a checkpoint (folder or Hub repo id) on a COCO-format keypoint set. The last "
        "line printed is JSON: pck@0.2, pck_norm, epe (image px), auc, ap, decoder, beta, n_instances; "
        "for MPII-16 also pckh@0.5, pckh@0.1, pckh_table; for hand-21 auc_0_30, rhd_epe_mean/median.",
    )
    parser.add_argument("checkpoint", help="PoseModel folder or Hugging Face Hub repo id")
    parser.add_argument("--annotations", required=True, help="COCO keypoint JSON (ground truth)")
    parser.add_argument("--images", required=True, help="folder of the images")
    parser.add_argument(
        "--decoder", default=None, help=f"one of {sorted(DECODERS)} or 'all' (default: the checkpoint's)"
    )
    parser.add_argument("--beta", type=float, default=None, help="softmax beta (default: the checkpoint's)")
    parser.add_argument(
        "--flip", action="store_true", help="flip test: average logits with the mirrored crop's"
    )
    parser.add_argument("--detections", default=None, help="COCO results JSON of person boxes (AP only)")
    parser.add_argument("--score-threshold", type=float, default=0.0, help="ignore detections below this")
    parser.add_argument("--split", default=None, help="a run's split.json: score only its held-out images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="evaluation.json", help="where to write all metrics and splits")
    return parser.parse_args(argv)


@torch.no_grad()
def collect(
    model: PoseModel,
    dataset: TopDownDataset,
    decoders: list[str],
    beta: float,
    batch_size: int = 32,
    workers: int = 0,
    flip: bool = False,
) -> dict[str, Any]:
    """One pass of the network; per decoder, predictions in image px ``(N, K, 2)`` and scores ``(N, K)``.

    Also returns the dataset's ``keypoints_image``, ``visibility``, ``box``, ``area``, ``image_id`` and
    ``score`` fields, stacked over all N items.
    """
    model.eval()
    device = next(model.parameters()).device
    loader = make_loader(dataset, batch_size, False, workers)
    flip_perm = torch.tensor(model.schema.flip, device=device) if flip else None
    preds: dict[str, list] = {name: [] for name in decoders}
    scores: dict[str, list] = {name: [] for name in decoders}
    fields: dict[str, list] = {
        key: [] for key in ("keypoints_image", "visibility", "box", "area", "image_id", "score")
    }
    for batch in tqdm(loader, desc="evaluating", dynamic_ncols=True, file=sys.stderr):
        logits = flip_test_logits(model, batch["image"].to(device), flip_perm).float()
        matrices = batch["matrix"].numpy()
        for name in decoders:
            coords, conf = DECODERS[name](logits, beta)
            preds[name].append(apply_affine(coords.cpu().numpy(), matrices))  # heatmap -> image px
            scores[name].append(conf.cpu().numpy())
        for key in fields:
            fields[key].append(batch[key].numpy())
    out = {key: np.concatenate(value) for key, value in fields.items()}
    out["preds"] = {name: np.concatenate(preds[name]) for name in decoders}
    out["scores"] = {name: np.concatenate(scores[name]) for name in decoders}
    return out


def score(data: dict[str, Any], name: str, dataset: TopDownDataset, args) -> dict[str, Any]:
    """Headline metrics of one decoder; with detection boxes only AP is defined (no instance matching)."""
    pred, conf = data["preds"][name], data["scores"][name]
    if args.detections:
        ap = coco_ap(pred, conf, data["image_id"], args.annotations, dataset.schema, box_scores=data["score"])
        ap_value = None if ap is None else ap["AP"]
        undefined = dict.fromkeys(("pck@0.2", "pck_norm", "epe", "auc", *protocol_keys(dataset.schema)))
        return {**undefined, "ap": ap_value, "coco": ap, "n_instances": int(len(pred))}
    visible, _ = visibility_masks(data["visibility"])
    gt, boxes = data["keypoints_image"], data["box"]
    result = summarize(
        pred,
        conf,
        gt,
        visible,
        boxes,
        dataset.schema,
        image_ids=data["image_id"],
        annotations=args.annotations,
    )
    if dataset.schema.names == MPII_16.names:  # the MPII results row (README), head-segment norm
        size = head_sizes(gt, visible, dataset.schema)
        row = pckh_table(pred, gt, visible, size, dataset.schema)
        result["pckh_table"] = {k: (v if np.isfinite(v) else None) for k, v in row.items()}
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model = PoseModel.from_pretrained(args.checkpoint, map_location=args.device).eval()
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    default = model.decoder
    decoders = sorted(DECODERS) if args.decoder == "all" else [args.decoder or default]
    if any(name not in DECODERS for name in decoders):
        print(
            f"error: --decoder must be one of {sorted(DECODERS)} or 'all', got {args.decoder!r}",
            file=sys.stderr,
        )
        return 2
    beta = model.beta if args.beta is None else args.beta
    dataset = TopDownDataset(
        args.annotations,
        args.images,
        input_size=model.input_size,
        mean=model.mean,
        std=model.std,
        detections=args.detections,
        score_threshold=args.score_threshold,
        image_ids=json.loads(Path(args.split).read_text())["val_image_ids"] if args.split else None,
    )
    data = collect(model, dataset, decoders, beta, args.batch_size, args.workers, args.flip)
    results = {name: score(data, name, dataset, args) for name in decoders}
    report: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "beta": beta,
        "flip": args.flip,
        "decoders": results,
    }
    if not args.detections:
        report["splits"] = {name: splits(data, name) for name in decoders}
        for name in decoders:
            print(f"\nEPE by difficulty, decoder {name} (image px):")
            print(format_splits_table(report["splits"][name]))
    _print_table(results)
    Path(args.out).write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
    primary = default if default in results else decoders[0]
    headline = {k: v for k, v in results[primary].items() if k != "coco"}
    others = {
        name: {k: v for k, v in r.items() if k != "coco"} for name, r in results.items() if name != primary
    }
    print(
        json.dumps(
            {
                **headline,
                "decoder": primary,
                "beta": beta,
                "flip": args.flip,
                **({"others": others} if others else {}),
            }
        )
    )
    return 0


def splits(data: dict[str, Any], name: str) -> dict[str, Any]:
    """Paper Table 1: EPE by box size, labelled joints and occlusion share for decoder ``name``."""
    visible, occluded = visibility_masks(data["visibility"])
    errors = endpoint_errors(data["preds"][name], data["keypoints_image"])
    return difficulty_splits(errors, visible, np.sqrt(data["area"]), occluded)


def _print_table(results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'decoder':<10} {'PCK@0.2':>8} {'EPE px':>8} {'AUC':>7} {'AP':>7}")
    for name, r in results.items():
        cells = [r.get(k) for k in ("pck@0.2", "epe", "auc", "ap")]
        print(f"{name:<10} " + " ".join(f"{'-' if v is None else f'{v:.4f}':>8}" for v in cells))
    tables = {name: r["pckh_table"] for name, r in results.items() if r.get("pckh_table")}
    if tables:
        columns = list(next(iter(tables.values())))
        print("\nPCKh@0.5 (%), head size = |head_top - upper_neck|:")
        print(f"{'decoder':<10} " + " ".join(f"{c:>8}" for c in columns))
        for name, row in tables.items():
            cells = ["-" if row[c] is None else f"{100 * row[c]:.1f}" for c in columns]
            print(f"{name:<10} " + " ".join(f"{cell:>8}" for cell in cells))


if __name__ == "__main__":
    sys.exit(main())
