"""Crops and coordinate maps between image, network input and heatmap (numpy, float64).

Integer coordinates are pixel centres, so a W-pixel raster spans [-0.5, W - 0.5]. Every map sends
the crop's edges to the raster's edges, so image -> heatmap is one affine map and the round trip is
exact, with no half-pixel shift between input and heatmap (unlike the classic SimpleBaseline code).

Conventions:
    - Points are ``(..., 2)`` arrays of ``(x, y)``; sizes are ``(height, width)`` tuples.
    - A :class:`Crop` is a rectangle of ``size_wh`` image pixels centred on ``center_xy``. Its
      left edge ``cx - w/2`` maps to ``-0.5`` and its right edge ``cx + w/2`` to ``W - 0.5`` (same
      for y), so the crop centre maps to the raster centre ``((W - 1)/2, (H - 1)/2)``. The same
      edge-to-edge rule maps input to heatmap: ``x_hm = (x_in + 0.5) * W_hm / W_in - 0.5``.
    - ``rotation`` (degrees) turns the image content counter-clockwise on screen (y down), as
      ``cv2.getRotationMatrix2D`` does; the crop rectangle itself is turned clockwise in the image.
    - This matches ``cv2.warpAffine``, which also samples at integer pixel centres.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike

Size = tuple[int, int]


@dataclass(frozen=True)
class Crop:
    """A (possibly rotated) rectangle of an image that becomes one network input.

    Attributes:
        center_xy: ``(cx, cy)`` centre of the rectangle, image pixels.
        size_wh: ``(w, h)`` width and height of the rectangle, image pixels (both > 0).
        rotation: degrees; positive turns the image content counter-clockwise in the crop.
    """

    center_xy: tuple[float, float]
    size_wh: tuple[float, float]
    rotation: float = 0.0

    def __post_init__(self) -> None:
        center = tuple(float(v) for v in self.center_xy)
        size = tuple(float(v) for v in self.size_wh)
        if len(center) != 2 or len(size) != 2:
            raise ValueError(f"center_xy and size_wh need 2 values, got {center}, {size}")
        if not all(math.isfinite(v) for v in (*center, *size, float(self.rotation))):
            raise ValueError(f"crop values must be finite, got {center}, {size}, {self.rotation}")
        if size[0] <= 0 or size[1] <= 0:
            raise ValueError(f"crop size must be positive, got {size}")
        # Frozen: normalise to plain floats once so equality and hashing behave.
        object.__setattr__(self, "center_xy", center)
        object.__setattr__(self, "size_wh", size)
        object.__setattr__(self, "rotation", float(self.rotation))


def input_aspect(input_size: Size) -> float:
    """Width / height of a raster given as ``(height, width)``."""
    height, width = input_size
    return width / height


def xyxy_to_xywh(boxes: ArrayLike) -> np.ndarray:
    """``(..., 4)`` corner boxes ``(x0, y0, x1, y1)`` -> COCO ``(x, y, w, h)``, float64 image pixels."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.concatenate([boxes[..., :2], boxes[..., 2:4] - boxes[..., :2]], axis=-1)


def box_to_crop(box_xyxy: ArrayLike, aspect_ratio: float, padding: float = 1.25) -> Crop:
    """Turn a person box into a crop of the input's aspect ratio, enlarged by ``padding``.

    The shorter side (relative to ``aspect_ratio``) is lengthened so that ``w / h == aspect_ratio``;
    the box is never cut. Then both sides are multiplied by ``padding``.

    Args:
        box_xyxy: ``(x0, y0, x1, y1)`` box corners, image pixels; width is ``x1 - x0``.
        aspect_ratio: target width / height, e.g. ``input_aspect(input_size)``.
        padding: scale factor applied after the aspect fix (> 0).

    Returns:
        An unrotated :class:`Crop` centred on the box.

    Raises:
        ValueError: non-finite values, ``x1 <= x0`` or ``y1 <= y0``, or non-positive ratio/padding.
    """
    box = np.asarray(box_xyxy, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.all(np.isfinite(box)):
        raise ValueError(f"box must be 4 finite numbers (x0, y0, x1, y1), got {box_xyxy!r}")
    if not (aspect_ratio > 0 and padding > 0):
        raise ValueError(f"aspect_ratio and padding must be positive, got {aspect_ratio}, {padding}")
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        raise ValueError(f"degenerate box {box_xyxy!r}: width {w}, height {h}")
    if w > aspect_ratio * h:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return Crop(((x0 + x1) / 2, (y0 + y1) / 2), (w * padding, h * padding))


def crop_matrix(crop: Crop, out_size: Size) -> np.ndarray:
    """Affine map from image coordinates to a raster of ``out_size`` covering the crop edge to edge.

    Args:
        crop: the crop rectangle in the image.
        out_size: ``(H, W)`` of the target raster (network input or heatmap).

    Returns:
        ``(2, 3)`` float64 matrix ``M`` with ``raster_xy = M[:, :2] @ image_xy + M[:, 2]``.
    """
    height, width = out_size
    cx, cy = crop.center_xy
    w, h = crop.size_wh
    theta = math.radians(crop.rotation)
    cos, sin = math.cos(theta), math.sin(theta)
    # Rotation about the crop centre, same sign convention as cv2.getRotationMatrix2D (y axis down).
    rot = np.array([[cos, sin], [-sin, cos]])
    linear = np.diag([width / w, height / h]) @ rot
    # The crop centre lands on the raster centre; edges then land on -0.5 and W - 0.5.
    offset = np.array([(width - 1) / 2, (height - 1) / 2]) - linear @ np.array([cx, cy])
    return np.concatenate([linear, offset[:, None]], axis=1)


def crops_matrices(crops: Crop | Sequence[Crop], out_size: Size) -> np.ndarray:
    """Stack :func:`crop_matrix` over crops: ``(2, 3)`` for one Crop, ``(N, 2, 3)`` for N."""
    if isinstance(crops, Crop):
        return crop_matrix(crops, out_size)
    return np.stack([crop_matrix(c, out_size) for c in crops]).reshape(-1, 2, 3)


def invert_affine(matrix: ArrayLike) -> np.ndarray:
    """Inverse of affine maps ``(..., 2, 3)`` (float64), same layout as the input."""
    m = np.asarray(matrix, dtype=np.float64)
    inv_linear = np.linalg.inv(m[..., :2])
    inv_offset = -(inv_linear @ m[..., 2:])
    return np.concatenate([inv_linear, inv_offset], axis=-1)


def apply_affine(points: ArrayLike, matrix: ArrayLike) -> np.ndarray:
    """Apply affine map(s) to points.

    Args:
        points: ``(..., 2)`` with a single ``(2, 3)`` matrix; or ``(N, K, 2)`` with ``(N, 2, 3)``
            matrices, one per row of points (leading dims broadcast, e.g. ``(B, N, K, 2)`` with
            ``(B, N, 2, 3)``).
        matrix: ``(2, 3)`` or ``(..., 2, 3)`` affine matrices.

    Returns:
        Mapped points, float64, shape of ``points`` (broadcast with the matrices' leading dims).
    """
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim == 2:
        return p @ m[:, :2].T + m[:, 2]
    if p.ndim != m.ndim:
        raise ValueError(f"points {p.shape} need one K axis per matrix batch {m.shape}")
    return p @ np.swapaxes(m[..., :2], -1, -2) + m[..., None, :, 2]


def image_to_input(points: ArrayLike, crop: Crop | Sequence[Crop], input_size: Size) -> np.ndarray:
    """Image pixels -> network-input pixels of ``input_size = (H, W)``.

    ``points`` is ``(..., 2)`` for one Crop, ``(N, K, 2)`` for N crops (see :func:`apply_affine`).
    """
    return apply_affine(points, crops_matrices(crop, input_size))


def input_to_image(points: ArrayLike, crop: Crop | Sequence[Crop], input_size: Size) -> np.ndarray:
    """Network-input pixels -> image pixels; inverse of :func:`image_to_input`."""
    return apply_affine(points, invert_affine(crops_matrices(crop, input_size)))


def image_to_heatmap(points: ArrayLike, crop: Crop | Sequence[Crop], heatmap_size: Size) -> np.ndarray:
    """Image pixels -> heatmap pixels of ``heatmap_size = (H, W)``; crop edges to heatmap edges.

    ``points`` is ``(..., 2)`` for one Crop, ``(N, K, 2)`` for N crops (see :func:`apply_affine`).
    """
    return apply_affine(points, crops_matrices(crop, heatmap_size))


def heatmap_to_image(points: ArrayLike, crop: Crop | Sequence[Crop], heatmap_size: Size) -> np.ndarray:
    """Heatmap pixels -> image pixels; inverse of :func:`image_to_heatmap`."""
    return apply_affine(points, invert_affine(crops_matrices(crop, heatmap_size)))


def input_to_heatmap(points: ArrayLike, input_size: Size, heatmap_size: Size) -> np.ndarray:
    """Network-input pixels ``(..., 2)`` -> heatmap pixels, edge to edge.

    ``x_hm = (x_in + 0.5) * W_hm / W_in - 0.5`` and likewise for y.
    """
    p = np.asarray(points, dtype=np.float64)
    scale = np.array([heatmap_size[1] / input_size[1], heatmap_size[0] / input_size[0]])
    return (p + 0.5) * scale - 0.5


def heatmap_to_input(points: ArrayLike, input_size: Size, heatmap_size: Size) -> np.ndarray:
    """Heatmap pixels ``(..., 2)`` -> network-input pixels; inverse of :func:`input_to_heatmap`."""
    return input_to_heatmap(points, heatmap_size, input_size)


def check_image(image: object) -> np.ndarray:
    """The one check of an input image: a C-contiguous ``(H, W, 3)`` uint8 RGB array, or ValueError.

    Raises:
        ValueError: not a numpy array, not ``(H, W, 3)``, not uint8, or empty; the message says which.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array (H, W, 3) uint8 RGB, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"image must be (H, W, 3) uint8 RGB, got shape {image.shape}; convert grey/RGBA first"
        )
    if image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB (0-255), got dtype {image.dtype}; convert it")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    return np.ascontiguousarray(image)


def warp_image(image: np.ndarray, crop: Crop, input_size: Size, border_value: float = 0) -> np.ndarray:
    """Cut ``crop`` out of ``image`` and resample it to ``input_size`` (bilinear, constant border).

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` array, uint8 or float.
        crop: the crop rectangle in the image.
        input_size: ``(H_in, W_in)`` of the output.
        border_value: fill for pixels outside the image.

    Returns:
        ``(H_in, W_in, C)`` (or ``(H_in, W_in)``) array of the image's dtype; output pixel
        ``(x, y)`` samples the image at ``input_to_image((x, y))``.
    """
    height, width = input_size
    image = np.asarray(image)
    warped = cv2.warpAffine(
        image,
        crop_matrix(crop, input_size),
        (width, height),  # cv2 takes (width, height)
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(border_value,) * 4,
    )
    # cv2 drops a trailing channel axis of length 1; restore the caller's layout.
    return warped.reshape(height, width, *image.shape[2:])


def flip_points(points: ArrayLike, width: int, flip_perm: Sequence[int] | None = None) -> np.ndarray:
    """Mirror keypoints horizontally in a raster ``width`` pixels wide and swap left/right joints.

    Args:
        points: ``(..., K, 2)`` pixel coordinates in that raster.
        width: raster width in pixels; ``x' = (width - 1) - x`` under the pixel-centre convention.
        flip_perm: length-K index sequence, applied as ``points[..., flip_perm, :]`` after
            mirroring; ``None`` keeps the order.

    Returns:
        ``(..., K, 2)`` float64 flipped points.
    """
    flipped = np.array(points, dtype=np.float64)
    flipped[..., 0] = (width - 1) - flipped[..., 0]
    if flip_perm is not None:
        flipped = flipped[..., list(flip_perm), :]
    return flipped
