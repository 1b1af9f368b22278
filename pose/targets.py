"""Training targets (encode): Gaussian heatmaps with sub-pixel centres, coordinate targets, weights.

Coordinates are ``(..., K, 2)`` as ``(x, y)`` in heatmap pixels; pixel index i has coordinate i,
so a raster of size ``(H, W)`` spans ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``. Outputs are float32
on the device of ``coords``.
"""

from __future__ import annotations

import torch
from torch import Tensor

Size = tuple[int, int]


def gaussian_heatmaps(coords: Tensor, heatmap_size: Size, sigma: float = 2.0) -> Tensor:
    """Unnormalised Gaussian bumps of amplitude 1 centred on (sub-pixel) coordinates.

    Each map is exactly ``exp(-((x - cx)^2 + (y - cy)^2) / (2 sigma^2))`` sampled at pixel centres,
    without truncation, so its intensity-weighted centroid is the centre whenever the bump lies well
    inside the map. Built as an outer product of two 1-D Gaussians (O(H + W) exps per joint).

    Args:
        coords: ``(..., K, 2)`` centres ``(x, y)``, heatmap pixels. NaN centres give NaN maps;
            :func:`keypoint_targets` removes them.
        heatmap_size: ``(H, W)``.
        sigma: standard deviation in heatmap pixels (> 0).

    Returns:
        ``(..., K, H, W)`` float32 on ``coords.device``.
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    coords = torch.as_tensor(coords, dtype=torch.float32)
    height, width = heatmap_size
    xs = torch.arange(width, dtype=torch.float32, device=coords.device)
    ys = torch.arange(height, dtype=torch.float32, device=coords.device)
    scale = -0.5 / sigma**2
    gx = torch.exp(scale * (xs - coords[..., 0, None]) ** 2)  # (..., K, W)
    gy = torch.exp(scale * (ys - coords[..., 1, None]) ** 2)  # (..., K, H)
    return gy[..., :, None] * gx[..., None, :]


def visibility_weights(visibility: Tensor, coords: Tensor, heatmap_size: Size) -> Tensor:
    """Per-joint loss weights: 1 for labelled joints inside the heatmap raster, else 0.

    Args:
        visibility: ``(..., K)`` labels; joints with ``visibility > 0`` count as labelled
            (COCO's 1 "occluded" and 2 "visible" alike).
        coords: ``(..., K, 2)`` heatmap pixels. Inside means ``-0.5 <= x <= W - 0.5`` and
            ``-0.5 <= y <= H - 0.5`` (edges included); NaN is outside.
        heatmap_size: ``(H, W)``.

    Returns:
        ``(..., K)`` float32 of 0s and 1s on ``coords.device``.
    """
    coords = torch.as_tensor(coords)
    visibility = torch.as_tensor(visibility, device=coords.device)
    height, width = heatmap_size
    x, y = coords[..., 0], coords[..., 1]
    # Comparisons with NaN are False, so NaN coordinates fall out here without a separate check.
    inside = (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    return ((visibility > 0) & inside).to(torch.float32)


def coordinate_targets(coords: Tensor, weights: Tensor) -> Tensor:
    """Regression targets: the heatmap-pixel coordinates, with weight-0 joints set to ``(0, 0)``.

    Zeroing keeps NaN (unlabelled) coordinates out of losses, where ``0 * NaN`` would still be NaN.

    Args:
        coords: ``(..., K, 2)`` heatmap pixels, possibly NaN where unlabelled.
        weights: ``(..., K)`` from :func:`visibility_weights`.

    Returns:
        ``(..., K, 2)`` float32, finite wherever the weight is 0.
    """
    coords = torch.as_tensor(coords, dtype=torch.float32)
    keep = torch.as_tensor(weights, device=coords.device)[..., None] > 0
    return torch.where(keep, coords, torch.zeros((), dtype=torch.float32, device=coords.device))


def keypoint_targets(
    coords: Tensor, visibility: Tensor, heatmap_size: Size, sigma: float = 2.0
) -> tuple[Tensor, Tensor, Tensor]:
    """All training targets for a set of joints.

    Args:
        coords: ``(..., K, 2)`` joint positions, heatmap pixels (NaN allowed where unlabelled).
        visibility: ``(..., K)`` labels, ``> 0`` meaning labelled.
        heatmap_size: ``(H, W)``.
        sigma: Gaussian standard deviation, heatmap pixels.

    Returns:
        ``(heatmaps, coords, weights)``: ``(..., K, H, W)`` Gaussians (all zero for weight-0
        joints), ``(..., K, 2)`` coordinate targets (``(0, 0)`` for weight-0 joints) and
        ``(..., K)`` weights; all float32 on ``coords.device``.
    """
    weights = visibility_weights(visibility, coords, heatmap_size)
    targets = coordinate_targets(coords, weights)
    heatmaps = gaussian_heatmaps(targets, heatmap_size, sigma) * weights[..., None, None]
    return heatmaps, targets, weights
