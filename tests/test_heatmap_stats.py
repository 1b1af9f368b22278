"""pose.evaluation.heatmaps: the background level and second modes, on hand-made maps."""

import math

import pytest
import torch

from pose.evaluation.heatmaps import background_levels, second_modes
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
