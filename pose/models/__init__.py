"""Pose models: timm backbones + heatmap heads (SimpleBaseline, HRNet, EfficientNet-Lite0/1/2), ImageNet
weight loading, and PoseModel checkpoints (config.json + model.safetensors, local or on the Hugging Face Hub).
"""

from pose.models.architectures import DEFAULT_INPUT_SIZES, MODELS
from pose.models.checkpoints import CheckpointError
from pose.models.heads import HeatmapHead
from pose.models.imagenet import (
    lite_package_state_dict,
    lite_state_dict_from_package,
    load_backbone_weights,
)
from pose.models.pose_model import PoseModel, build_pose_model

__all__ = [
    "DEFAULT_INPUT_SIZES",
    "MODELS",
    "CheckpointError",
    "HeatmapHead",
    "PoseModel",
    "build_pose_model",
    "lite_package_state_dict",
    "lite_state_dict_from_package",
    "load_backbone_weights",
]
