"""pose.losses: literal values, masking, zero at a perfect prediction, gradients."""

import math

import pytest
import torch

from pose.decode import debiased, integral
from pose.losses import coord_l1_losses, heatmap_mse_losses, masked_mean
from pose.targets import gaussian_heatmaps


def test_coord_l1_literal():
    coords = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    targets = torch.tensor([[[1.5, 1.0], [3.0, 4.0]]])
    assert coord_l1_losses(coords, targets).tolist() == [[1.5, 0.0]]


def test_heatmap_mse_literal():
    heatmaps = torch.zeros(1, 2, 2, 2)
    targets = torch.zeros(1, 2, 2, 2)
    targets[0, 0, 0, 0] = 1.0
    targets[0, 1] = 0.5
    assert heatmap_mse_losses(heatmaps, targets).tolist() == [[0.25, 0.25]]


def test_masked_mean_literal_and_nan_safe():
    losses = torch.tensor([[1.0, float("nan")], [3.0, 5.0]], requires_grad=True)
    weights = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    value = masked_mean(losses, weights)
    assert value.item() == pytest.approx(3.0)
    value.backward()
    assert torch.equal(losses.grad, torch.tensor([[1 / 3, 0.0], [1 / 3, 1 / 3]]))


def test_masked_mean_all_masked_is_zero_and_attached():
    losses = torch.tensor([[2.0, float("inf")]], requires_grad=True)
    value = masked_mean(losses, torch.zeros(1, 2))
    assert value.item() == 0.0 and value.requires_grad
    value.backward()
    assert torch.equal(losses.grad, torch.zeros(1, 2))


@pytest.mark.parametrize("decoder", [integral, debiased])
def test_zero_at_perfect_prediction(decoder):
    truth = torch.tensor([[[20.5, 30.0], [10.0, 12.5]]])
    heatmaps = gaussian_heatmaps(truth, (64, 48), 2.0)
    assert heatmap_mse_losses(heatmaps, heatmaps).abs().max().item() == 0.0
    # A map centred on the grid is unbiased for both decoders; elsewhere only debiased is.
    centred = gaussian_heatmaps(torch.tensor([[[23.5, 31.5]]]), (64, 48), 2.0)
    coords, _ = decoder(centred, 4.0)
    assert coord_l1_losses(coords, torch.tensor([[[23.5, 31.5]]])).item() < 1e-4


def test_debiased_l1_near_zero_where_integral_is_biased():
    truth = torch.tensor([[[6.0, 8.0]]])
    heatmaps = gaussian_heatmaps(truth, (64, 48), 2.0)
    weights = torch.ones(1, 1)
    loss_debiased = masked_mean(coord_l1_losses(debiased(heatmaps, 4.0)[0], truth), weights)
    loss_integral = masked_mean(coord_l1_losses(integral(heatmaps, 4.0)[0], truth), weights)
    assert loss_debiased.item() < 0.01 < 1.0 < loss_integral.item()


def test_l1_gradient_points_toward_target():
    logits = gaussian_heatmaps(torch.tensor([[[20.0, 30.0]]]), (64, 48), 2.0).requires_grad_(True)
    coords, _ = debiased(logits, 4.0)
    masked_mean(coord_l1_losses(coords, torch.tensor([[[25.0, 30.0]]])), torch.ones(1, 1)).backward()
    grad = logits.grad[0, 0]
    # Descending the gradient raises logits right of the estimate and lowers those left of it.
    assert grad[30, 22].item() < 0 < grad[30, 18].item()
    assert math.isfinite(grad.abs().sum().item())
