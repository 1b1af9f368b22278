"""pose.evaluation.heatmaps: the background level and second modes, on hand-made maps."""

import math

import pytest
import torch

from pose.evaluation.heatmaps import background_levels, background_weight_shares, second_modes
from pose.targets import gaussian_heatmaps


def spikes(*points, background=0.0, size=(24, 32)):
    """One (1, 1, H, W) map: ``background`` everywhere, ``value`` at each ``(x, y, value)``."""
    logits = torch.full((1, 1, *size), background)
    for x, y, value in points:
        logits[0, 0, y, x] = value
    return logits


@pytest.mark.parametrize("background", [0.0, 0.01, -0.003])
def test_background_is_the_mean_away_from_the_peak(background):
    logits = spikes((5, 6, 1.0), (8, 6, 0.5), background=background)  # the second spike is within 6 px
    assert background_levels(logits).item() == pytest.approx(background, abs=1e-7)


def test_background_of_a_gaussian_counts_only_its_tail():
    heatmap = gaussian_heatmaps(torch.tensor([[[15.5, 11.5]]]), (24, 32), sigma=2.0)
    far = background_levels(heatmap, radius=6.0).item()
    assert 0 < far < math.exp(-(6.0**2) / 8)  # only pixels past 6 px, where the bump is below e^-4.5
    assert torch.isnan(background_levels(heatmap, radius=100.0)).all()  # no pixel that far


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ((20, 6, 0.6), True),  # 15 px away, 60 % of the peak
        ((20, 6, 0.4), False),  # too low
        ((8, 6, 0.9), False),  # 3 px away: the same mode
    ],
)
def test_second_modes(second, expected):
    logits = spikes((5, 6, 1.0), second)
    assert second_modes(logits).item() is expected


def test_second_modes_are_measured_from_the_background():
    assert second_modes(spikes((5, 6, -0.1), (20, 6, -0.5), background=-1.0)).item()  # rises 0.9 and 0.5
    assert not second_modes(spikes((5, 6, -0.1), (20, 6, -0.6), background=-1.0)).item()  # 0.9 and 0.4
    assert not second_modes(torch.zeros(2, 3, 8, 8)).any()  # flat: no mode at all
    assert not second_modes(torch.full((1, 1, 8, 8), 0.3)).any()


@pytest.mark.parametrize("beta", [1.0, 10.0, 50.0])
def test_weight_shares_literal(beta):
    # One spike of 1 at (5, 6), 0.5 within 6 px, the rest of the map at b: the far pixels hold
    # n * expm1(beta b) of the total weight expm1(beta) + expm1(beta / 2) + n * expm1(beta b).
    for b in (0.0, -0.01, 0.02):
        logits = spikes((5, 6, 1.0), (8, 6, 0.5), background=b)
        ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")
        far = torch.hypot(xs - 5, ys - 6) > 6
        near_rest = (~far).sum().item() - 2  # background pixels within 6 px count as the peak's
        n = far.sum().item()
        near = math.expm1(beta) + math.expm1(beta / 2) + near_rest * math.expm1(beta * b)
        total = near + n * math.expm1(beta * b)
        below, above = background_weight_shares(logits, beta)
        expected = n * math.expm1(beta * b) / total  # at beta 1, b -0.01 the total is < 0: expected > 0
        assert below.item() == pytest.approx(expected if b < 0 else 0.0, rel=1e-5, abs=1e-7)
        assert above.item() == pytest.approx(expected if b > 0 else 0.0, rel=1e-5, abs=1e-7)
