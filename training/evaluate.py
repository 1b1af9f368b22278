"""python -m training.evaluate CHECKPOINT --annotations FILE.json --images DIR: score a PoseModel.

The network runs once over the set; every requested decoder reads the same logits. The last line
printed is one JSON object (see ``--help``); all metrics and the difficulty splits (paper Table 1) are
written to ``--out`` when it is given (an existing file only with ``--force``). Every argument is checked
before the network runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pose.data import CropSpec, Selection, TopDownDataset
from pose.decode import DECODERS
from pose.evaluation import format_splits_table
from pose.evaluation.predictions import heatmap_report, predict_dataset, score, splits
from pose.keypoints import schema_from_coco_file
from pose.models import CheckpointError, PoseModel


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Score a checkpoint (folder or Hub repo id) on a COCO-format keypoint set. The last "
        "line printed is JSON: pck@0.2, pck_norm, epe (image px), auc, ap, decoder, beta, input_size, "
        "n_instances; for MPII-16 also pckh@0.5, pckh@0.1, pckh_table; for hand-21 auc_0_30, "
        "rhd_epe_mean/median.",
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
    parser.add_argument(
        "--input-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="score the weights at another crop size, both divisible by 32 (default: the checkpoint's)",
    )
    parser.add_argument("--detections", default=None, help="COCO results JSON of person boxes (AP only)")
    parser.add_argument("--score-threshold", type=float, default=0.0, help="ignore detections below this")
    parser.add_argument("--split", default=None, help="a run's split.json: score only its held-out images")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--out", default=None, help="write all metrics and splits to this JSON file (default: none written)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    return parser.parse_args(argv)


def progress_bar(batches: Iterable) -> Iterable:
    """The "evaluating" bar on stderr (stdout's last line is the JSON)."""
    return tqdm(batches, desc="evaluating", dynamic_ncols=True, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        model, dataset, decoders = prepare(args)
    except (CheckpointError, EvaluationError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    beta = model.beta if args.beta is None else args.beta
    data = predict_dataset(
        model, dataset, decoders, beta, args.batch_size, args.workers, args.flip, progress=progress_bar
    )
    results = {
        name: score(data, name, dataset.schema, args.annotations, detections=bool(args.detections))
        for name in decoders
    }
    report: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "beta": beta,
        "flip": args.flip,
        "input_size": list(model.input_size),
        "decoders": results,
    }
    report["heatmaps"] = heatmap_report(data)
    if not args.detections:
        report["splits"] = {name: splits(data, name) for name in decoders}
        for name in decoders:
            print(f"\nEPE by difficulty, decoder {name} (image px):")
            print(format_splits_table(report["splits"][name]))
    _print_table(results)
    if report["heatmaps"]["background_mean"] is not None:
        h = report["heatmaps"]
        print(
            f"logits > 6 heatmap px from each peak: mean {h['background_mean']:+.4f}, median "
            f"{h['background_median']:+.4f} (the compensation assumes 0); maps with a second mode: "
            f"{h['second_mode_share']:.1%}"
        )
    if args.out:  # "x": a file that appeared while the network ran is not overwritten either
        with open(args.out, "w" if args.force else "x", encoding="utf-8") as f:
            f.write(json.dumps(report, indent=2, allow_nan=False))
        print(f"wrote {args.out}", file=sys.stderr)
    primary = model.decoder if model.decoder in results else decoders[0]
    headline = {k: v for k, v in results[primary].items() if k != "coco"}
    others = {
        name: {k: v for k, v in r.items() if k != "coco"} for name, r in results.items() if name != primary
    }
    summary = {**headline, "decoder": primary, "beta": beta, "flip": args.flip}
    summary.update(input_size=report["input_size"], **report["heatmaps"])
    print(json.dumps({**summary, **({"others": others} if others else {})}))
    return 0


class EvaluationError(ValueError):
    """Arguments that cannot be evaluated; the message names the file or option and the fix."""


def prepare(args: argparse.Namespace) -> tuple[PoseModel, TopDownDataset, list[str]]:
    """Check every argument and load the model and the data set, before the network runs at all.

    Raises:
        CheckpointError: the checkpoint cannot be loaded.
        EvaluationError: a missing file or folder, an --out that exists (without --force), an unknown
            decoder, an --input-size not divisible by 32, or annotations of other keypoints than the
            model predicts.
    """
    if args.out and Path(args.out).exists() and not args.force:
        raise EvaluationError(f"--out {args.out} exists; choose another file or add --force to overwrite it")
    for option, path in (("--annotations", args.annotations), ("--detections", args.detections)):
        if path and not Path(path).is_file():
            raise EvaluationError(f"{option}: no such file {path!r}")
    if not Path(args.images).is_dir():
        raise EvaluationError(f"--images: no such folder {args.images!r}; give the folder of the images")
    model = PoseModel.from_pretrained(args.checkpoint, map_location=args.device).eval()
    if args.input_size:
        try:
            model.input_size = tuple(args.input_size)
        except ValueError as err:
            raise EvaluationError(f"--input-size: {err}") from None
    decoders = sorted(DECODERS) if args.decoder == "all" else [args.decoder or model.decoder]
    if any(name not in DECODERS for name in decoders):
        raise EvaluationError(f"--decoder must be one of {sorted(DECODERS)} or 'all', got {args.decoder!r}")
    _check_schema(model, args.annotations)
    select = Selection(
        image_ids=_held_out_ids(args.split) if args.split else None,
        detections=args.detections,
        score_threshold=args.score_threshold,
    )
    crop = CropSpec(input_size=model.input_size, mean=model.mean, std=model.std)
    dataset = TopDownDataset(args.annotations, args.images, crop, select)
    if len(dataset) == 0:
        raise EvaluationError(
            f"nothing to evaluate: no person of {args.annotations} has its image in {args.images} "
            f"({dict(dataset.problems) or 'no annotated person'}); check --images and --split"
        )
    return model, dataset, decoders


def _check_schema(model: PoseModel, annotations: str) -> None:
    """The annotation file has the keypoints the model predicts (same names, same order)."""
    try:
        schema = schema_from_coco_file(annotations)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:  # bad JSON: ValueError
        raise EvaluationError(
            f"--annotations: cannot read a COCO keypoint file from {annotations} ({err})"
        ) from None
    if schema.names != model.schema.names:
        raise EvaluationError(
            f"the model predicts {model.schema.num_keypoints} keypoints ({model.schema.name}) but "
            f"{annotations} has {schema.num_keypoints} ({', '.join(schema.names[:3])}, ...); evaluate it on "
            "annotations of its own keypoints"
        )


def _held_out_ids(split: str) -> list[int]:
    """The ``val_image_ids`` of a run's split.json."""
    try:
        return [int(i) for i in json.loads(Path(split).read_text(encoding="utf-8"))["val_image_ids"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise EvaluationError(f"--split: cannot read val_image_ids from {split} ({err})") from None


def _print_table(results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'decoder':<10} {'PCK@0.2':>8} {'torso':>8} {'L/R tol':>8} {'EPE px':>8} {'AUC':>8} {'AP':>8}")
    for name, r in results.items():
        cells = [r.get(k) for k in ("pck@0.2", "pck@0.2_torso", "pck@0.2_lr_tolerant", "epe", "auc", "ap")]
        print(f"{name:<10} " + " ".join(f"{'-' if v is None else f'{v:.4f}':>8}" for v in cells))
    first = next(iter(results.values()))
    if first.get("pck_fallback"):
        print(
            f"PCK@0.2 scores all {first['pck_n_instances']} people: {first['pck_n_fallback']} without a "
            f"labelled torso diagonal are normalised by {first['pck_fallback']}; 'torso' leaves them out."
        )
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
