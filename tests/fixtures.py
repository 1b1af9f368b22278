"""Tiny COCO-format keypoint datasets made on the fly: one person per image, a coloured disc per joint;
also tiny MPII (JSON) and RHD (pickle) source files for the converters.

Each joint k is a filled disc of radius ``BLOB_RADIUS`` px in its own colour (``joint_colours``), so a
model can learn the joints and tests can find them; discs never overlap.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import cv2
import numpy as np

from pose.keypoints import COCO_17, MPII_16, KeypointSchema

BLOB_RADIUS = 3
BACKGROUND = 40  # grey level of the background (uint8), darker than every joint colour
_SHIFT = 4  # cv2 drawing with 4 fractional bits: discs are centred to 1/16 px


def joint_colours(num_keypoints: int) -> np.ndarray:
    """``(K, 3)`` uint8 BGR colours, distinct hues at full saturation and value."""
    hues = np.arange(num_keypoints) * 180 // max(num_keypoints, 1)  # OpenCV hue range is [0, 180)
    hsv = np.stack([hues, np.full_like(hues, 255), np.full_like(hues, 255)], axis=1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2BGR)[0]


def coco_category(schema: KeypointSchema, category_id: int = 1) -> dict:
    """The COCO ``categories`` entry for ``schema`` (1-based skeleton)."""
    return {
        "id": category_id,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(schema.names),
        "skeleton": [[i + 1, j + 1] for i, j in schema.skeleton],
    }


def _random_person(
    rng: np.random.Generator, k: int, size: tuple[int, int], unlabelled_prob: float
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Keypoints on a jittered grid inside a random box: ``(K, 2)`` 1/16-px coords, ``(K,)`` v, bbox."""
    height, width = size
    w, h = rng.uniform(0.45, 0.7) * width, rng.uniform(0.6, 0.85) * height
    x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    cells = rng.permutation(rows * cols)[:k]
    cell_w, cell_h = w / cols, h / rows
    # Jitter stays below (cell - 2 radius - 1) / 2, so discs in neighbouring cells never touch.
    jitter = max(0.0, (min(cell_w, cell_h) - 2 * BLOB_RADIUS - 1) / 2)
    centres = np.stack([x0 + (cells % cols + 0.5) * cell_w, y0 + (cells // cols + 0.5) * cell_h], axis=1)
    keypoints = np.round((centres + rng.uniform(-jitter, jitter, (k, 2))) * 16) / 16
    visibility = np.where(rng.random(k) < unlabelled_prob, 0, 2)
    return keypoints, visibility, [float(x0), float(y0), float(w), float(h)]


def draw_person(image: np.ndarray, keypoints: np.ndarray) -> None:
    """Draw the disc of every joint (labelled or not: the picture has them all) in place."""
    for colour, (x, y) in zip(joint_colours(len(keypoints)), keypoints, strict=True):
        centre = (int(round(x * 2**_SHIFT)), int(round(y * 2**_SHIFT)))
        cv2.circle(image, centre, BLOB_RADIUS * 2**_SHIFT, colour.tolist(), -1, cv2.LINE_AA, _SHIFT)


def make_coco_dataset(
    tmp_path: Path,
    n_images: int = 8,
    schema: KeypointSchema = COCO_17,
    size: tuple[int, int] = (96, 128),
    seed: int = 0,
    unlabelled_prob: float = 0.1,
) -> tuple[Path, Path]:
    """Write ``n_images`` PNG images and a COCO keypoint file under ``tmp_path``.

    Args:
        tmp_path: folder to write into (``annotations.json`` and ``images/``).
        n_images: images, one person each; image and annotation ids are ``1..n_images``.
        schema: keypoint schema of the category.
        size: ``(height, width)`` of every image.
        seed: seed of the layout.
        unlabelled_prob: chance that a joint is written as unlabelled (``v = 0``, x = y = 0).

    Returns:
        ``(annotations_path, images_dir)``.
    """
    rng = np.random.default_rng(seed)
    images_dir = Path(tmp_path) / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for n in range(1, n_images + 1):
        keypoints, visibility, bbox = _random_person(rng, schema.num_keypoints, size, unlabelled_prob)
        image = np.full((*size, 3), BACKGROUND, dtype=np.uint8)
        draw_person(image, keypoints)
        file_name = f"{n:06d}.png"
        cv2.imwrite(str(images_dir / file_name), image)
        images.append({"id": n, "file_name": file_name, "height": size[0], "width": size[1]})
        flat = [
            value
            for (x, y), v in zip(keypoints.tolist(), visibility.tolist(), strict=True)
            for value in ((x, y, 2) if v else (0.0, 0.0, 0))
        ]
        annotations.append(
            {
                "id": n,
                "image_id": n,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": bbox,
                "area": bbox[2] * bbox[3],
                "num_keypoints": int(np.sum(visibility > 0)),
                "keypoints": flat,
            }
        )
    annotations_path = Path(tmp_path) / "annotations.json"
    coco = {"images": images, "annotations": annotations, "categories": [coco_category(schema)]}
    annotations_path.write_text(json.dumps(coco))
    return annotations_path, images_dir


def make_mpii_source(tmp_path: Path, offset: float = 1.0) -> tuple[Path, Path, list[dict]]:
    """A tiny MPII JSON in the SimpleBaseline/HRNet layout (1-based when ``offset`` is 1) and its images.

    Three people in two images of different sizes; unlabelled joints are written as ``[-1, -1]`` with
    ``joints_vis`` 0. The third person's ``upper_neck`` is unlabelled, so it has no head size.

    Returns:
        ``(json_path, images_dir, people)``; ``people`` holds each person's 0-based ``joints`` ``(16, 2)``,
        ``labelled`` ``(16,)`` bool, ``image`` name and ``size`` ``(height, width)``.
    """
    rng = np.random.default_rng(5)
    images_dir = Path(tmp_path) / "mpii_images"
    images_dir.mkdir(parents=True, exist_ok=True)
    layout = [("000001.jpg", (120, 160)), ("000001.jpg", (120, 160)), ("000002.jpg", (100, 90))]
    pictures: dict[str, np.ndarray] = {}
    people, source = [], []
    for n, (name, size) in enumerate(layout):
        joints, _, _ = _random_person(rng, 16, size, 0.0)
        labelled = np.ones(16, dtype=bool)
        labelled[[0, 15]] = False  # an ankle and a wrist unlabelled
        if n == 2:
            labelled[MPII_16.index("upper_neck")] = False
        picture = pictures.setdefault(name, np.full((*size, 3), BACKGROUND, dtype=np.uint8))
        draw_person(picture, joints)
        extent = joints.max(axis=0) - joints.min(axis=0)
        written = np.where(labelled[:, None], joints + offset, -1.0)
        source.append(
            {
                "image": name,
                "joints": written.tolist(),
                "joints_vis": labelled.astype(int).tolist(),
                "center": (joints.mean(axis=0) + offset).tolist(),
                "scale": float(1.2 * extent[1] / 200.0),
            }
        )
        people.append({"joints": joints, "labelled": labelled, "image": name, "size": size})
    for name, picture in pictures.items():
        cv2.imwrite(str(images_dir / name), picture, [cv2.IMWRITE_JPEG_QUALITY, 95])
    path = Path(tmp_path) / "mpii.json"
    path.write_text(json.dumps(source))
    return path, images_dir, people


def make_rhd_source(tmp_path: Path, protocol: int = 2) -> tuple[Path, Path, dict[int, np.ndarray]]:
    """A tiny RHD ``anno_*.pickle`` (two samples, ids 0 and 7) and its 320x320 ``color/%05d.png`` images.

    Sample 0: left hand fully visible, right hand with no visible keypoint. Sample 7: left hand with
    five visible keypoints, right hand fully visible. Each value also has ``xyz`` and ``K`` like RHD's.

    Returns:
        ``(pickle_path, color_dir, uv_vis)`` with ``uv_vis[sample_id]`` the ``(42, 3)`` float32 array.
    """
    rng = np.random.default_rng(6)
    color_dir = Path(tmp_path) / "rhd" / "color"
    color_dir.mkdir(parents=True, exist_ok=True)
    samples, uv_vis_all = {}, {}
    for sample_id, visible_counts in ((0, (21, 0)), (7, (5, 21))):
        picture = np.full((320, 320, 3), BACKGROUND, dtype=np.uint8)
        hands = []
        for side, n_visible in enumerate(visible_counts):
            uv, _, _ = _random_person(rng, 21, (160, 160), 0.0)
            uv = uv + np.array([160.0 * side, 80.0])  # left hand in the left half, right in the right
            draw_person(picture, uv)
            visible = np.zeros(21, dtype=np.float32)
            visible[rng.permutation(21)[:n_visible]] = 1.0
            hands.append(np.concatenate([uv, visible[:, None]], axis=1))
        cv2.imwrite(str(color_dir / f"{sample_id:05d}.png"), picture)
        uv_vis = np.concatenate(hands).astype(np.float32)
        uv_vis_all[sample_id] = uv_vis
        xyz = rng.normal(size=(42, 3)).astype(np.float32)
        samples[sample_id] = {"xyz": xyz, "uv_vis": uv_vis, "K": np.eye(3, dtype=np.float32)}
    path = Path(tmp_path) / "rhd" / "anno_evaluation.pickle"
    path.write_bytes(pickle.dumps(samples, protocol=protocol))
    return path, color_dir, uv_vis_all


def save_tiny_pose_model(folder: Path, schema: KeypointSchema = COCO_17) -> Path:
    """A random Lite0 PoseModel at 64x64 input, saved in ``folder`` (returned).

    SimpleBaseline's head init gives near-constant logits; wider head weights make the maps differ.
    """
    import torch

    from pose.models import build_pose_model

    torch.manual_seed(0)
    model = build_pose_model("lite0", schema, input_size=(64, 64))
    with torch.no_grad():
        for layer in model.head.modules():
            if isinstance(layer, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                layer.weight.normal_(0.0, 0.05)
    model.save_pretrained(folder)
    return folder


def run_overrides(tiny_set: tuple[Path, Path], out_dir: Path, *extra: str) -> list[str]:
    """``key=value`` settings that train on a tiny set quickly (64x64 crops, batch 8, a quarter held
    out, no workers), then ``extra``."""
    ann, images = tiny_set
    return [
        f"train_annotations={ann}",
        f"train_images={images}",
        f"out_dir={out_dir}",
        "input_size=64,64",
        "batch_size=8",
        "num_workers=0",
        "warmup_steps=5",
        "val_fraction=0.25",
        *extra,
    ]
