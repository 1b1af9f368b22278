"""A reference executor of TF.js graph models (``model.json``), op by op as TensorFlow defines them, for the
test that ``pose.models.movenet`` rebuilt MoveNet Thunder exactly. It runs the published graph itself,
node by node, so it shares no code with the rebuilt network; it knows the ops MoveNet Thunder uses.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from pose.models.tfjs import read_weights


def _text(attr: dict, key: str) -> str:
    return base64.b64decode(attr[key]["s"]).decode()


def _ints(attr: dict, key: str) -> list[int]:
    return [int(i) for i in attr[key]["list"]["i"]]


def _conv(x: Tensor, kernel: Tensor, attr: dict, depthwise: bool) -> Tensor:
    """TF Conv2D / DepthwiseConv2dNative on NHWC with an HWIO / HWCM kernel, SAME or VALID padding."""
    (_, sh, sw, _), (_, dh, dw, _) = _ints(attr, "strides"), _ints(attr, "dilations")
    x, (kh, kw) = x.permute(0, 3, 1, 2), kernel.shape[:2]
    if _text(attr, "padding") == "SAME":  # TF: out = ceil(n / s); the odd pixel of padding goes after
        pads = []
        for n, k, s, d in ((x.shape[3], kw, sw, dw), (x.shape[2], kh, sh, dh)):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            pads += [total // 2, total - total // 2]
        x = F.pad(x, pads)
    if depthwise:
        c, m = kernel.shape[2:]
        weight, groups = kernel.permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw), c
    else:
        weight, groups = kernel.permute(3, 2, 0, 1), 1
    return F.conv2d(x, weight, stride=(sh, sw), dilation=(dh, dw), groups=groups).permute(0, 2, 3, 1)


def _fused(y: Tensor, args: list[Tensor], attr: dict) -> Tensor:
    for op in attr.get("fused_ops", {"list": {}})["list"].get("s", []):
        op = base64.b64decode(op).decode()
        y = {"BiasAdd": lambda t: t + args[0], "Relu": F.relu, "Relu6": lambda t: t.clamp(0, 6)}[op](y)
    return y


class GraphModel:
    """``GraphModel(model_json)({"input": tensor}, outputs=("Identity",))`` -> the named nodes' values."""

    def __init__(self, model_json: str | Path) -> None:
        topology = json.loads(Path(model_json).read_text(encoding="utf-8"))["modelTopology"]
        self.nodes = {node["name"]: node for node in topology["node"]}
        self.consts = {k: torch.from_numpy(v.copy()) for k, v in read_weights(model_json).items()}

    @torch.no_grad()
    def __call__(self, inputs: dict[str, Tensor], outputs: tuple[str, ...] = ("Identity",)) -> list[Tensor]:
        values: dict[str, object] = {}

        def get(ref: str):
            name, _, index = ref.partition(":")
            value = run(name)
            return value[int(index or 0)] if isinstance(value, list) else value

        def run(name: str):
            if name not in values:
                node = self.nodes[name]
                args = [get(i) for i in node.get("input", []) if not i.startswith("^")]
                values[name] = self._op(node, args, inputs)
            return values[name]

        return [run(name) for name in outputs]

    def _op(self, node: dict, a: list, inputs: dict[str, Tensor]):
        op, attr, name = node["op"], node.get("attr", {}), node["name"]
        simple = {
            "Identity": lambda: a[0],
            "AddV2": lambda: a[0] + a[1],
            "Sub": lambda: a[0] - a[1],
            "Mul": lambda: a[0] * a[1],
            "RealDiv": lambda: a[0] / a[1],
            "Sqrt": lambda: torch.sqrt(a[0]),
            "SquaredDifference": lambda: (a[0] - a[1]) ** 2,
            "Sigmoid": lambda: torch.sigmoid(a[0]),
            "FloorDiv": lambda: torch.div(a[0], a[1], rounding_mode="floor"),
            "ExpandDims": lambda: a[0].unsqueeze(int(a[1])),
            "Reshape": lambda: a[0].reshape([int(i) for i in a[1].tolist()]),
            "ArgMax": lambda: a[0].argmax(int(a[1])).to(torch.int32),
            "ConcatV2": lambda: torch.cat(a[:-1], int(a[-1])),
        }
        if op == "Const":
            return self.consts[name]
        if op == "Placeholder":
            return inputs[name]
        if op in simple:
            return simple[op]()
        if op == "Cast":
            return a[0].float() if attr["DstT"]["type"] == "DT_FLOAT" else a[0].to(torch.int32)
        if op == "Unpack":
            return list(torch.unbind(a[0], int(attr["axis"]["i"])))
        if op == "Pack":
            return torch.stack(a, int(attr["axis"]["i"]))
        if op == "Squeeze":
            return a[0].squeeze(tuple(_ints(attr, "squeeze_dims")))
        if op == "GatherNd":
            index = a[1].long()
            return a[0][tuple(index[..., i] for i in range(index.shape[-1]))]
        if op == "ResizeBilinear":  # half-pixel centres, not aligned corners: torch's align_corners=False
            assert attr["half_pixel_centers"]["b"] and not attr["align_corners"]["b"]
            x = a[0].permute(0, 3, 1, 2)
            size = [int(i) for i in a[1].tolist()]
            return F.interpolate(x, size=size, mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
        if op in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            return _fused(_conv(a[0], a[1], attr, op != "_FusedConv2D"), a[2:], attr)
        if op == "DepthwiseConv2dNative":
            return _conv(a[0], a[1], attr, True)
        raise NotImplementedError(f"op {op} ({name})")
