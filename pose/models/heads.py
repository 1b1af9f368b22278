"""The heatmap head: SimpleBaseline's deconvolutions (Xiao et al. 2018) then a 1x1 convolution to K logits.

With zero deconvolutions it is the pose HRNet's final layer (a 1x1 convolution on the stride-4 branch).
"""

from __future__ import annotations

from torch import Tensor, nn

# SimpleBaseline's init (normal, std 0.001; biases 0): a fresh model emits logits within about 0.01-0.2 of
# 0, a flat map whose background is already at 0 — the state the debiased decoder assumes (exp(beta * 0) = 1
# per background pixel) and the background value of the heatmap MSE target, so training does not first
# have to unlearn a random offset.
_INIT_STD = 0.001


class HeatmapHead(nn.Module):
    """``num_deconvs`` x (4x4 transposed conv, stride 2 -> BatchNorm -> ReLU), then a 1x1 conv to K.

    Each deconvolution doubles the resolution, so a stride-32 backbone needs 3 to reach stride 4.

    Args:
        in_channels: Channels C of the backbone's map.
        num_keypoints: K, the number of output maps.
        channels: Channels of every deconvolution (256 in SimpleBaseline).
        num_deconvs: Number of deconvolution blocks; 0 leaves only the 1x1 conv.
    """

    def __init__(self, in_channels: int, num_keypoints: int, channels: int = 256, num_deconvs: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(num_deconvs):
            # kernel 4, stride 2, padding 1: exactly 2x the input size, as in SimpleBaseline.
            layers += [
                nn.ConvTranspose2d(in_channels, channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
            in_channels = channels
        self.deconvs = nn.Sequential(*layers)
        self.final = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)
        self.upsampling = 2**num_deconvs
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """SimpleBaseline's init: weights normal(0, 0.001), BatchNorm to identity, biases 0."""
        for m in self.modules():
            if isinstance(m, nn.ConvTranspose2d | nn.Conv2d):
                nn.init.normal_(m.weight, std=_INIT_STD)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, features: Tensor) -> Tensor:
        """``(B, C, h, w)`` features -> ``(B, K, h * 2^n, w * 2^n)`` logits."""
        return self.final(self.deconvs(features))
