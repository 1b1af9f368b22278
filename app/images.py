"""Reading visitors' photos robustly: any Pillow format, EXIF rotation, grey / RGBA / 16-bit pixels, and
huge images downscaled (the scale is kept so coordinates can be reported in the original's pixels); and
writing the drawn overlay once, whole, into Gradio's cache (``overlay_file``).
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image, ImageOps, UnidentifiedImageError

# The longest side the app works at: detection and pose crops lose nothing visible at this size, and the
# overlay stays cheap to redraw and send on every beta change.
MAX_SIDE = 1280
# Refused outright: decoding more than this would take seconds and gigabytes (Pillow's own bomb limit
# is ~179 MP). JPEGs are decoded at a reduced scale (draft mode), so their cost stays small.
MAX_PIXELS = 100_000_000
_ROTATING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class PhotoError(ValueError):
    """A photo that cannot be used; the message is written for the app's visitors."""


@dataclass(frozen=True)
class Photo:
    """A photo ready for detection and pose estimation.

    Attributes:
        image: ``(h, w, 3)`` uint8 RGB, upright, at most ``MAX_SIDE`` pixels on its longest side.
        scale: ``image`` pixels per original pixel (1.0 unless downscaled); original = image / scale.
        original_size: ``(W, H)`` of the upright original in pixels.
        notes: what was done to it, in plain words (rotated, converted, downscaled).
    """

    image: np.ndarray
    scale: float
    original_size: tuple[int, int]
    notes: tuple[str, ...] = ()


def read_photo(path: str | PathLike | BinaryIO, max_side: int = MAX_SIDE) -> Photo:
    """Open an image file (a path or a binary file object) as an upright RGB :class:`Photo`.

    Raises:
        PhotoError: not an image, damaged, too large, or empty (the message says which).
    """
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            im = Image.open(path)
    except (UnidentifiedImageError, Image.DecompressionBombError, ImportError) as err:
        # ImportError: ultralytics, once imported, patches Image.open to try a HEIF plugin on unknown files.
        raise PhotoError(_open_error(err)) from None
    except OSError as err:
        raise PhotoError(f"The file could not be read ({err}).") from None
    with im:
        width, height = im.size
        if width * height > MAX_PIXELS:
            raise PhotoError(
                f"The image is {width}×{height} ({width * height / 1e6:.0f} megapixels); the most this demo "
                f"reads is {MAX_PIXELS / 1e6:.0f} megapixels. Please upload a smaller copy."
            )
        if width == 0 or height == 0:
            raise PhotoError("The image is empty (0 pixels wide or high).")
        orientation = im.getexif().get(0x0112, 1)
        if orientation in _ROTATING_ORIENTATIONS:
            width, height = height, width
        if im.format == "JPEG" and max(width, height) > max_side:
            im.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale: fast and small
        try:
            upright = ImageOps.exif_transpose(im) or im
            if orientation != 1 and upright is not im:
                notes.append("rotated upright from its EXIF orientation")
            rgb = _to_rgb(upright, notes)
        except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt pixel data
            raise PhotoError(f"The image file is damaged and could not be decoded ({err}).") from None
    return _downscale(rgb, (width, height), max_side, notes)


def _open_error(err: Exception) -> str:
    if isinstance(err, UnidentifiedImageError | ImportError):
        return "This file is not an image that can be read (use JPEG, PNG, WebP, BMP, TIFF or GIF)."
    return f"The image is too large to decode safely ({err})."


def _to_rgb(im: Image.Image, notes: list[str]) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB from any Pillow mode; transparency is composed over white."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(im, dtype=np.float64)
        # 16-bit files use 0..65535; 32-bit integer or float images: stretch their own range.
        top = 65535.0 if im.mode.startswith("I;16") or values.max() > 255 else 255.0
        if im.mode == "F" or (im.mode == "I" and values.max() > 65535):
            low, top = float(values.min()), float(values.max())
            values = values - low
            top = max(top - low, 1e-12)
        grey = np.clip(np.rint(values * (255.0 / top)), 0, 255).astype(np.uint8)
        notes.append(f"converted from {im.mode} ({'16-bit' if top == 65535.0 else 'high-range'}) grey")
        return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        notes.append("transparent areas shown on white")
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    if im.mode in ("L", "1"):
        notes.append("grey image")
    elif im.mode not in ("RGB", "P"):
        notes.append(f"converted from {im.mode}")
    return np.asarray(im.convert("RGB"))


def _downscale(rgb: np.ndarray, original_wh: tuple[int, int], max_side: int, notes: list[str]) -> Photo:
    h, w = rgb.shape[:2]
    target = min(1.0, max_side / max(h, w))
    if target < 1.0:
        size = (max(1, round(w * target)), max(1, round(h * target)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        notes.append(
            f"downscaled from {original_wh[0]}×{original_wh[1]} to {size[0]}×{size[1]}; "
            "coordinates in the table are in the original's pixels"
        )
    scale = rgb.shape[1] / original_wh[0]
    return Photo(np.ascontiguousarray(rgb), scale, original_wh, tuple(notes))


def overlay_file(image: np.ndarray, quality: int = 90) -> str:
    """Write ``image`` as a JPEG into Gradio's cache folder, once, and return its path.

    Gradio saves a returned array under a name derived from its bytes and rewrites that file in place on
    every request, so identical outputs (visitors clicking the same example) truncated the file while
    another response was streaming it. Here the file is written to a temporary name and renamed into
    place (``os.replace`` is atomic: a reader sees the old file or the whole new one, and an open reader
    keeps its inode), and an existing file is never rewritten. Being inside the cache folder, Gradio
    serves it as is and its ``delete_cache`` ages it out like its own files.

    Args:
        image: ``(h, w, 3)`` uint8 RGB.
        quality: JPEG quality, 1-95.

    Returns:
        The absolute path of ``<cache>/<sha256 of the bytes>/overlay.jpg``.
    """
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, "JPEG", quality=quality)
    data = buffer.getvalue()
    folder = Path(get_upload_folder()) / hashlib.sha256(data).hexdigest()
    path = folder / "overlay.jpg"
    if path.exists():
        os.utime(path)  # handed out again: restart its age, as Gradio does for its own cached copies
        return str(path)
    folder.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=folder, prefix=".overlay.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return str(path)
