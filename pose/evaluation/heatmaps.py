"""What a model's logits look like against the compensation's assumption (paper Eq. 6): the background
level away from each map's peak, and how often a map has a second mode (left/right confusion, a
neighbour's joint), the case the compensation cannot undo.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pose.decode import compensated_weights


def _peak_distances(logits: Tensor) -> Tensor:
    """``(B, K, H, W)`` distance in heatmap pixels from every pixel to its map's arg-max pixel."""
    b, k, h, w = logits.shape
    peak = logits.flatten(2).argmax(-1)  # (B, K)
    py, px = (peak // w).float(), (peak % w).float()
    ys = torch.arange(h, dtype=torch.float32, device=logits.device).view(1, 1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=logits.device).view(1, 1, 1, w)
    return torch.hypot(xs - px[..., None, None], ys - py[..., None, None])


def background_levels(logits: Tensor, radius: float = 6.0) -> Tensor:
    """Mean logit of the pixels farther than ``radius`` heatmap px from each map's arg-max pixel.

    The compensation is exact when this is 0 (every background pixel then has softmax weight
    ``exp(beta * 0) = 1``); a mean of ``b`` over ``n`` pixels adds ``n * expm1(beta * b)`` of
    uncompensated weight at the grid's centre.

    Args:
        logits: ``(B, K, H, W)`` raw network output.
        radius: heatmap pixels around the peak that count as the peak's, not the background's.

    Returns:
        ``(B, K)`` float32 mean background logit per map (NaN where no pixel is that far).
    """
    logits = logits.float()
    far = _peak_distances(logits) > radius
    total = torch.where(far, logits, torch.zeros_like(logits)).sum((-2, -1))
    return total / far.sum((-2, -1)).float()  # 0 / 0 = NaN: a map smaller than the radius


def background_weight_shares(logits: Tensor, beta: float, radius: float = 6.0) -> tuple[Tensor, Tensor]:
    """Shares of the debiased estimate's total weight ``sum expm1(beta * H)`` held by the pixels farther
    than ``radius`` heatmap px from each map's arg-max pixel (paper Eq. 7-8: J_o is their weighted mean),
    split into the pixels below 0 and those above 0.

    Both are about 0 when the background is 0 (J_o is then the mean of the peak alone). Pixels below 0
    have negative weights: the compensation removes more than they added, pushing J_o *away* from them
    (away from the map's centre for a background spread over the map; as the total nears 0, J_o flies
    off). Pixels above 0 (a positive background, a second mode) still pull J_o toward them.

    Args:
        logits: ``(B, K, H, W)`` the maps the decoder reads.
        beta: softmax sharpness (> 0).
        radius: heatmap pixels around the peak that count as the peak's.

    Returns:
        ``(below, above)``: two ``(B, K)`` float32 shares (``below`` <= 0 <= ``above`` when the total
        weight is positive; NaN where it is 0).
    """
    weights = compensated_weights(logits, beta).double()  # summed over thousands of pixels below
    far = _peak_distances(logits) > radius
    total = weights.sum((-2, -1))
    below = torch.where(far & (weights < 0), weights, torch.zeros_like(weights)).sum((-2, -1))
    above = torch.where(far & (weights > 0), weights, torch.zeros_like(weights)).sum((-2, -1))
    return (below / total).float(), (above / total).float()


def second_modes(logits: Tensor, ratio: float = 0.5, min_distance: float = 6.0) -> Tensor:
    """Whether each map has a second mode: a local maximum (over its 5×5 neighbourhood) more than
    ``min_distance`` heatmap px from the arg-max that rises at least ``ratio`` times as far above the
    map's median (its background) as the peak does.

    Args:
        logits: ``(B, K, H, W)`` raw network output.
        ratio: the second mode's height above the background, as a share of the peak's.
        min_distance: heatmap pixels; nearer maxima are the same mode's ripples.

    Returns:
        ``(B, K)`` bool; False for flat maps (no mode at all).
    """
    logits = logits.float()
    base = logits.flatten(2).median(-1).values[..., None, None]  # (B, K, 1, 1)
    rise = logits.flatten(2).amax(-1)[..., None, None] - base
    local_max = logits == F.max_pool2d(logits, 5, stride=1, padding=2)
    high = logits - base >= ratio * rise
    far = _peak_distances(logits) > min_distance
    return (local_max & high & far).flatten(2).any(-1) & (rise[..., 0, 0] > 0)
