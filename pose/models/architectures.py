"""The table of pose architectures: name -> constructor of (backbone, head), and each one's default input.

SimpleBaseline (Xiao et al. 2018) on ResNets, the pose HRNet (Sun et al. 2019), small EfficientNet-Lite
models for CPUs (Lite0, and the wider, deeper Lite1 and Lite2), and MoveNet Thunder's features (pose-trained,
for CPUs too). Every model maps ``(B, 3, H, W)`` to
logits ``(B, K, H/4, W/4)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from pose.models import backbones
from pose.models.heads import HeatmapHead
from pose.models.movenet import WIDTH, MoveNetFeatures, MoveNetHead

Constructor = Callable[[int], tuple[nn.Module, nn.Module]]


def simple_baseline(resnet: str, num_keypoints: int) -> tuple[nn.Module, nn.Module]:
    """SimpleBaseline: a timm ResNet (stride 32, 2048 ch) + 3 deconvs of 256 channels + 1x1 conv to K."""
    backbone = backbones.resnet(resnet)
    return backbone, HeatmapHead(backbones.feature_channels(backbone), num_keypoints, channels=256)


def pose_hrnet(hrnet: str, num_keypoints: int) -> tuple[nn.Module, nn.Module]:
    """The pose HRNet: timm HRNet's stride-4 branch of stage 4 (see ``backbones.hrnet``) + 1x1 conv to K."""
    backbone = backbones.hrnet(hrnet)
    return backbone, HeatmapHead(backbones.feature_channels(backbone), num_keypoints, num_deconvs=0)


def lite(variant: int, num_keypoints: int) -> tuple[nn.Module, nn.Module]:
    """EfficientNet-Lite0/1/2 (stride 32, 320/320/352 ch) + 3 deconvs of 128 channels + 1x1 conv to K.

    Half SimpleBaseline's deconv width: at 256 channels the head would cost more than the whole backbone
    (the last two deconvs run at stride 8 and 4), and these models exist to run in real time on a CPU.
    """
    backbone = backbones.efficientnet_lite(variant)
    return backbone, HeatmapHead(backbones.feature_channels(backbone), num_keypoints, channels=128)


def movenet(num_keypoints: int) -> tuple[nn.Module, nn.Module]:
    """MoveNet Thunder's MobileNetV2 x1.75 and pyramid (stride 4, 24 ch) + its heatmap branch, 1x1 conv to K.

    The one arch whose pretrained weights come from a pose model, not from ImageNet classification
    (``pretrained='package'``: ``pose.models.tfjs``).
    """
    return MoveNetFeatures(), MoveNetHead(WIDTH, num_keypoints)


MODELS: dict[str, Constructor] = {
    "simplebaseline_resnet50": partial(simple_baseline, "resnet50"),
    "simplebaseline_resnet101": partial(simple_baseline, "resnet101"),
    "simplebaseline_resnet152": partial(simple_baseline, "resnet152"),
    "hrnet_w32": partial(pose_hrnet, "hrnet_w32"),
    "hrnet_w48": partial(pose_hrnet, "hrnet_w48"),
    "lite0": partial(lite, 0),
    "lite1": partial(lite, 1),
    "lite2": partial(lite, 2),
    "movenet": movenet,
}

# (height, width). 256x192 is the COCO setting of SimpleBaseline, HRNet and the paper. Lite0 gets 224x160:
# the size divisible by 32 nearest the 4:3 person crop that keeps it well above 60 crops/s on 2 CPU
# threads (about 100 at batch 8; 256x192 gave 59; 192x144, the scaled-down 4:3 size, is not divisible by 32).
# Lite1 and Lite2 (ImageNet at 240 and 260 px) get the COCO 256x192: they exist for accuracy over speed;
# so does MoveNet (trained on 256x256 square frames).
DEFAULT_INPUT_SIZES: dict[str, tuple[int, int]] = {
    "simplebaseline_resnet50": (256, 192),
    "simplebaseline_resnet101": (256, 192),
    "simplebaseline_resnet152": (256, 192),
    "hrnet_w32": (256, 192),
    "hrnet_w48": (256, 192),
    "lite0": (224, 160),
    "lite1": (256, 192),
    "lite2": (256, 192),
    "movenet": (256, 192),
}
