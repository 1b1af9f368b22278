"""timm backbones that return the one feature map a pose head decodes from: ResNet and EfficientNet-Lite0/1/2
(last stage, stride 32) and HRNet (the stride-4 high-resolution branch of stage 4).

Each backbone returns a list holding that single map ``(B, C, H/s, W/s)``; ``feature_info`` gives C and s.
"""

from __future__ import annotations

import timm
from torch import nn


def resnet(name: str) -> nn.Module:
    """A timm ResNet (``resnet50``, ``resnet101``, ``resnet152``) cut after ``layer4``.

    Returns:
        A module mapping ``(B, 3, H, W)`` to ``[(B, 2048, H/32, W/32)]``.
    """
    return timm.create_model(name, pretrained=False, features_only=True, out_indices=(4,))


def efficientnet_lite(variant: int = 0) -> nn.Module:
    """timm's ``tf_efficientnet_lite{variant}`` (0, 1 or 2) up to its last block stage (``blocks.6``: 320
    channels for Lite0 and Lite1, 352 for Lite2).

    The 1x1 ``conv_head`` to 1280 channels is left out: it exists to feed the classifier's pooling, and
    SimpleBaseline likewise decodes from the last residual stage.

    Returns:
        A module mapping ``(B, 3, H, W)`` to ``[(B, C, H/32, W/32)]``.
    """
    if variant not in (0, 1, 2):
        raise ValueError(f"EfficientNet-Lite variant must be 0, 1 or 2, not {variant!r}")
    name = f"tf_efficientnet_lite{variant}"
    return timm.create_model(name, pretrained=False, features_only=True, out_indices=(4,))


def hrnet(name: str) -> nn.Module:
    """A timm HRNet (``hrnet_w32``, ``hrnet_w48``) that returns stage 4's high-resolution branch.

    timm features used: ``features_only=True, feature_location=''`` gives the raw outputs of the stem
    (stride 2) and of stage 4's four branches (strides 4, 8, 16, 32; W, 2W, 4W, 8W channels), without the
    classification head's channel-widening ``incre`` blocks (timm's default ``feature_location='incre'``
    would return those instead). ``out_indices=(1,)`` keeps the stride-4 branch: W channels,
    64x48 for a 256x192 input — the map the pose HRNet (Sun et al. 2019) decodes from.

    As in the pose HRNet, the last module of stage 4 fuses into that branch only (its
    ``multi_scale_output`` is False): the fusions into the three coarser branches would feed nothing, and
    leaving them in would cost compute and leave parameters that never receive a gradient.

    Returns:
        A module mapping ``(B, 3, H, W)`` to ``[(B, W, H/4, W/4)]`` (W = 32 or 48).
    """
    model = timm.create_model(
        name, pretrained=False, features_only=True, feature_location="", out_indices=(1,)
    )
    last = model.stage4[-1]
    last.multi_scale_output = False
    last.fuse_layers = last.fuse_layers[:1]
    return model


def feature_channels(backbone: nn.Module) -> int:
    """Channels C of the map a backbone from this module returns."""
    return int(backbone.feature_info.channels()[-1])


def feature_stride(backbone: nn.Module) -> int:
    """Stride s (input pixels per feature pixel) of the map a backbone from this module returns."""
    return int(backbone.feature_info.reduction()[-1])


def timm_architecture(backbone: nn.Module) -> str:
    """The timm classifier this backbone was cut from, no pretrained tag: ``"tf_efficientnet_lite0"``."""
    return backbone.pretrained_cfg["architecture"]


def timm_name(backbone: nn.Module) -> str:
    """The timm classifier, with pretrained tag, whose ImageNet weights fit this backbone, e.g.
    ``"resnet50.a1_in1k"``."""
    tag = backbone.pretrained_cfg.get("tag")
    return f"{timm_architecture(backbone)}.{tag}" if tag else timm_architecture(backbone)
