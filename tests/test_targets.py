"""Tests for pose.targets: literal Gaussian values, sub-pixel centroids, visibility weights."""

import math

import pytest
import torch

from pose.targets import (
    coordinate_targets,
    gaussian_heatmaps,
    keypoint_targets,
    visibility_weights,
)

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")),
]


def _centroid(heatmap):
    """Intensity-weighted (x, y) of a (H, W) map, in float64."""
    h = heatmap.double()
    ys = torch.arange(h.shape[0], dtype=torch.float64)
    xs = torch.arange(h.shape[1], dtype=torch.float64)
    total = h.sum()
    return torch.stack([(h.sum(0) * xs).sum() / total, (h.sum(1) * ys).sum() / total])


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_peak_and_neighbour_values(sigma):
    heatmap = gaussian_heatmaps(torch.tensor([[10.0, 7.0]]), (16, 20), sigma)[0]
    assert heatmap[7, 10] == 1.0
    assert heatmap.argmax() == 7 * 20 + 10
    one_step = math.exp(-1 / (2 * sigma**2))
    for y, x in [(7, 11), (7, 9), (6, 10), (8, 10)]:
        assert heatmap[y, x].item() == pytest.approx(one_step, rel=1e-6)
    assert heatmap[8, 11].item() == pytest.approx(one_step**2, rel=1e-6)


def test_exact_gaussian_everywhere():
    center = (3.25, 5.5)
    heatmap = gaussian_heatmaps(torch.tensor([center]), (12, 9), 1.5)[0].double()
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(9.0), indexing="ij")
    expected = torch.exp(-((xs - center[0]) ** 2 + (ys - center[1]) ** 2) / (2 * 1.5**2))
    torch.testing.assert_close(heatmap, expected.double(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("center", [(20.0, 30.0), (23.3, 31.7), (24.5, 28.25), (17.91, 35.03)])
def test_subpixel_centroid_equals_centre(center):
    heatmap = gaussian_heatmaps(torch.tensor([center]), (64, 48), sigma=2.0)[0]
    centroid = _centroid(heatmap)
    torch.testing.assert_close(centroid, torch.tensor(center, dtype=torch.float64), rtol=0, atol=1e-4)


@pytest.mark.parametrize("batch_shape", [(), (3,), (2, 4)])
def test_shapes_with_batch_dims(batch_shape):
    coords = torch.rand(*batch_shape, 17, 2) * 40
    heatmaps = gaussian_heatmaps(coords, (64, 48))
    assert heatmaps.shape == (*batch_shape, 17, 64, 48)
    assert heatmaps.dtype == torch.float32
    flat = heatmaps.reshape(-1, 64, 48)
    torch.testing.assert_close(flat[-1], gaussian_heatmaps(coords.reshape(-1, 2)[-1:], (64, 48))[0])


def test_float64_coords_give_float32():
    heatmaps, targets, weights = keypoint_targets(
        torch.tensor([[5.0, 5.0]], dtype=torch.float64), torch.tensor([2]), (16, 12)
    )
    assert heatmaps.dtype == targets.dtype == weights.dtype == torch.float32


def test_sigma_must_be_positive():
    with pytest.raises(ValueError):
        gaussian_heatmaps(torch.zeros(1, 2), (8, 8), sigma=0.0)


@pytest.mark.parametrize(
    ("visibility", "xy", "expected"),
    [
        (2, (10.0, 10.0), 1.0),
        (1, (10.0, 10.0), 1.0),  # occluded but labelled
        (0, (10.0, 10.0), 0.0),  # unlabelled
        (2, (-0.5, -0.5), 1.0),  # top-left edge is inside
        (2, (47.5, 63.5), 1.0),  # bottom-right edge is inside
        (2, (-0.51, 10.0), 0.0),
        (2, (10.0, 63.51), 0.0),
        (2, (48.0, 10.0), 0.0),
        (2, (float("nan"), 10.0), 0.0),
        (2, (10.0, float("nan")), 0.0),
    ],
)
def test_visibility_weights_literal(visibility, xy, expected):
    weights = visibility_weights(torch.tensor([visibility]), torch.tensor([xy]), (64, 48))
    assert weights.dtype == torch.float32
    assert weights.tolist() == [expected]


def test_coordinate_targets_zero_weightless_joints():
    coords = torch.tensor([[1.5, 2.5], [float("nan"), float("nan")], [100.0, 3.0]])
    got = coordinate_targets(coords, torch.tensor([1.0, 0.0, 0.0]))
    assert got.tolist() == [[1.5, 2.5], [0.0, 0.0], [0.0, 0.0]]


def test_keypoint_targets_zero_invisible_joints():
    coords = torch.tensor([[[10.0, 12.0], [float("nan"), float("nan")], [5.0, 5.0], [60.0, 5.0]]])
    visibility = torch.tensor([[2, 0, 0, 2]])
    heatmaps, targets, weights = keypoint_targets(coords, visibility, (64, 48), sigma=2.0)
    assert heatmaps.shape == (1, 4, 64, 48) and targets.shape == (1, 4, 2)
    assert weights.tolist() == [[1.0, 0.0, 0.0, 0.0]]
    assert heatmaps[0, 0, 12, 10] == 1.0
    assert torch.all(heatmaps[0, 1:] == 0)
    assert torch.isfinite(targets).all() and targets[0, 0].tolist() == [10.0, 12.0]


@pytest.mark.parametrize("device", DEVICES)
def test_targets_stay_on_device(device):
    coords = torch.tensor([[3.0, 4.0], [7.5, 1.25]], device=device)
    visibility = torch.tensor([2, 1], device=device)
    heatmaps, targets, weights = keypoint_targets(coords, visibility, (8, 10))
    for t in (heatmaps, targets, weights):
        assert t.device.type == device
    cpu = keypoint_targets(coords.cpu(), visibility.cpu(), (8, 10))
    torch.testing.assert_close(heatmaps.cpu(), cpu[0])
