"""debias-pose: top-down 2D pose estimation with the bias-compensated integral regression of
Gu, Yang and Yao, "Removing the Bias of Integral Pose Regression" (ICCV 2021).

Submodules: keypoints (schemas), geometry (crops and coordinate maps), targets (encode), decode
(argmax / integral / debiased), losses, models (PoseModel, checkpoints), inference (Predictor), data,
evaluation. ``pose.PoseModel`` and ``pose.Predictor`` are imported on first use, so that importing a
light submodule such as ``pose.decode`` does not load timm or huggingface_hub.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["PoseModel", "Predictor", "__version__"]

if TYPE_CHECKING:
    from pose.inference import Predictor
    from pose.models import PoseModel


def __getattr__(name: str) -> Any:
    # PEP 562: resolve the two headline classes lazily.
    if name == "PoseModel":
        from pose.models import PoseModel

        return PoseModel
    if name == "Predictor":
        from pose.inference import Predictor

        return Predictor
    raise AttributeError(f"module 'pose' has no attribute {name!r}")
