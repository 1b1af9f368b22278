"""python -m training.convert mpii|rhd SRC OUT.json: MPII (SimpleBaseline/HRNet JSON) and RHD (pickle)
annotations -> COCO-format keypoint JSON with the MPII-16 / hand-21 schema, readable by TopDownDataset.

RHD files are pickles: convert only files you trust. They are read with a restricted unpickler that
builds numpy arrays and builtin containers only, so a crafted pickle is refused instead of run.
"""

from __future__ import annotations

import argparse
import codecs
import functools
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pose.keypoints import HAND_21, MPII_16, KeypointSchema

RHD_IMAGE_SIZE = (320, 320)  # (height, width) of every RHD image
RHD_BOX_PAD = 0.1  # each side of a hand box moves out by this fraction of its longer side


class ConversionError(ValueError):
    """A source file that cannot be converted; the message names the file and the problem."""


def category(schema: KeypointSchema, name: str) -> dict[str, Any]:
    """The COCO ``categories`` entry (id 1) of ``schema``, with its 1-based skeleton in schema order."""
    return {
        "id": 1,
        "name": name,
        "supercategory": name,
        "keypoints": list(schema.names),
        "skeleton": [[i + 1, j + 1] for i, j in schema.skeleton],
    }


def _annotation(ann_id: int, image_id: int, keypoints: np.ndarray, flags: np.ndarray, box) -> dict:
    """A COCO annotation: ``keypoints`` ``(K, 2)`` px, ``flags`` ``(K,)`` COCO v; unlabelled -> 0, 0, 0."""
    flat: list[float] = []
    for (x, y), f in zip(keypoints.tolist(), flags.tolist(), strict=True):
        flat += [x, y, int(f)] if f > 0 else [0.0, 0.0, 0]
    x, y, w, h = (float(v) for v in box)
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h],
            "area": w * h, "num_keypoints": int(np.sum(flags > 0)), "keypoints": flat}  # fmt: skip


def _clipped_xywh(x0: float, y0: float, x1: float, y1: float, size: tuple[int, int]) -> list[float]:
    """Box corners clipped to an image of ``size`` ``(height, width)``, as COCO ``[x, y, w, h]``."""
    height, width = size
    x0, x1 = np.clip([x0, x1], 0.0, width)
    y0, y1 = np.clip([y0, y1], 0.0, height)
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


# --- MPII -------------------------------------------------------------------------------------------------


def _array(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != shape or not np.all(np.isfinite(array)):
        got = "non-numbers" if array is None else f"shape {array.shape}"
        raise ConversionError(f"{where} must be finite numbers of shape {shape}, got {got}")
    return array


def _mpii_person(person: Any, where: str) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, float]:
    """Check one MPII entry: ``(image, joints (16, 2), labelled (16,) bool, center (2,), scale)``."""
    if not isinstance(person, dict):
        raise ConversionError(f"{where}: expected an object, got {type(person).__name__}")
    missing = [k for k in ("image", "joints", "joints_vis", "center", "scale") if k not in person]
    if missing:
        raise ConversionError(f"{where}: missing keys {missing}")
    if not isinstance(person["image"], str) or not person["image"]:
        raise ConversionError(f"{where}: 'image' must be a file name, got {person['image']!r}")
    joints = _array(person["joints"], (16, 2), f"{where}: 'joints'")
    labelled = _array(person["joints_vis"], (16,), f"{where}: 'joints_vis'") > 0
    center = _array(person["center"], (2,), f"{where}: 'center'")
    scale = _array(person["scale"], (), f"{where}: 'scale'")
    if scale <= 0:
        raise ConversionError(f"{where}: 'scale' must be > 0, got {float(scale)}")
    return person["image"], joints, labelled, center, float(scale)


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, from its header when Pillow is installed, else by decoding."""
    try:
        from PIL import Image  # optional: reads only the header

        with Image.open(path) as image:
            return image.height, image.width
    except ImportError:
        pass
    except OSError as err:
        raise ConversionError(f"{path}: not a readable image ({err})") from None
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ConversionError(f"{path}: missing or not a readable image")
    return image.shape[0], image.shape[1]


def _mpii_image_size(images_dir: str | Path | None, name: str, where: str) -> tuple[int, int] | None:
    """The size of ``images_dir / name``; None without ``images_dir``."""
    if images_dir is None:
        return None
    try:
        return image_size(Path(images_dir) / name)
    except ConversionError as err:
        raise ConversionError(f"{where}: {err}") from None


def convert_mpii(
    src: str | Path,
    images_dir: str | Path | None = None,
    default_size: tuple[int, int] | None = None,
    offset: float = 1.0,
) -> dict[str, Any]:
    """MPII JSON (a list of people: ``image``, ``joints``, ``joints_vis``, ``center``, ``scale``) -> COCO.

    Conventions: the JSON holds MATLAB's 1-based pixel coordinates (SimpleBaseline/HRNet subtract 1 when
    they load it), so ``offset`` (default 1) is subtracted from joints and centre. Labelled joints
    (``joints_vis > 0``) get ``v = 2`` (the JSON does not mark occlusion), the others ``0, 0, 0``. The box
    is those codebases' crop before their 1.25 enlargement (TopDownDataset's ``padding`` applies it): a
    square of side ``200 * scale`` px about the centre moved down by ``15 * scale`` px, clipped to the image.

    Args:
        src: The MPII JSON file (e.g. ``train.json``, ``valid.json``).
        images_dir: Folder of the images; each image's size is read from its file.
        default_size: ``(height, width)`` for every image, used when ``images_dir`` is None.
        offset: Subtracted from joint and centre coordinates (1 for the 1-based JSON, 0 if already 0-based).

    Raises:
        ConversionError: On a malformed file, an unreadable image, or no way to know image sizes.
    """
    try:
        people = json.loads(Path(src).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConversionError(f"{src}: not a readable JSON file ({err})") from None
    if not isinstance(people, list):
        raise ConversionError(f"{src}: expected a JSON list of people, got {type(people).__name__}")
    if images_dir is None and default_size is None:
        raise ConversionError(f"{src}: MPII images differ in size; pass --images DIR or --image-size W H")
    images: dict[str, dict[str, Any]] = {}
    annotations = []
    for n, person in enumerate(people):
        name, joints, labelled, center, scale = _mpii_person(person, f"{src}: person {n}")
        if name not in images:
            size = _mpii_image_size(images_dir, name, f"{src}: person {n}") or default_size
            images[name] = {"id": len(images) + 1, "file_name": name, "height": size[0], "width": size[1]}
        image = images[name]
        cx, cy = center - offset
        cy += 15.0 * scale  # SimpleBaseline/HRNet move the centre down so the crop keeps the feet
        half = 100.0 * scale
        box = _clipped_xywh(cx - half, cy - half, cx + half, cy + half, (image["height"], image["width"]))
        flags = np.where(labelled, 2, 0)
        annotations.append(_annotation(n + 1, image["id"], joints - offset, flags, box))
    return {
        "images": list(images.values()),
        "annotations": annotations,
        "categories": [category(MPII_16, "person")],
    }


# --- RHD --------------------------------------------------------------------------------------------------


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes, restricted to latin-1."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin-1")


@functools.cache
def _safe_globals() -> dict[tuple[str, str], Any]:
    """What an RHD pickle may name: numpy's array/scalar rebuilders (numpy 1.x and 2.x module paths),
    a few builtin types (Python 3 and Python 2 names) and latin-1 ``_codecs.encode``."""
    array = np.zeros(1)
    reconstruct, scalar = array.__reduce__()[0], np.float64(0).__reduce__()[0]
    frombuffer = array.__reduce_ex__(5)[0]  # protocol 5 pickles name numpy's _frombuffer
    safe = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        safe[(f"{core}.multiarray", "_reconstruct")] = reconstruct
        safe[(f"{core}.multiarray", "scalar")] = scalar
        safe[(f"{core}.numeric", "_frombuffer")] = frombuffer
    for module in ("builtins", "__builtin__"):
        for kind in (set, frozenset, bytearray, complex):
            safe[(module, kind.__name__)] = kind
    safe[("_codecs", "encode")] = _latin1_bytes
    return safe


class SafeUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays/scalars and builtin containers and numbers; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        safe = _safe_globals().get((module, name))
        if safe is None:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: only numpy arrays and builtin values are allowed"
            )
        return safe


def load_rhd(src: str | Path) -> dict[int, np.ndarray]:
    """Read an RHD annotation pickle safely: ``{sample_id: uv_vis (42, 3) float64}`` (u, v px; visible).

    Raises:
        ConversionError: If the file is unreadable, refused (a global other than numpy's), not a dict of
            ``{int: {"uv_vis": (42, 3) array, ...}}``, or has non-finite values.
    """
    try:
        with open(src, "rb") as f:
            data = SafeUnpickler(f, encoding="latin1").load()  # latin1: how Python 2 numpy pickles load
    except Exception as err:  # broken pickles raise many types (EOFError, KeyError, struct errors...)
        raise ConversionError(f"{src}: not a readable RHD pickle ({err})") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{src}: expected a dict of samples, got {type(data).__name__}")
    samples = {}
    for key, sample in data.items():
        if isinstance(key, bool) or not isinstance(key, int | np.integer) or key < 0:
            raise ConversionError(f"{src}: sample ids must be integers >= 0, got {key!r}")
        where = f"{src}: sample {key}"
        if not isinstance(sample, dict) or "uv_vis" not in sample:
            raise ConversionError(f"{where}: expected a dict with key 'uv_vis'")
        samples[int(key)] = _array(sample["uv_vis"], (42, 3), f"{where}: 'uv_vis'")
    return samples


def convert_rhd(src: str | Path, min_visible: int = 1, keep_occluded: bool = False) -> dict[str, Any]:
    """RHD ``anno_*.pickle`` -> COCO: one hand-21 instance per hand with ``>= min_visible`` visible keypoints.

    Keypoints 0-20 are the left hand, 21-41 the right; image ``id = sample_id + 1``, file
    ``%05d.png`` (in RHD's ``color/``), 320x320. Visible keypoints get ``v = 2``; occluded ones ``0, 0, 0``
    (RHD scores visible keypoints only), or ``v = 1`` with their projected coordinates when
    ``keep_occluded``. The box spans all 21 projected keypoints (RHD gives occluded ones too, so the box
    covers the whole hand even when one joint is visible), padded by ``RHD_BOX_PAD``, clipped.

    Raises:
        ConversionError: See ``load_rhd``; also if ``min_visible`` is not in 1..21.
    """
    if not 1 <= min_visible <= 21:
        raise ConversionError(f"--min-visible must be in 1..21, got {min_visible}")
    images, annotations = [], []
    for sample_id, uv_vis in sorted(load_rhd(src).items()):
        image_id = sample_id + 1
        height, width = RHD_IMAGE_SIZE
        images.append({"id": image_id, "file_name": f"{sample_id:05d}.png", "height": height, "width": width})
        for hand in (uv_vis[:21], uv_vis[21:]):
            visible = hand[:, 2] >= 0.5
            if visible.sum() < min_visible:
                continue
            flags = np.where(visible, 2, 1 if keep_occluded else 0)
            (x0, y0), (x1, y1) = hand[:, :2].min(axis=0), hand[:, :2].max(axis=0)
            pad = RHD_BOX_PAD * max(x1 - x0, y1 - y0)
            box = _clipped_xywh(x0 - pad, y0 - pad, x1 + pad, y1 + pad, RHD_IMAGE_SIZE)
            annotations.append(_annotation(len(annotations) + 1, image_id, hand[:, :2], flags, box))
    return {"images": images, "annotations": annotations, "categories": [category(HAND_21, "hand")]}


# --- CLI --------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.convert", description=__doc__)
    sub = parser.add_subparsers(dest="source", required=True)
    mpii = sub.add_parser("mpii", help="SimpleBaseline/HRNet MPII JSON -> COCO (MPII-16)")
    mpii.add_argument("src", help="MPII JSON, e.g. annot/train.json")
    mpii.add_argument("out", help="COCO-format JSON to write")
    mpii.add_argument("--images", default=None, help="MPII images folder (image sizes are read from it)")
    mpii.add_argument("--image-size", nargs=2, type=int, metavar=("W", "H"), help="size of every image")
    mpii.add_argument("--offset", type=float, default=1.0, help="subtracted from coordinates (1: 1-based)")
    rhd = sub.add_parser("rhd", help="RHD anno_*.pickle -> COCO (hand-21); trusted files only")
    rhd.add_argument("src", help="RHD anno_training.pickle or anno_evaluation.pickle")
    rhd.add_argument("out", help="COCO-format JSON to write")
    rhd.add_argument("--min-visible", type=int, default=1, help="visible keypoints a hand needs (1..21)")
    rhd.add_argument("--keep-occluded", action="store_true", help="write occluded keypoints with v=1")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.source == "mpii":
            size = None if args.image_size is None else (args.image_size[1], args.image_size[0])
            coco = convert_mpii(args.src, args.images, size, args.offset)
        else:
            coco = convert_rhd(args.src, args.min_visible, args.keep_occluded)
    except ConversionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    Path(args.out).write_text(json.dumps(coco, allow_nan=False), encoding="utf-8")
    n_images, n_anns = len(coco["images"]), len(coco["annotations"])
    print(f"wrote {n_images} images, {n_anns} {args.source} annotations to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
