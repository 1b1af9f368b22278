"""python -m training.shrink ANNOTATIONS IMAGES OUT: a compact copy of a COCO keypoint dataset.

Every image is downscaled so its longer side is at most ``--long-side`` pixels (never upscaled) and
re-encoded (WebP by default); keypoints, boxes and areas are rescaled to match, under the pixel-centre
convention of ``pose.geometry`` (x' = (x + 0.5) * s - 0.5). Image ids and annotations are kept, so the
seeded hold-out of ``training.run`` picks the same images from the copy. What it is for: moving a data
set to a GPU machine over a small transfer limit (LSPET: 167 MB of JPEG -> about 32 MB at 192 px).
The data's README.md, which carries its licence and citation, is copied along.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

ENCODINGS = {"webp": cv2.IMWRITE_WEBP_QUALITY, "jpg": cv2.IMWRITE_JPEG_QUALITY}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.shrink", description=__doc__.splitlines()[0])
    parser.add_argument("annotations", type=Path, help="COCO keypoint JSON")
    parser.add_argument("images", type=Path, help="folder the JSON's file_name entries are relative to")
    parser.add_argument("out", type=Path, help="new folder: annotations.json + images/")
    parser.add_argument("--long-side", type=int, default=192, help="largest side after shrinking, px")
    parser.add_argument("--format", choices=sorted(ENCODINGS), default="webp")
    parser.add_argument(
        "--quality", type=int, default=70, help="encoder quality, 1-100 (WebP: above 100 is lossless)"
    )
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


def shrink_image(
    src: Path, dst: Path, long_side: int, fmt: str, quality: int
) -> tuple[float, float, int, int]:
    """Write the shrunk ``src`` to ``dst`` -> (x scale, y scale, new width, new height)."""
    image = cv2.imread(str(src), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {src}")
    h, w = image.shape[:2]
    s = min(1.0, long_side / max(h, w))
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    if (nw, nh) != (w, h):  # INTER_AREA averages whole source pixels: the half-pixel-aligned downscale
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    if not cv2.imwrite(str(dst), image, [ENCODINGS[fmt], quality]):
        raise ValueError(f"cannot write {dst}")
    return nw / w, nh / h, nw, nh


def rescale_annotation(ann: dict[str, Any], sx: float, sy: float) -> dict[str, Any]:
    """Keypoints, box and area of one COCO annotation after an (sx, sy) resize of its image."""
    out = dict(ann)
    kp = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
    labelled = kp[:, 2] > 0  # unlabelled joints stay (0, 0, 0), as COCO writes them
    kp[labelled, 0] = (kp[labelled, 0] + 0.5) * sx - 0.5
    kp[labelled, 1] = (kp[labelled, 1] + 0.5) * sy - 0.5
    out["keypoints"] = [round(float(v), 3) for v in kp.ravel()]
    if "bbox" in ann:
        x, y, bw, bh = ann["bbox"]  # box edges are pixel corners: x = -0.5 is the left image edge
        out["bbox"] = [(x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, bw * sx, bh * sy]
    if "area" in ann:
        out["area"] = ann["area"] * sx * sy
    return out


def shrink(args: argparse.Namespace) -> dict[str, Any]:
    """Write the shrunk copy; returns its COCO dict."""
    coco = json.loads(args.annotations.read_text(encoding="utf-8"))
    (args.out / "images").mkdir(parents=True, exist_ok=True)
    names = [Path(image["file_name"]).with_suffix("." + args.format).name for image in coco["images"]]
    if len(set(names)) != len(names):
        raise ValueError("two images would get the same file name in the copy")
    job = partial(shrink_image, long_side=args.long_side, fmt=args.format, quality=args.quality)
    sources = [args.images / image["file_name"] for image in coco["images"]]
    targets = [args.out / "images" / name for name in names]
    with ProcessPoolExecutor(max(1, args.workers)) as pool:
        done = pool.map(job, sources, targets, chunksize=32)
        sizes = list(tqdm(done, total=len(sources), desc="shrinking"))
    scale = {}
    for image, name, (sx, sy, nw, nh) in zip(coco["images"], names, sizes, strict=True):
        image.update(file_name=name, width=nw, height=nh)
        scale[image["id"]] = (sx, sy)
    coco["annotations"] = [rescale_annotation(a, *scale[a["image_id"]]) for a in coco["annotations"]]
    (args.out / "annotations.json").write_text(json.dumps(coco), encoding="utf-8")
    note = args.annotations.parent / "README.md"
    if note.exists():
        shutil.copyfile(note, args.out / "README.md")
    return coco


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        coco = shrink(args)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: cannot shrink {args.annotations}: {err}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in (args.out / "images").iterdir())
    print(f"wrote {len(coco['images'])} images ({size / 2**20:.1f} MiB) and annotations.json to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
