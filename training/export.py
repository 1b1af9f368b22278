"""python -m training.export RUN OUT [--float16]: a finished training run -> a PoseModel folder to ship.

Scores the run's model on its held-out images with every decoder (one network pass, so the decoders
read the same logits), optionally stores float16 weights once the decode is shown to move by at most
``--tolerance`` image pixels, and writes the model card (data note, split, recipe, metrics, citations)
with the run's config, split and per-epoch log beside the weights. Nothing in RUN is changed.
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pose.data import CropSpec, Selection, TopDownDataset
from pose.decode import DECODERS
from pose.evaluation.predictions import (
    DatasetPredictions,
    heatmap_report,
    predict_dataset,
    predict_dataset_at,
    score,
)
from pose.models import CheckpointError, PoseModel
from training.config import ConfigError, load_config
from training.evaluate import progress_bar
from training.modelcard import stage_files, write_release_card
from training.trainer import selection_score

# The low beta at which the card shows the bias: integral (J_r) is pulled toward the crop centre, while
# debiased (J_o) stays put on logits whose background is zero (the paper's Eq. 6-8).
LOW_BETA = 3.0

# Copied from the run folder into the shipped one, under these names.
RUN_FILES = {
    "config.yaml": "training_config.yaml",
    "split.json": "split.json",
    "metrics.jsonl": "training_log.jsonl",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a training run folder (config.yaml, split.json, metrics.jsonl, model/)")
    parser.add_argument("out", help="the folder to write (created; files in it are replaced)")
    parser.add_argument("--checkpoint", default="model", help="PoseModel folder inside RUN (default: model)")
    parser.add_argument("--float16", action="store_true", help="store float16 weights (half the size)")
    parser.add_argument(
        "--tolerance", type=float, default=0.01, help="largest decode shift float16 may cause, image px"
    )
    parser.add_argument(
        "--annotations", help="score the held-out image ids on this file instead of the run's (with --images)"
    )
    parser.add_argument("--images", help="its image folder: e.g. the originals of a training.shrink copy")
    parser.add_argument(
        "--init-run",
        action="append",
        default=[],
        help="a run this one descends from through init_from, earliest first (repeat for each stage): "
        "its config and log ship as stageK_*",
    )
    parser.add_argument(
        "--flip", action="store_true", help="also score the flip test the app runs (mirror crops averaged in)"
    )
    parser.add_argument(
        "--notes", help="a Markdown file for the card's Recipe section: earlier stages, hardware, findings"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if (args.annotations is None) != (args.images is None):
        parser.error("--annotations and --images go together")
    return args


def held_out_set(
    run: Path, model: PoseModel, annotations: str | None = None, images: str | None = None
) -> tuple[TopDownDataset, str]:
    """The run's validation images (its split.json) as a dataset, and the annotation file they come from;
    ``annotations``/``images`` replace the run's files (same image ids, e.g. full-size originals)."""
    config = load_config(run / "config.yaml")
    split = json.loads((run / "split.json").read_text(encoding="utf-8"))
    if annotations is None:
        annotations = split.get("val_annotations", config.train_annotations)
        images = config.val_images if "val_annotations" in split else config.train_images
    crop = CropSpec(input_size=model.input_size, mean=model.mean, std=model.std)
    dataset = TopDownDataset(annotations, images, crop, Selection(image_ids=split.get("val_image_ids")))
    return dataset, annotations


def checkpoint_provenance(run: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Which weights ship: the checkpoint, the epoch they come from (1-based), the epochs the log holds."""
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    if not log:
        raise ValueError(f"{run / 'metrics.jsonl'} is empty: nothing was trained")
    epoch = log[-1]["epoch"] + 1
    if args.checkpoint == "best":  # the trainer keeps the epoch with the highest selection score
        scored = [(selection_score(r), r["epoch"] + 1) for r in log if selection_score(r) is not None]
        epoch = max(scored, key=lambda pair: pair[0])[1]
    provenance = {"checkpoint": args.checkpoint, "epoch": epoch, "epochs_logged": len(log)}
    if all("seconds" in r for r in log):  # training + validation time, for the card's recipe
        provenance["minutes"] = round(sum(r["seconds"] for r in log) / 60, 1)
        provenance["finished"] = log[-1].get("time")
    for init_run in args.init_run:
        if not (Path(init_run) / "metrics.jsonl").exists():
            raise ValueError(f"--init-run {init_run} has no metrics.jsonl")
    if args.init_run:
        provenance["init_runs"] = args.init_run
    return provenance


def held_out_scores(
    model: PoseModel, dataset: TopDownDataset, annotations: str, batching: dict, flip: bool = False
) -> tuple[DatasetPredictions, dict[str, Any]]:
    """Every decoder at the model's beta and the two integral decoders at ``LOW_BETA``, from one network
    pass (all decoders read the same logits); with ``flip``, on logits averaged with the mirrored crops'.

    Returns:
        the predictions at the model's beta, and ``{"decoders": {name: metrics}, "low_beta": {"beta": 3.0,
        "debiased": metrics, "integral": metrics}}``.
    """
    integrals = ["debiased", "integral"]
    plan = {LOW_BETA: integrals, model.beta: sorted(DECODERS)}  # one entry when the model's beta is LOW_BETA
    at = predict_dataset_at(model, dataset, plan, flip=flip, **batching)
    data, low = at[model.beta], at[LOW_BETA]
    return data, {
        "decoders": {name: score(data, name, dataset.schema, annotations) for name in data.preds},
        "low_beta": {"beta": LOW_BETA, **{n: score(low, n, dataset.schema, annotations) for n in integrals}},
    }


def float16_copy(model: PoseModel, folder: Path) -> PoseModel:
    """Save ``model`` with float16 weights in ``folder``; load them back (float32 maths, rounded weights)."""
    copy.deepcopy(model).half().save_pretrained(folder)
    return PoseModel.from_pretrained(str(folder))


def decode_shift(a: DatasetPredictions, b: DatasetPredictions) -> dict[str, dict[str, float]]:
    """Per decoder, how far ``b``'s predictions moved from ``a``'s: max and 99.9th percentile, image px."""
    shift = {}
    for name in a.preds:
        d = np.linalg.norm(b.preds[name] - a.preds[name], axis=-1).ravel()
        shift[name] = {"max": float(d.max()), "p99.9": float(np.percentile(d, 99.9))}
    return shift


def judge_float16(shift: dict[str, dict[str, float]], decoder: str, tolerance: float) -> dict[str, Any]:
    """The card's precision record: float16 when no ``decoder`` keypoint moved more than ``tolerance`` px."""
    worst = shift[decoder]["max"]  # argmax jumps between near-equal peaks: reported, not judged
    if worst > tolerance:
        print(f"float16 moves a {decoder} keypoint by {worst:.4f} px > {tolerance}: keeping float32")
        return {"dtype": "float32", "float16_rejected": shift, "tolerance_px": tolerance}
    return {"dtype": "float16", "decode_shift_px": shift, "tolerance_px": tolerance}


def copy_run_files(run: Path, out: Path, init_runs: list[str]) -> None:
    """The run's config, split and log into ``out`` (``RUN_FILES``); the k-th init run's (1 = earliest) as
    ``stage{k}_config.yaml`` and ``stage{k}_log.jsonl`` (``stage_files``)."""
    for src, dst in RUN_FILES.items():
        shutil.copyfile(run / src, out / dst)
    for stage, init_run in enumerate(init_runs, 1):
        # split.json: the same ids by construction (same images, same split seed)
        for src, dst in zip(("config.yaml", "metrics.jsonl"), stage_files(stage), strict=True):
            shutil.copyfile(Path(init_run) / src, out / dst)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run, out = Path(args.run), Path(args.out)
    try:
        model = PoseModel.from_pretrained(str(run / args.checkpoint)).eval()
        dataset, annotations = held_out_set(run, model, args.annotations, args.images)
        provenance = checkpoint_provenance(run, args)
        notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else None
    except (CheckpointError, ConfigError, OSError, KeyError, ValueError) as err:
        print(f"error: cannot export {run}: {err}", file=sys.stderr)
        return 2
    batching = {"batch_size": args.batch_size, "workers": args.workers, "progress": progress_bar}
    data, scores = held_out_scores(model, dataset, annotations, batching)
    metrics = scores["decoders"]
    if args.flip:  # the app's default: each crop's logits averaged with its mirror image's
        scores["flip"] = held_out_scores(model, dataset, annotations, batching, flip=True)[1]
    out.mkdir(parents=True, exist_ok=True)
    precision: dict[str, Any] = {"dtype": "float32"}
    if args.float16:
        half = float16_copy(model, out)
        shift = decode_shift(data, predict_dataset(half, dataset, sorted(DECODERS), model.beta, **batching))
        precision = judge_float16(shift, model.decoder, args.tolerance)
    if precision["dtype"] == "float32":
        model.save_pretrained(out)
    copy_run_files(run, out, args.init_run)
    evaluation = {
        "decoders": metrics,
        "n_images": len(set(data.image_id.tolist())),
        "scored_on": annotations,
        "precision": precision,
        "low_beta": scores["low_beta"],
        "heatmaps": heatmap_report(data),
        **provenance,
        **({"flip": scores["flip"]} if args.flip else {}),
    }
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2, allow_nan=False), encoding="utf-8")
    write_release_card(out, load_config(run / "config.yaml"), evaluation, annotations, notes)
    size = (out / "model.safetensors").stat().st_size / 2**20
    print(
        json.dumps(
            {
                "out": str(out),
                "dtype": precision["dtype"],
                "size_mib": round(size, 2),
                **{f"{n}_pck@0.2": m["pck@0.2"] for n, m in metrics.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
