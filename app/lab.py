"""The bias lab: a synthetic Gaussian heatmap decoded by pose.decode (integral J_r, debiased J_o), the bias
over every mode position (the paper's Fig. 1) and the bias versus beta. No model needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch

from pose.decode import debiased, integral, partition, softmax

# Heatmap sizes (H, W) offered: SimpleBaseline's 256x192 and 384x288 inputs, and a tiny map where the
# bias is plain to see.
MAP_SIZES: dict[str, tuple[int, int]] = {"64×48": (64, 48), "96×72": (96, 72), "16×12": (16, 12)}
FIELD_GRID = (24, 32)  # mode positions (rows, columns) in the bias field, evenly over the whole map
ARROW_EVERY = 4  # one arrow per 4x4 block of the field grid
CURVE_BETAS = np.geomspace(0.5, 50.0, 48)


def bumps(modes: np.ndarray, sigma: float, heatmap_size: tuple[int, int]) -> torch.Tensor:
    """Gaussian bumps of amplitude 1 on a zero background, one map per mode.

    Args:
        modes: ``(M, 2)`` true centres ``(x, y)`` in heatmap pixels (sub-pixel allowed).
        sigma: width in heatmap pixels.
        heatmap_size: ``(H, W)``.

    Returns:
        ``(1, M, H, W)`` float32; separable, so M maps cost M * (H + W) exponentials.
    """
    height, width = heatmap_size
    modes = torch.as_tensor(np.asarray(modes, dtype=np.float64).reshape(-1, 2))
    gx = torch.exp(-((torch.arange(width) - modes[:, :1]) ** 2) / (2 * sigma**2))  # (M, W)
    gy = torch.exp(-((torch.arange(height) - modes[:, 1:]) ** 2) / (2 * sigma**2))  # (M, H)
    return (gy[:, :, None] * gx[:, None, :]).float().unsqueeze(0)


@dataclass(frozen=True)
class LabEstimate:
    """One synthetic map and its decodes (heatmap pixels).

    Attributes:
        probabilities: ``(H, W)`` softmax(beta * H).
        mode, j_r, j_o: ``(2,)`` the true centre, the integral and the debiased estimates.
        omegas: ``(4, 4)`` rectangles of Omega_1..4 around J_o.
        total: ``C = sum_p exp(beta H_p)``; ``rho = hw / C`` (Eq. 8).
    """

    probabilities: np.ndarray
    mode: np.ndarray
    j_r: np.ndarray
    j_o: np.ndarray
    omegas: np.ndarray
    total: float

    @property
    def rho(self) -> float:
        return self.probabilities.size / self.total

    @property
    def centre(self) -> np.ndarray:
        height, width = self.probabilities.shape
        return np.array([(width - 1) / 2, (height - 1) / 2])


def estimate(x: float, y: float, sigma: float, heatmap_size: tuple[int, int], beta: float) -> LabEstimate:
    """Decode one bump centred at ``(x, y)`` with both integral decoders at ``beta``."""
    heatmap = bumps(np.array([[x, y]]), sigma, heatmap_size)
    with torch.no_grad():
        j_r = integral(heatmap, beta)[0][0, 0]
        j_o = debiased(heatmap, beta)[0][0, 0]
        # C in float64 straight from the definition: the amplitude is 1, so exp(beta) cannot overflow.
        total = float(torch.exp(beta * heatmap.double()).sum())
    omegas = partition(j_o, heatmap_size)
    return LabEstimate(
        softmax(heatmap, beta)[0, 0].numpy(),
        np.array([x, y]),
        j_r.numpy(),
        j_o.numpy(),
        omegas.numpy(),
        total,
    )


def estimate_table(est: LabEstimate) -> pd.DataFrame:
    """Rows true mode / J_r / J_o with x, y and the distance to the mode (px)."""
    rows = [("true mode", est.mode), ("J_r (integral)", est.j_r), ("J_o (debiased)", est.j_o)]
    return pd.DataFrame(
        [
            [
                name,
                round(float(p[0]), 4),
                round(float(p[1]), 4),
                round(float(np.linalg.norm(p - est.mode)), 5),
            ]
            for name, p in rows
        ],
        columns=["point", "x", "y", "error (px)"],
    )


def eq8_text(est: LabEstimate) -> str:
    """Eq. 8 with this map's numbers, in Markdown."""
    c, rho = est.centre, est.rho
    rebuilt = (1 - rho) * est.j_o + rho * c
    return (
        f"**Eq. 8 here:** C = Σ exp(βH) = {est.total:,.1f} over hw = {est.probabilities.size} pixels, so "
        f"ρ = hw/C = {rho:.4f}: the {est.probabilities.size} background pixels hold {100 * rho:.1f}% of the "
        f"softmax. J_r = (1 − ρ)·J_o + ρ·c = (1 − {rho:.4f})·({est.j_o[0]:.2f}, {est.j_o[1]:.2f}) + "
        f"{rho:.4f}·({c[0]:.1f}, {c[1]:.1f}) = ({rebuilt[0]:.2f}, {rebuilt[1]:.2f}), the integral estimate "
        f"({est.j_r[0]:.2f}, {est.j_r[1]:.2f}). Error: J_r {np.linalg.norm(est.j_r - est.mode):.3f} px, "
        f"J_o {np.linalg.norm(est.j_o - est.mode):.4f} px."
    )


@dataclass(frozen=True)
class BiasField:
    """Errors of both decoders for a bump at every position of an even grid of modes.

    Attributes:
        xs: ``(nx,)`` and ys: ``(ny,)`` mode coordinates in heatmap pixels.
        vec_r, vec_o: ``(ny, nx, 2)`` J_r - mode and J_o - mode, in heatmap pixels.
    """

    xs: np.ndarray
    ys: np.ndarray
    vec_r: np.ndarray
    vec_o: np.ndarray

    @property
    def err_r(self) -> np.ndarray:
        return np.linalg.norm(self.vec_r, axis=-1)

    @property
    def err_o(self) -> np.ndarray:
        return np.linalg.norm(self.vec_o, axis=-1)


@lru_cache(maxsize=64)
def bias_field(heatmap_size: tuple[int, int], sigma: float, beta: float) -> BiasField:
    """The bias field at (size, sigma, beta), from one batched call of each decoder (cached: moving the
    mode sliders does not change it). 768 maps of 96x72 take ~0.1 s on 2 cores."""
    height, width = heatmap_size
    ys, xs = np.linspace(0, height - 1, FIELD_GRID[0]), np.linspace(0, width - 1, FIELD_GRID[1])
    modes = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)  # row-major over (ys, xs)
    heatmaps = bumps(modes, sigma, heatmap_size)
    with torch.no_grad():
        j_r = integral(heatmaps, beta)[0][0].numpy()
        j_o = debiased(heatmaps, beta)[0][0].numpy()
    shape = (*FIELD_GRID, 2)
    return BiasField(xs, ys, (j_r - modes).reshape(shape), (j_o - modes).reshape(shape))


@lru_cache(maxsize=64)
def bias_curve(
    x: float, y: float, sigma: float, heatmap_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """|J_r - mode| and |J_o - mode| (px) over ``CURVE_BETAS`` for one bump.

    softmax(beta H) is softmax(1 * (beta H)), so all betas run as one batch of scaled maps at beta 1.
    """
    heatmap = bumps(np.array([[x, y]]), sigma, heatmap_size)
    scaled = torch.from_numpy(CURVE_BETAS).float().view(1, -1, 1, 1) * heatmap  # (1, nb, H, W)
    with torch.no_grad():
        j_r = integral(scaled, 1.0)[0][0].numpy()
        j_o = debiased(scaled, 1.0)[0][0].numpy()
    mode = np.array([x, y])
    return CURVE_BETAS, np.linalg.norm(j_r - mode, axis=-1), np.linalg.norm(j_o - mode, axis=-1)
