"""pose.models.growth: a Lite0's weights start a Lite1 that computes the same maps and can still grow."""

import pytest
import torch

from pose.keypoints import LSP_14
from pose.models import build_pose_model
from pose.models.growth import can_deepen, deepen

NEW_BLOCKS = ["backbone.blocks.1.2", "backbone.blocks.2.2", "backbone.blocks.3.3", "backbone.blocks.4.3",
              "backbone.blocks.5.4"]  # fmt: skip


def trained_like_lite0():
    """A Lite0 whose weights and BatchNorm statistics are all random: nothing about it is a default."""
    torch.manual_seed(0)
    model = build_pose_model("lite0", LSP_14, (96, 64))
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(
                    torch.rand_like(tensor) + 0.5 if "running_var" in key else 0.1 * torch.randn_like(tensor)
                )
    return model.eval()


def test_the_grown_lite1_computes_exactly_what_the_lite0_did():
    small = trained_like_lite0()
    torch.manual_seed(1)
    big = build_pose_model("lite1", LSP_14, (96, 64))
    own_start = big.get_submodule("backbone.blocks.3.3").conv_dw.weight.clone()
    assert deepen(big, small.state_dict()) == NEW_BLOCKS
    x = torch.randn(3, 3, 96, 64)
    with torch.no_grad():
        want, got = small(x), big.eval()(x)
    assert want.abs().max() > 0.1  # the maps are not trivially zero
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    for name in NEW_BLOCKS:  # silenced at the last BatchNorm only; the rest is the deeper net's own start
        block = big.get_submodule(name)
        assert not block.bn3.weight.any() and not block.bn3.bias.any()
    assert torch.equal(big.get_submodule("backbone.blocks.3.3").conv_dw.weight, own_start)


def test_the_silent_blocks_receive_a_gradient_and_so_can_grow():
    big = build_pose_model("lite1", LSP_14, (96, 64))
    deepen(big, trained_like_lite0().state_dict())
    big.train()(torch.randn(2, 3, 96, 64)).square().mean().backward()
    for name in NEW_BLOCKS:
        assert big.get_submodule(name).bn3.weight.grad.abs().sum() > 0


def test_only_a_deeper_twin_can_be_grown_into():
    assert can_deepen("lite0", "lite1")
    assert not can_deepen("lite1", "lite0") and not can_deepen("lite0", "lite2")
    lite0, lite2 = build_pose_model("lite0", LSP_14, (96, 64)), build_pose_model("lite2", LSP_14, (96, 64))
    with pytest.raises(ValueError, match="of another shape"):
        deepen(lite2, lite0.state_dict())  # Lite2 is wider: shapes differ
    with pytest.raises(ValueError, match="tensors it lacks"):
        deepen(lite0, build_pose_model("lite1", LSP_14, (96, 64)).state_dict())
