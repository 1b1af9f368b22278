"""Training losses per keypoint: L1 on coordinates (paper Eq. 5 / Eq. 10) and heatmap MSE (Eq. 2, L_aug).

Each loss returns ``(B, K)`` values so that callers can inspect or weight joints; ``masked_mean`` is the
one reduction, over the joints whose visibility weight is non-zero.
"""

from __future__ import annotations

import torch
from torch import Tensor


def coord_l1_losses(coords: Tensor, targets: Tensor) -> Tensor:
    """L1 distance ``|dx| + |dy|`` between decoded and target coordinates (Eq. 5 with ``integral``,
    Eq. 10 with ``debiased``).

    Args:
        coords: ``(B, K, 2)`` predictions, heatmap pixels.
        targets: ``(B, K, 2)`` targets, heatmap pixels (may hold NaN where the joint is unlabelled).

    Returns:
        ``(B, K)`` float32 losses in heatmap pixels; NaN targets give NaN here, which
        :func:`masked_mean` drops along with their zero weight.
    """
    return (coords.float() - targets.float()).abs().sum(dim=-1)


def heatmap_mse_losses(heatmaps: Tensor, targets: Tensor) -> Tensor:
    """Pixel-wise squared error averaged over each map (Eq. 2): the detection loss and L_aug.

    Args:
        heatmaps: ``(B, K, H, W)`` predicted heatmaps or logits.
        targets: ``(B, K, H, W)`` target heatmaps (e.g. ``pose.targets.gaussian_heatmaps``).

    Returns:
        ``(B, K)`` float32 mean squared error per map.
    """
    return (heatmaps.float() - targets.float()).square().mean(dim=(-2, -1))


def masked_mean(losses: Tensor, weights: Tensor) -> Tensor:
    """Weighted mean of per-keypoint losses over the joints with non-zero weight.

    Joints with weight 0 are excluded with ``where``, not by multiplying, so a NaN or inf in their
    loss (an unlabelled joint's NaN target) cannot leak into the result or its gradient.

    Args:
        losses: ``(B, K)`` per-keypoint losses.
        weights: ``(B, K)`` non-negative weights, usually 0/1 visibility weights.

    Returns:
        A scalar; 0 (still attached to the graph) when every weight is 0.
    """
    weights = weights.to(losses.dtype)
    keep = weights > 0
    weighted = torch.where(keep, losses * weights, torch.zeros_like(losses))
    return weighted.sum() / weights.sum().clamp(min=1e-12)  # 0 / 1e-12 = 0 when all are masked
