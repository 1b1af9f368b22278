"""Heatmaps to coordinates: argmax (detection), integral (IPR, paper Eq. 3-4) and debiased (Eq. 7-8).

The only place in the project where heatmaps become coordinates.

Conventions:
    * logits / heatmaps are ``(B, K, H, W)`` of any float dtype; all math runs in float32.
    * coordinates are ``(B, K, 2)`` float32 as ``(x, y)`` in heatmap pixels; pixel index ``i`` has
      coordinate ``i`` (integer coordinates are pixel centres), so the grid spans ``[0, W-1] x [0, H-1]``
      and its mean point is ``c = ((W-1)/2, (H-1)/2)``.
    * scores are ``(B, K)`` float32 in ``[0, 1]``; each decoder documents what its score means.

The bias (paper §4.1): the softmax gives every background pixel the weight ``exp(beta*0) = 1``, and those
``h*w`` unit weights pull ``J_r`` toward ``c``. With ``C = sum_p exp(beta H_p)`` and ``rho = hw / C``::

    J_r = (1 - rho) * J_o + rho * c                      (Eq. 8 rearranged)
    J_o = c + (J_r - c) / (1 - rho) = sum_p expm1(beta H_p) p / sum_p expm1(beta H_p)

i.e. the debiased estimate is the mean of the pixel grid under weights ``exp(beta H) - 1``. It is exact
(not an approximation) whenever the background logits are 0, wherever the joint is. The paper writes the
centre as ``(w/2, h/2)``; on a grid of pixel centres that leaves an error of ``0.5 hw / (C - hw)`` px, so
the grid mean ``c`` is used.

Recovering a bump's true sub-pixel centre also needs ``exp(beta H)`` to be well sampled by the grid: for a
Gaussian bump of width sigma this holds for sigma >= 0.7 sqrt(beta) px. Sharper peaks off the half-pixel
lattice add a sampling error (0.26 px at beta 20, sigma 1) that is separate from the bias and that no
decoder of the samples can remove; on the half-pixel lattice the samples are symmetric and it vanishes.

Numerics: every exponential is shifted by ``m = max(beta H)`` (per map), and the shifted exponent is
clamped at -80 so that no subnormal floats reach the hot path (they make exp and sums ~10x slower on CPUs);
``exp(-80)`` is 1e-35 of the peak, far below float32 resolution of any sum here. The debiased estimate is
formed from the same marginals as ``J_r``: ``J_o - c = sum_p e_p (p - c) / (S - hw b)`` with
``e_p = exp(beta H_p - m)``, ``S = sum_p e_p`` and ``b = exp(-m)``, the background weight.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

# Shifted exponents below this are clamped: exp(-80) ~ 1.8e-35 is still a normal float32.
_MIN_EXPONENT = -80.0
# The compensation is applied while C - hw > _MIN_SIGNAL * C, i.e. rho < 1 - 1e-4. Eq. 8 divides by
# C - hw; below this share float32 rounding in J_r (~1e-7 of the map) would be amplified past 0.01 px.
# Real bumps sit far above it: a sigma-1 Gaussian of amplitude 1 at beta 1 on a 96x72 map has 1.2e-3.
_MIN_SIGNAL = 1e-4
# Scores are the decoder's weight mass in the (2r+1) x (2r+1) pixel window around the estimate.
SCORE_RADIUS = 2


def check_beta(beta: object) -> float:
    """The one check of a softmax sharpness: a finite real number > 0 (not a bool), as float.

    Raises:
        ValueError: ``beta must be a finite number > 0, got ...``.
    """
    number = isinstance(beta, int | float) and not isinstance(beta, bool)
    if not (number and math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    return float(beta)


def _check_input(logits: Tensor, beta: float | None) -> None:
    if logits.dim() != 4:
        raise ValueError(f"expected logits of shape (B, K, H, W), got {tuple(logits.shape)}")
    if not logits.is_floating_point():
        raise TypeError(f"expected floating-point logits, got {logits.dtype}")
    if beta is not None:
        check_beta(beta)


def _grid(size: int, device: torch.device) -> Tensor:
    """Pixel coordinates centred on the grid mean: ``arange(size) - (size - 1) / 2``, float32."""
    return torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2


def _grid_centre(height: int, width: int, device: torch.device) -> Tensor:
    return torch.tensor([(width - 1) / 2, (height - 1) / 2], device=device, dtype=torch.float32)


def _clamp_to_grid(coords: Tensor, height: int, width: int) -> Tensor:
    """``coords`` ``(B, K, 2)`` clamped to the grid ``[0, W-1] x [0, H-1]`` (heatmap px).

    A weighted mean of the grid lies on it in exact arithmetic, but ``c + moment / total`` in float32 can
    land a rounding step outside: an integral peak on the first column gave x = -2.4e-7 (3 - 3.0000002).
    Clamping makes the documented range hold for every finite input; it moves nothing by more than that
    rounding, except debiased's extrapolation past the map on negative backgrounds (see ``debiased``).
    """
    upper = torch.tensor([width - 1, height - 1], device=coords.device, dtype=coords.dtype)
    return coords.clamp(torch.zeros_like(upper), upper)


def _shifted_exp(logits: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """``e = exp(beta * logits - m)`` with ``m = max(beta * logits)`` per map.

    Returns:
        e: ``(B, K, H, W)`` float32 in ``(0, 1]``, the peak is exactly 1.
        m: ``(B, K)`` float32, detached: every result here is invariant to the shift.
    """
    z = logits.float()
    m = z.detach().amax(dim=(-2, -1), keepdim=True) * beta
    if not torch.isfinite(m).all():
        bad = int((~torch.isfinite(m)).sum())
        raise ValueError(f"logits contain NaN or inf ({bad} of {m.numel()} maps)")
    e = torch.add(-m, z, alpha=beta)  # beta * z - m in one pass
    e = e.clamp_(min=_MIN_EXPONENT).exp_() if not e.requires_grad else e.clamp(_MIN_EXPONENT).exp()
    return e, m.view(m.shape[:2])


def _background_weight(m: Tensor) -> Tensor:
    """The weight ``exp(beta * 0)`` of a zero logit in ``_shifted_exp``'s units, ``(B, K)`` float32.

    ``m <= 0`` (no pixel beats the background) counts as ``m = 0``. Same float ops as ``_shifted_exp``, so a
    zero logit's compensated weight ``e - background`` is exactly 0.
    """
    return torch.exp(-m.clamp(0.0, -_MIN_EXPONENT))


def compensated_weights(logits: Tensor, beta: float) -> Tensor:
    """The weights ``expm1(beta H)`` whose mean pixel is the debiased ``J_o`` (Eq. 7-8), per map scaled by
    ``exp(-max(beta H, 0))`` so no beta overflows: ``(B, K, H, W)`` float32, 0 at a zero logit, negative
    below it. What :func:`debiased` averages the grid with (for statistics and display; not differentiable
    through the shift)."""
    _check_input(logits, beta)
    e, m = _shifted_exp(logits, beta)
    return e - _background_weight(m)[..., None, None]


def _first_moments(weights: Tensor) -> tuple[Tensor, Tensor]:
    """Total ``sum w`` ``(B, K)`` and centred first moment ``sum w (p - c)`` ``(B, K, 2)`` of weights w."""
    height, width = weights.shape[-2:]
    x_marginal = weights.sum(dim=-2)  # (B, K, W)
    y_marginal = weights.sum(dim=-1)  # (B, K, H)
    total = x_marginal.sum(dim=-1)
    moment = torch.stack(
        [x_marginal @ _grid(width, weights.device), y_marginal @ _grid(height, weights.device)], dim=-1
    )
    return total, moment


def _window_mass(weights: Tensor, coords: Tensor, radius: int = SCORE_RADIUS) -> Tensor:
    """Sum of ``weights`` ``(B, K, H, W)`` over the pixel window around ``coords`` -> ``(B, K)``.

    Gathers (2r+1)^2 values per map instead of another pass over the whole map.
    """
    height, width = weights.shape[-2:]
    offsets = torch.arange(-radius, radius + 1, device=weights.device)
    centre = coords.detach().round().long()
    xs = centre[..., 0:1] + offsets  # (B, K, n)
    ys = centre[..., 1:2] + offsets
    inside = ((ys >= 0) & (ys < height)).unsqueeze(-1) & ((xs >= 0) & (xs < width)).unsqueeze(-2)
    flat = ys.clamp(0, height - 1).unsqueeze(-1) * width + xs.clamp(0, width - 1).unsqueeze(-2)
    values = weights.flatten(-2).gather(-1, flat.flatten(-2)).view(flat.shape)
    return (values * inside).sum(dim=(-2, -1))


def argmax(heatmaps: Tensor, beta: float | None = None) -> tuple[Tensor, Tensor]:
    """SimpleBaseline's decode of an explicit heatmap (paper Eq. 1).

    The arg-max pixel (the first one on ties), moved a quarter pixel toward the higher neighbour on each
    axis where both neighbours exist and differ. Not differentiable: coords carry no gradient.

    Args:
        heatmaps: ``(B, K, H, W)`` explicit heatmaps (any float dtype).
        beta: ignored; accepted so that every entry of ``DECODERS`` is called the same way.

    Returns:
        coords: ``(B, K, 2)`` float32 ``(x, y)`` heatmap pixels.
        scores: ``(B, K)`` the peak heatmap value clipped to ``[0, 1]``; MSE training against
            amplitude-1 Gaussians makes it a calibrated confidence (1 = a full-height peak).
    """
    _check_input(heatmaps, None)
    h = heatmaps.detach().float()
    height, width = h.shape[-2:]
    peak, flat_index = h.flatten(-2).max(dim=-1)
    if not torch.isfinite(peak).all():
        raise ValueError("heatmaps contain NaN or inf")
    x, y = flat_index % width, flat_index // width
    padded = torch.nn.functional.pad(h, (1, 1, 1, 1)).flatten(-2)  # neighbours without bounds checks

    def neighbour(dx: int, dy: int) -> Tensor:
        index = (y + 1 + dy) * (width + 2) + (x + 1 + dx)
        return padded.gather(-1, index.unsqueeze(-1)).squeeze(-1)

    step_x = torch.sign(neighbour(1, 0) - neighbour(-1, 0)) * ((x > 0) & (x < width - 1))
    step_y = torch.sign(neighbour(0, 1) - neighbour(0, -1)) * ((y > 0) & (y < height - 1))
    coords = torch.stack([x + 0.25 * step_x, y + 0.25 * step_y], dim=-1).float()
    return coords, peak.clamp(0.0, 1.0)


def integral(logits: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """Integral pose regression, ``J_r`` (paper Eq. 3-4): the mean of the grid under softmax(beta H).

    Args:
        logits: ``(B, K, H, W)`` implicit heatmaps (any float dtype, any device).
        beta: softmax sharpness, > 0.

    Returns:
        coords: ``(B, K, 2)`` float32 ``(x, y)`` heatmap pixels in ``[0, W-1] x [0, H-1]`` (clamped
            against float32 rounding); differentiable.
        scores: ``(B, K)`` the softmax mass in the 5x5 pixel window around ``J_r``. Low when the
            softmax is spread out, which is also when ``J_r`` is most biased toward the centre.
    """
    _check_input(logits, beta)
    e, _ = _shifted_exp(logits, beta)
    total, moment = _first_moments(e)
    centre = _grid_centre(*e.shape[-2:], e.device)
    coords = _clamp_to_grid(centre + moment / total.unsqueeze(-1), *e.shape[-2:])
    scores = _window_mass(e.detach(), coords) / total.detach()
    return coords, scores.clamp(0.0, 1.0)


def debiased(logits: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """Bias-compensated integral regression, ``J_o`` (paper Eq. 7-8) in its exact discrete form.

    ``J_o`` is the mean of the pixel grid under weights ``expm1(beta H)``, equivalently
    ``c + (J_r - c) * C / (C - hw)``. Exact for zero-background bumps wherever they lie.

    Defined behaviour where the paper's assumption (background ~ 0, so ``C > hw``) breaks:
        * ``C - hw <= 1e-4 C`` (flat maps at 0, all-negative maps, backgrounds more negative than the
          peak is positive): no compensation is possible; the result is ``J_r`` with score 0.
        * otherwise a negative background can push the exact formula past the map edge; the result
          is clamped to the grid ``[0, W-1] x [0, H-1]``, where every zero-background answer lies
          (the ``J_r`` fallback too, against float32 rounding).
        A flat positive map decodes to the centre ``c``.

    Args:
        logits: ``(B, K, H, W)`` implicit heatmaps (any float dtype, any device).
        beta: softmax sharpness, > 0.

    Returns:
        coords: ``(B, K, 2)`` float32 ``(x, y)`` heatmap pixels; differentiable (zero gradient on a
            clamped axis).
        scores: ``(B, K)`` the share of the compensated weight ``expm1(beta H)`` inside the 5x5 pixel
            window around ``J_o``: how concentrated the joint's evidence is. 0 where not compensated.
    """
    _check_input(logits, beta)
    e, m = _shifted_exp(logits, beta)
    height, width = e.shape[-2:]
    background = _background_weight(m)
    shift = background.view(*background.shape, 1, 1)
    # Subtracting per pixel (not S - hw*b afterwards) keeps C - hw exact to float32 rounding even
    # when it is 1e-3 of C (beta 1, sigma 1): zero-background pixels then add exact zeros.
    weights = e.sub_(shift) if not e.requires_grad else e - shift
    signal, moment = _first_moments(weights)  # C - hw and sum (e - b)(p - c), shifted units
    total = signal + height * width * background  # C
    compensated = signal > _MIN_SIGNAL * total
    safe_signal = torch.where(compensated, signal, total)  # keeps the unused branch finite for autograd
    centre = _grid_centre(height, width, e.device)
    j_o = centre + moment / safe_signal.unsqueeze(-1)
    j_r = centre + moment / total.unsqueeze(-1)  # sum_p b (p - c) = 0, so this is still J_r
    coords = _clamp_to_grid(torch.where(compensated.unsqueeze(-1), j_o, j_r), height, width)
    window = _window_mass(weights.detach(), coords)
    scores = torch.where(compensated, window / safe_signal.detach(), torch.zeros_like(window))
    return coords, scores.clamp(0.0, 1.0)


def softmax(logits: Tensor, beta: float) -> Tensor:
    """The normalised heatmap ``softmax(beta H)`` over each map (Eq. 3) -> ``(B, K, H, W)`` float32."""
    _check_input(logits, beta)
    e, _ = _shifted_exp(logits, beta)
    return e / e.sum(dim=(-2, -1), keepdim=True)


def partition(coords: Tensor, heatmap_size: tuple[int, int]) -> Tensor:
    """The paper's partition Omega_1..Omega_4 of the map around an estimate (Fig. 1), for display.

    Omega_1 is the rectangle centred on the estimate that reaches the nearest map edge on each axis
    (the pixels whose mirror image through the estimate is still on the map); Omega_2 lies beside it
    horizontally, Omega_3 diagonally, Omega_4 vertically (clockwise when Omega_1 is the top-left one).
    Rectangles span pixel edges, so the whole map is ``[-0.5, W-0.5] x [-0.5, H-0.5]``; a part may be
    empty (zero width or height) when the estimate lies on a centre line.

    Args:
        coords: ``(..., 2)`` estimates ``(x, y)`` in heatmap pixels.
        heatmap_size: ``(H, W)``.

    Returns:
        ``(..., 4, 4)`` float32: for Omega_1..4, the rectangle ``(x0, y0, x1, y1)`` in heatmap pixels.
    """
    height, width = heatmap_size
    coords = coords.detach().float()
    lows = torch.tensor([-0.5, -0.5], device=coords.device)
    highs = torch.tensor([width - 0.5, height - 0.5], device=coords.device)
    p = torch.minimum(torch.maximum(coords, lows), highs)
    half = torch.minimum(p - lows, highs - p)
    near = torch.stack([p - half, p + half], dim=-1)  # (..., 2 axes, 2 ends): Omega_1's extent
    # The rest of each axis: on the far side of whichever end of Omega_1 is not at the map edge.
    low_side = (p - lows) <= (highs - p)  # estimate in the lower half: the rest is above it
    far = torch.where(
        low_side.unsqueeze(-1),
        torch.stack([near[..., 1], highs.expand_as(p)], dim=-1),
        torch.stack([lows.expand_as(p), near[..., 0]], dim=-1),
    )

    def rect(x_span: Tensor, y_span: Tensor) -> Tensor:
        return torch.stack([x_span[..., 0], y_span[..., 0], x_span[..., 1], y_span[..., 1]], dim=-1)

    x_near, y_near, x_far, y_far = near[..., 0, :], near[..., 1, :], far[..., 0, :], far[..., 1, :]
    return torch.stack(
        [rect(x_near, y_near), rect(x_far, y_near), rect(x_far, y_far), rect(x_near, y_far)], dim=-2
    )


Decoder = Callable[[Tensor, float], tuple[Tensor, Tensor]]

DECODERS: dict[str, Decoder] = {"argmax": argmax, "integral": integral, "debiased": debiased}
