"""python -m benchmarks.blazepose_decoders ANNOTATIONS IMAGES: PCK@0.2 of BlazePose Full's heatmaps (the app's
second model, assets/blazepose) decoded by argmax, integral and debiased at several betas, on LSPET people.

The people are the first ``--people`` of the trainer's held-out split (``val_fraction`` 0.1, seed 0), on
square crops 1.5 x their box (``pose.blazepose``); the 12 limb joints count (BlazePose has no neck or head
top). Joints are also split by whether BlazePose's map has a second mode
(``pose.evaluation.heatmaps.second_modes``): the compensation removes a flat background's pull,
not a second peak's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from pose.blazepose import BlazePoseHeatmaps
from pose.decode import DECODERS
from pose.evaluation.heatmaps import second_modes
from pose.evaluation.metrics import pck, pck_norms
from pose.geometry import heatmap_to_image
from pose.inference import Predictor
from pose.keypoints import LSP_14
from training.config import TrainConfig
from training.trainer import _split_image_ids

MODEL = Path(__file__).resolve().parent.parent / "assets" / "blazepose" / "pose_landmark_full.tflite"
# LSP-14 joint -> COCO-17 joint (the adapter's output); LSP's neck (12) and head top (13) have none.
LSP_TO_COCO = (16, 14, 12, 11, 13, 15, 10, 8, 6, 5, 7, 9)


def people(annotations: Path, count: int) -> tuple[list[dict], dict[int, str]]:
    """The first ``count`` held-out annotations with a box and at least one labelled limb joint."""
    coco = json.loads(annotations.read_text(encoding="utf-8"))
    _, val_ids = _split_image_ids(TrainConfig(train_annotations=str(annotations), val_fraction=0.1, seed=0))
    held_out = set(val_ids)
    chosen = [
        a
        for a in sorted(coco["annotations"], key=lambda a: a["id"])
        if a["image_id"] in held_out and min(a["bbox"][2:]) > 1 and any(a["keypoints"][2:36:3])
    ][:count]
    return chosen, {image["id"]: image["file_name"] for image in coco["images"]}


def run(annotations: Path, images: Path, count: int) -> tuple[torch.Tensor, np.ndarray, np.ndarray, list]:
    """BlazePose on every chosen person: ``(heatmaps (N, 17, 64, 64), gt (N, 14, 3) image px and
    visibility, boxes (N, 4) x y w h, the N crops)``."""
    chosen, files = people(annotations, count)
    predictor = Predictor(BlazePoseHeatmaps(MODEL, threads=1))
    maps, crops = [], []
    for ann in chosen:
        bgr = cv2.imread(str(images / files[ann["image_id"]]), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"cannot read {images / files[ann['image_id']]}")
        x, y, w, h = ann["bbox"]
        predictor.predict(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), [[x, y, x + w, y + h]])
        maps.append(predictor.logits)
        crops.append(predictor.crops[0])
    gt = np.array([np.reshape(a["keypoints"], (14, 3)) for a in chosen], dtype=np.float64)
    boxes = np.array([a["bbox"] for a in chosen], dtype=np.float64)
    return torch.cat(maps), gt, boxes, crops


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.blazepose_decoders", description=__doc__)
    parser.add_argument("annotations", type=Path)
    parser.add_argument("images", type=Path)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--betas", type=float, nargs="+", default=[1.0, 3.0, 10.0, 30.0, 100.0])
    args = parser.parse_args(argv)
    maps, gt, boxes, crops = run(args.annotations, args.images, args.people)
    visible = gt[:, :12, 2] > 0
    norm, _, kind = pck_norms(gt[:, :, :2], gt[:, :, 2] > 0, LSP_14, boxes)
    second = second_modes(maps).numpy()[:, list(LSP_TO_COCO)]  # (N, 12)
    print(
        f"{len(gt)} people, {int(visible.sum())} limb joints, norm {kind}; "
        f"{second[visible].mean():.0%} of the joints' maps have a second mode"
    )
    print("beta     decoder    PCK@0.2  (one mode / second mode)")
    for beta in args.betas:
        for name in ("argmax", "integral", "debiased") if beta == args.betas[0] else ("integral", "debiased"):
            coords, _ = DECODERS[name](maps, beta)
            pred = np.stack(
                [heatmap_to_image(c, crop, (64, 64)) for c, crop in zip(coords.numpy(), crops, strict=True)]
            )
            pred = pred[:, list(LSP_TO_COCO)]
            scores = [pck(pred, gt[:, :12, :2], visible & mask, norm) for mask in (True, ~second, second)]
            print(f"{beta:<8g} {name:<10} {scores[0]:.3f}    ({scores[1]:.3f} / {scores[2]:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
