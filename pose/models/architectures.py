"""The table of pose architectures: name -> constructor of (backbone, head), and each one's default input.

SimpleBaseline (Xiao et al. 2018) on ResNets, the pose HRNet (Sun et al. 2019), and a small Lite0 model
for CPUs. Every model maps ``(B, 3, H, W)`` to logits ``(B, K, H/4, W/4)``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from pose.models import backbones
from pose.models.heads import HeatmapHead

Constructor = Callable[[int], tuple[nn.Module, nn.Module]]


def simple_baseline(resnet: str, num_keypoints: int) -> tuple[nn.Module, nn.Module]:
    """SimpleBaseline: a timm ResNet (stride 32, 2048 ch) + 3 deconvs of 256 channels + 1x1 conv to K."""
    backbone = backbones.resnet(resnet)
    return backbone, HeatmapHead(backbones.feature_channels(backbone), num_keypoints, channels=256)


def pose_hrnet(hrnet: str, num_keypoints: int) -> tuple[nn.Module, nn.Module]:
    """The pose HRNet: timm HRNet's stride-4 branch of stage 4 (see ``backbones.hrnet``) + 1x1 conv to K."""
    backbone = backbones.hrnet(hrnet)
    return backbone, HeatmapHead(backbones.feature_channels(backbone), num_keypoints, num_deconvs=0)


def lite0(num_keypoints: int) -> tuple[nn.Module, nn.Module]:
    """EfficientNet-Lite0 (stride 32, 320 ch) + 3 deconvs of 128 channels + 1x1 conv to K.

    Half SimpleBaseline's deconv width: at 256 channels the head would cost more than the whole backbone
    (the last two deconvs run at stride 8 and 4), and this model exists to run in real time on a CPU.
    """
    backbone = backbones.efficientnet_lite0()
    return backbone, HeatmapHead(backbones.feature_channels(backbone), num_keypoints, channels=128)


MODELS: dict[str, Constructor] = {
    "simplebaseline_resnet50": partial(simple_baseline, "resnet50"),
    "simplebaseline_resnet101": partial(simple_baseline, "resnet101"),
    "simplebaseline_resnet152": partial(simple_baseline, "resnet152"),
    "hrnet_w32": partial(pose_hrnet, "hrnet_w32"),
    "hrnet_w48": partial(pose_hrnet, "hrnet_w48"),
    "lite0": lite0,
}

# (height, width). 256x192 is the COCO setting of SimpleBaseline, HRNet and the paper. Lite0 gets 224x160:
# the size divisible by 32 nearest the 4:3 person crop that keeps it well above 60 crops/s on 2 CPU
# threads (about 100 at batch 8; 256x192 gave 59; 192x144, the scaled-down 4:3 size, is not divisible by 32).
DEFAULT_INPUT_SIZES: dict[str, tuple[int, int]] = {
    "simplebaseline_resnet50": (256, 192),
    "simplebaseline_resnet101": (256, 192),
    "simplebaseline_resnet152": (256, 192),
    "hrnet_w32": (256, 192),
    "hrnet_w48": (256, 192),
    "lite0": (224, 160),
}
