"""pose.decode: literal maps, exactness of the bias compensation, stability, round trips, properties."""

import math
import os

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pose import decode
from pose.decode import DECODERS, argmax, debiased, integral, partition, softmax
from pose.targets import gaussian_heatmaps

MAP_SIZES = [(16, 12), (64, 48), (64, 64), (96, 72)]  # (H, W)


def bump(centre: tuple[float, float], size: tuple[int, int], sigma: float) -> torch.Tensor:
    """A zero-background Gaussian of amplitude 1, cut to a box symmetric about its centre that fits the map.

    Returns ``(1, 1, H, W)`` float32.
    """
    height, width = size
    cx, cy = centre
    rx = min(3 * sigma, cx + 0.5, width - 0.5 - cx)
    ry = min(3 * sigma, cy + 0.5, height - 0.5 - cy)
    g = gaussian_heatmaps(torch.tensor([[cx, cy]]), size, sigma)[0]
    xs, ys = torch.arange(width), torch.arange(height)
    inside = ((xs - cx).abs() < rx)[None, :] & ((ys - cy).abs() < ry)[:, None]
    return (g * inside).view(1, 1, height, width)


def eq8_rho(logits: torch.Tensor, beta: float) -> float:
    """rho = hw / C with C = sum exp(beta H), in float64 (paper Eq. 8-9)."""
    c = torch.exp(beta * logits.double()).sum().item()
    return logits.shape[-1] * logits.shape[-2] / c


# --- literal maps, exact values and gradients -------------------------------------------------------


def test_integral_two_pixels_literal():
    logits = torch.zeros(1, 1, 1, 2, requires_grad=True)
    coords, _ = integral(logits, beta=1.0)
    assert coords.tolist() == [[[0.5, 0.0]]]
    coords[..., 0].sum().backward()
    # J = sigmoid(beta (h1 - h0)): dJ/dh1 = beta * s * (1 - s) = 0.25.
    assert torch.allclose(logits.grad, torch.tensor([[[[-0.25, 0.25]]]]))


def test_integral_two_by_two_literal():
    logits = torch.tensor([[[[0.0, math.log(3.0)], [0.0, 0.0]]]])
    coords, scores = integral(logits, beta=1.0)  # softmax weights 1, 3, 1, 1 over six
    assert torch.allclose(coords, torch.tensor([[[4 / 6, 2 / 6]]]))
    assert scores.item() == pytest.approx(1.0)  # the 5x5 window covers the whole map


def test_debiased_single_peak_literal():
    logits = torch.tensor([[[[0.0, 1.0, 0.0]]]], requires_grad=True)
    coords, scores = debiased(logits, beta=1.0)
    assert coords.tolist() == [[[1.0, 0.0]]]
    assert scores.item() == pytest.approx(1.0)
    coords[..., 0].sum().backward()
    # dJ/dH_p = beta e^{beta H_p} (p - J) / sum expm1(beta H) with sum = e - 1.
    g = 1 / (math.e - 1)
    assert torch.allclose(logits.grad, torch.tensor([[[[-g, 0.0, g]]]]))


def test_debiased_two_peaks_literal():
    logits = torch.tensor([[[[math.log(2.0), 0.0, math.log(3.0)]]]], requires_grad=True)
    coords, _ = debiased(logits, beta=1.0)  # expm1 weights 1, 0, 2
    assert coords[0, 0, 0].item() == pytest.approx(4 / 3, abs=1e-6)
    coords[..., 0].sum().backward()
    expected = torch.tensor([2 * (0 - 4 / 3), 1 * (1 - 4 / 3), 3 * (2 - 4 / 3)]) / 3
    assert torch.allclose(logits.grad.view(-1), expected, atol=1e-6)


def test_debiased_y_gradient_on_a_column():
    logits = torch.tensor([[[[0.0], [2.0], [0.0], [1.0]]]], requires_grad=True)
    coords, _ = debiased(logits, beta=0.5)
    w = torch.expm1(0.5 * logits.detach().view(-1))
    assert coords[0, 0, 1].item() == pytest.approx((w * torch.arange(4.0)).sum().item() / w.sum().item())
    coords[..., 1].sum().backward()
    e = torch.exp(0.5 * logits.detach().view(-1))
    expected = 0.5 * e * (torch.arange(4.0) - coords[0, 0, 1].detach()) / w.sum()
    assert torch.allclose(logits.grad.view(-1), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("row", "expected_x"),
    [
        ([0.1, 0.5, 0.9, 0.2], 2.0 - 0.25),  # left neighbour 0.5 > right 0.2
        ([0.1, 0.5, 0.9, 0.7], 2.0 + 0.25),  # right neighbour 0.7 > left 0.5
        ([0.9, 0.5, 0.1, 0.2], 0.0),  # border pixel: no shift
        ([0.1, 0.3, 0.9, 0.3], 2.0),  # equal neighbours: no shift
    ],
)
def test_argmax_literal_rows(row, expected_x):
    heatmaps = torch.tensor(row).view(1, 1, 1, 4)
    coords, scores = argmax(heatmaps)
    assert coords.tolist() == [[[expected_x, 0.0]]]
    assert scores.item() == pytest.approx(0.9)


def test_argmax_both_axes_and_score_clip():
    heatmaps = torch.zeros(1, 2, 5, 5)
    heatmaps[0, 0, 2, 2], heatmaps[0, 0, 3, 2], heatmaps[0, 0, 2, 1] = 1.7, 0.4, 0.2
    heatmaps[0, 1] = -1.0
    coords, scores = argmax(heatmaps)
    assert coords[0, 0].tolist() == [1.75, 2.25]
    assert coords[0, 1].tolist() == [0.0, 0.0]  # ties: the first pixel
    assert scores.tolist() == [[1.0, 0.0]]


# --- exactness: the compensation recovers the bump's centre -----------------------------------------


def half_lattice_centres(size, sigma, count=3, seed=0):
    height, width = size
    rng = np.random.default_rng(seed)
    margin = min(sigma, 2.0)
    xs = rng.integers(int(2 * margin), int(2 * (width - 1 - margin)) + 1, count) / 2
    ys = rng.integers(int(2 * margin), int(2 * (height - 1 - margin)) + 1, count) / 2
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


@pytest.mark.parametrize("size", MAP_SIZES)
@pytest.mark.parametrize("beta", [1.0, 2.0, 5.0, 10.0, 20.0])
@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0, 3.0])
def test_debiased_exact_on_half_pixel_lattice(size, beta, sigma):
    for centre in half_lattice_centres(size, sigma):
        logits = bump(centre, size, sigma)
        coords, _ = debiased(logits, beta)
        assert coords[0, 0].tolist() == pytest.approx(list(centre), abs=0.01), centre


@pytest.mark.parametrize("size", MAP_SIZES[1:])
@pytest.mark.parametrize(("beta", "sigma"), [(1.0, 1.0), (2.0, 1.0), (5.0, 1.6), (10.0, 2.3), (20.0, 3.0)])
def test_debiased_exact_at_sub_pixel_centres_when_well_sampled(size, beta, sigma):
    assert sigma >= 0.7 * math.sqrt(beta) - 0.15
    rng = np.random.default_rng(1)
    height, width = size
    for _ in range(4):
        centre = (
            rng.uniform(3 * sigma, width - 1 - 3 * sigma),
            rng.uniform(3 * sigma, height - 1 - 3 * sigma),
        )
        coords, _ = debiased(bump(centre, size, sigma), beta)
        assert coords[0, 0].tolist() == pytest.approx(list(centre), abs=0.01), centre


def test_sharp_peaks_off_the_lattice_add_a_sampling_error():
    """Documented limit: a sigma-1 bump at beta 20 is not well sampled, so its centre drifts."""
    size = (64, 48)
    on_lattice, _ = debiased(bump((20.5, 30.0), size, 1.0), 20.0)
    off_lattice, _ = debiased(bump((20.25, 30.0), size, 1.0), 20.0)
    assert on_lattice[0, 0, 0].item() == pytest.approx(20.5, abs=1e-4)
    assert 0.1 < abs(off_lattice[0, 0, 0].item() - 20.25) < 0.3


@pytest.mark.parametrize("size", MAP_SIZES)
@pytest.mark.parametrize("beta", [1.0, 5.0, 20.0])
def test_integral_is_pulled_to_the_centre_exactly_as_eq8_predicts(size, beta):
    height, width = size
    grid_centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
    for centre in half_lattice_centres(size, 1.5, seed=2):
        logits = bump(centre, size, 1.5)
        rho = eq8_rho(logits, beta)
        expected = (1 - rho) * torch.tensor(centre, dtype=torch.float64) + rho * grid_centre
        coords, _ = integral(logits, beta)
        assert coords[0, 0].double().tolist() == pytest.approx(expected.tolist(), abs=1e-3)


def test_debiased_matches_eq8_on_general_maps():
    """Eq. 8 with the grid centre, evaluated naively in float64, on maps with noisy +/- backgrounds."""
    gen = torch.Generator().manual_seed(3)
    logits = 0.05 * torch.randn(4, 5, 32, 24, generator=gen)
    logits += gaussian_heatmaps(
        torch.rand(4, 5, 2, generator=gen) * torch.tensor([23.0, 31.0]), (32, 24), 2.0
    )
    beta = 8.0
    e = torch.exp(beta * logits.double())
    c = e.sum(dim=(-2, -1))
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(24.0), indexing="ij")
    j_r = torch.stack([(e * xs).sum((-2, -1)), (e * ys).sum((-2, -1))], -1) / c[..., None]
    hw, centre = 32 * 24, torch.tensor([11.5, 15.5], dtype=torch.float64)
    j_o = (c[..., None] * j_r - hw * centre) / (c[..., None] - hw)
    coords, _ = debiased(logits, beta)
    assert torch.allclose(coords.double(), j_o, atol=2e-3)
    coords_r, _ = integral(logits, beta)
    assert torch.allclose(coords_r.double(), j_r, atol=2e-3)


@pytest.mark.parametrize("beta", [1.0, 10.0, 300.0])
def test_compensated_weights_are_expm1_scaled_and_average_to_j_o(beta):
    """expm1(beta H) / exp(max(beta H)) per map (float64 reference); J_o is the grid's mean under them."""
    gen = torch.Generator().manual_seed(5)
    logits = 0.05 * torch.randn(2, 3, 32, 24, generator=gen)
    logits += gaussian_heatmaps(
        torch.rand(2, 3, 2, generator=gen) * torch.tensor([23.0, 31.0]), (32, 24), 2.0
    )
    weights = decode.compensated_weights(logits, beta)
    scaled = beta * logits.double()
    top = scaled.flatten(2).amax(-1)[..., None, None]
    assert torch.isfinite(weights).all()
    exact = torch.exp(scaled - top) - torch.exp(-top)
    assert torch.allclose(weights.double(), exact, atol=1e-7 * (1 + beta))  # float32 rounding of beta H
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(24.0), indexing="ij")
    w = weights.double()
    mean = torch.stack([(w * xs).sum((-2, -1)), (w * ys).sum((-2, -1))], -1) / w.sum((-2, -1))[..., None]
    assert torch.allclose(debiased(logits, beta)[0].double(), mean, atol=1e-3)
    assert (decode.compensated_weights(torch.zeros(1, 1, 4, 4), beta) == 0).all()  # zero logit, zero weight


# --- round trips with pose.targets ------------------------------------------------------------------


def test_round_trip_with_gaussian_targets_all_decoders():
    size, sigma, beta = (64, 48), 2.0, 5.0
    gen = torch.Generator().manual_seed(4)
    truth = torch.rand(8, 17, 2, generator=gen) * torch.tensor([48 - 13.0, 64 - 13.0]) + 6.0
    heatmaps = gaussian_heatmaps(truth, size, sigma)

    coords, _ = argmax(heatmaps)
    assert (coords - truth).abs().max() <= 0.25 + 1e-5

    coords, _ = debiased(heatmaps, beta)
    assert (coords - truth).abs().max() < 0.01

    # The untruncated Gaussian is the whole map's background here, so compare with Eq. 8 per map.
    coords, _ = integral(heatmaps, beta)
    c = torch.exp(beta * heatmaps.double()).sum((-2, -1))
    rho = (64 * 48 / c)[..., None]
    predicted = (1 - rho) * truth.double() + rho * torch.tensor([23.5, 31.5], dtype=torch.float64)
    assert (coords.double() - predicted).abs().max() < 0.01
    assert (coords - truth).abs().max() > 1.0  # and the bias is real


# --- stability ----------------------------------------------------------------------------------------

HARD_MAPS = {
    "huge": lambda g: 1e4 * torch.randn(2, 3, 16, 12, generator=g),
    "huge_negative": lambda g: -1e4 * torch.rand(2, 3, 16, 12, generator=g),
    "flat_zero": lambda g: torch.zeros(2, 3, 16, 12),
    "flat_positive": lambda g: torch.full((2, 3, 16, 12), 0.3),
    "flat_negative": lambda g: torch.full((2, 3, 16, 12), -2.0),
    "all_negative_peak": lambda g: -3.0 + bump((2.0, 3.0), (16, 12), 1.5).expand(2, 3, 16, 12),
    "negative_background": lambda g: -0.4 + 0.6 * bump((9.0, 4.0), (16, 12), 1.0).expand(2, 3, 16, 12),
    "tiny": lambda g: 1e-30 * torch.randn(2, 3, 16, 12, generator=g),
}


@pytest.mark.parametrize("name", sorted(HARD_MAPS))
@pytest.mark.parametrize("beta", [0.1, 1.0, 10.0, 100.0])
@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_finite_and_inside_on_hard_maps(name, beta, decoder):
    logits = HARD_MAPS[name](torch.Generator().manual_seed(5)).clone().requires_grad_(True)
    coords, scores = DECODERS[decoder](logits, beta)
    assert coords.dtype == torch.float32 and coords.shape == (2, 3, 2)
    assert torch.isfinite(coords).all() and torch.isfinite(scores).all()
    assert (coords >= 0).all() and (coords[..., 0] <= 11).all() and (coords[..., 1] <= 15).all()
    assert ((scores >= 0) & (scores <= 1)).all()
    if coords.requires_grad:
        coords.sum().backward()
        assert torch.isfinite(logits.grad).all()


def test_defined_behaviour_where_compensation_breaks():
    flat_zero = torch.zeros(1, 1, 16, 12)
    coords, scores = debiased(flat_zero, 1.0)
    assert coords.tolist() == [[[5.5, 7.5]]] and scores.item() == 0.0
    flat_positive = torch.full((1, 1, 16, 12), 0.3)
    assert debiased(flat_positive, 1.0)[0][0, 0].tolist() == pytest.approx([5.5, 7.5], abs=1e-4)
    # No pixel above the zero background: no compensation, J_r with score 0.
    peak_below_zero = -3.0 + bump((2.0, 3.0), (16, 12), 1.5)
    coords, scores = debiased(peak_below_zero, 2.0)
    assert torch.allclose(coords, integral(peak_below_zero, 2.0)[0], atol=1e-4) and scores.item() == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_half_precision_inputs(dtype, decoder):
    logits = bump((20.5, 30.0), (64, 48), 2.0).to(dtype).requires_grad_(True)
    coords, scores = DECODERS[decoder](logits, 5.0)
    assert coords.dtype == torch.float32 and scores.dtype == torch.float32
    tolerance = 0.25 + 1e-3 if decoder == "argmax" else (0.01 if decoder == "debiased" else 8.0)
    assert coords[0, 0].tolist() == pytest.approx([20.5, 30.0], abs=tolerance)
    if coords.requires_grad:
        coords.sum().backward()
        assert logits.grad.dtype == dtype and torch.isfinite(logits.grad.float()).all()


@pytest.mark.parametrize("decoder", sorted(DECODERS))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_logits_raise(decoder, bad):
    logits = torch.zeros(1, 2, 8, 8)
    logits[0, 1, 3, 3] = bad
    if bad == -float("inf"):
        coords, _ = DECODERS[decoder](logits, 1.0)  # -inf is a legal "never here" logit
        assert torch.isfinite(coords).all()
        return
    with pytest.raises(ValueError, match="NaN or inf"):
        DECODERS[decoder](logits, 1.0)


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_beta_raises(beta):
    with pytest.raises(ValueError, match="beta"):
        debiased(torch.zeros(1, 1, 4, 4), beta)


def test_bad_shape_raises():
    with pytest.raises(ValueError, match=r"\(B, K, H, W\)"):
        integral(torch.zeros(4, 4), 1.0)


def test_property_tests_draw_the_same_examples_every_run():
    # tests/conftest.py: CI must not depend on a random draw (see its docstring; issue 12).
    if os.environ.get("HYPOTHESIS_PROFILE"):
        pytest.skip(f"hypothesis profile {os.environ['HYPOTHESIS_PROFILE']!r} chosen by hand")
    assert settings.default.derandomize and settings.default.database is None


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**31 - 1),
    st.floats(0.1, 100.0),
    st.floats(-30.0, 5.0),
    st.sampled_from(sorted(DECODERS)),
)
# A draw that once failed: float32 rounding put integral's x at -2.4e-7 for a peak on the first column.
@example(seed=320476, beta=54.63, log_scale=0.0, decoder="integral")
@example(seed=320476, beta=54.63, log_scale=0.0, decoder="debiased")
def test_never_nan_for_finite_input(seed, beta, log_scale, decoder):
    gen = torch.Generator().manual_seed(seed)
    logits = (10**log_scale * torch.randn(1, 2, 9, 7, generator=gen)).requires_grad_(True)
    coords, scores = DECODERS[decoder](logits, beta)
    assert torch.isfinite(coords).all() and torch.isfinite(scores).all()
    assert (coords >= 0).all() and (coords[..., 0] <= 6).all() and (coords[..., 1] <= 8).all()
    if coords.requires_grad:
        coords.sum().backward()
        assert torch.isfinite(logits.grad).all()


# --- scores -------------------------------------------------------------------------------------------


def test_scores_rise_with_concentration():
    sharp, wide = bump((20.0, 30.0), (64, 48), 1.0), bump((20.0, 30.0), (64, 48), 3.0)
    # debiased: the share of the compensated weight near J_o, so a narrower bump scores higher.
    assert 0 < debiased(wide, 5.0)[1].item() < debiased(sharp, 5.0)[1].item() <= 1
    # integral: the share of the whole softmax near J_r, background included, so it grows with beta.
    scores = [integral(sharp, beta)[1].item() for beta in (1.0, 5.0, 10.0, 20.0)]
    assert scores == sorted(scores) and scores[0] < 0.01 and scores[-1] > 0.9
    # At beta 1 the softmax is mostly background; the compensated weight is not.
    assert debiased(sharp, 1.0)[1].item() > 0.5


# --- properties ---------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(sorted(DECODERS)), st.floats(0.5, 20.0))
def test_batch_and_keypoint_independence(seed, decoder, beta):
    gen = torch.Generator().manual_seed(seed)
    truth = torch.rand(3, 4, 2, generator=gen) * torch.tensor([23.0, 31.0])
    logits = gaussian_heatmaps(truth, (32, 24), 2.0) + 0.01 * torch.randn(3, 4, 32, 24, generator=gen)
    coords, scores = DECODERS[decoder](logits, beta)
    for b in range(3):
        for k in range(4):
            c1, s1 = DECODERS[decoder](logits[b : b + 1, k : k + 1], beta)
            assert torch.allclose(c1[0, 0], coords[b, k], atol=1e-5)
            assert torch.allclose(s1[0, 0], scores[b, k], atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    st.floats(11.0, 20.0),  # with |d| <= 6 every bump (radius 4.5 px) stays whole on the 48x36 map
    st.floats(11.0, 30.0),
    st.integers(-6, 6),
    st.integers(-6, 6),
    st.sampled_from(["argmax", "debiased"]),
    st.floats(0.5, 20.0),
)
def test_translation_equivariance_away_from_borders(cx, cy, dx, dy, decoder, beta):
    size = (48, 36)
    before, _ = DECODERS[decoder](bump((cx, cy), size, 1.5), beta)
    after, _ = DECODERS[decoder](bump((cx + dx, cy + dy), size, 1.5), beta)
    assert torch.allclose(after - before, torch.tensor([float(dx), float(dy)]), atol=2e-3)


# --- helpers for display ------------------------------------------------------------------------------


def test_softmax_is_normalised_and_matches_torch():
    logits = torch.randn(2, 3, 8, 6, generator=torch.Generator().manual_seed(6))
    p = softmax(logits, 4.0)
    reference = torch.softmax(4.0 * logits.flatten(-2), dim=-1).view_as(logits)
    assert torch.allclose(p, reference, atol=1e-7)
    assert torch.allclose(p.sum((-2, -1)), torch.ones(2, 3))


def test_partition_literal_upper_left():
    rects = partition(torch.tensor([2.0, 3.0]), (16, 12))
    assert rects.tolist() == [
        [-0.5, -0.5, 4.5, 6.5],  # Omega_1: centred on (2, 3), reaching the top and left edges
        [4.5, -0.5, 11.5, 6.5],  # Omega_2: beside it
        [4.5, 6.5, 11.5, 15.5],  # Omega_3: diagonal
        [-0.5, 6.5, 4.5, 15.5],  # Omega_4: below it
    ]


@settings(max_examples=50, deadline=None)
@given(st.floats(-0.5, 11.5), st.floats(-0.5, 15.5))
def test_partition_tiles_the_map_and_centres_omega1(x, y):
    rects = partition(torch.tensor([x, y]), (16, 12)).double()
    widths, heights = rects[:, 2] - rects[:, 0], rects[:, 3] - rects[:, 1]
    assert (widths >= 0).all() and (heights >= 0).all()
    assert (widths * heights).sum().item() == pytest.approx(16 * 12, abs=1e-3)
    assert ((rects[0, 0] + rects[0, 2]) / 2).item() == pytest.approx(x, abs=1e-5)
    assert ((rects[0, 1] + rects[0, 3]) / 2).item() == pytest.approx(y, abs=1e-5)


def test_decoders_table():
    assert set(DECODERS) == {"argmax", "integral", "debiased"}
    assert decode.SCORE_RADIUS == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_cuda_matches_cpu(decoder):
    logits = bump((20.5, 30.0), (64, 48), 2.0) + 0.01 * torch.randn(1, 1, 64, 48)
    cpu, _ = DECODERS[decoder](logits, 5.0)
    gpu, _ = DECODERS[decoder](logits.cuda(), 5.0)
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)
