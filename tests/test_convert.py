"""training.convert: MPII JSON / RHD pickle -> COCO, loaded by TopDownDataset, scored; bad files refused."""

import json
import pickle
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from pose.data import CropSpec, TopDownDataset
from pose.evaluation import summarize, visibility_masks
from pose.keypoints import HAND_21, MPII_16
from pose.models import build_pose_model
from tests.fixtures import make_mpii_source, make_rhd_source
from training.convert import ConversionError, convert_mpii, convert_rhd, load_rhd
from training.convert import main as convert_main
from training.evaluate import main as evaluate_main


def _write(tmp_path, coco, name="out.json"):
    path = tmp_path / name
    path.write_text(json.dumps(coco))
    return path


def _ground_truth_scores(annotations, images):
    """Load with TopDownDataset and score the ground truth as the prediction."""
    dataset = TopDownDataset(annotations, images, CropSpec(input_size=(64, 64)))
    gt = np.stack([np.nan_to_num(inst.keypoints) for inst in dataset.instances])
    visible, _ = visibility_masks(np.stack([inst.visibility for inst in dataset.instances]))
    boxes = np.stack([np.r_[inst.box[:2], inst.box[2:] - inst.box[:2]] for inst in dataset.instances])
    return dataset, summarize(gt, np.ones(visible.shape), gt, visible, boxes, dataset.schema)


def test_mpii_converts_loads_and_scores_perfectly(tmp_path):
    src, images, people = make_mpii_source(tmp_path)
    coco = convert_mpii(src, images)
    assert [(im["id"], im["height"], im["width"]) for im in coco["images"]] == [(1, 120, 160), (2, 100, 90)]
    assert [a["id"] for a in coco["annotations"]] == [1, 2, 3]
    assert [a["image_id"] for a in coco["annotations"]] == [1, 1, 2]
    assert coco["categories"][0]["skeleton"] == [[i + 1, j + 1] for i, j in MPII_16.skeleton]
    for ann, person in zip(coco["annotations"], people, strict=True):
        kp = np.array(ann["keypoints"]).reshape(16, 3)
        assert np.array_equal(kp[:, 2], np.where(person["labelled"], 2, 0))
        np.testing.assert_allclose(kp[person["labelled"], :2], person["joints"][person["labelled"]])
        assert np.all(kp[~person["labelled"], :2] == 0)  # unlabelled: 0, 0, 0 (the source had -1, -1)
    dataset, result = _ground_truth_scores(_write(tmp_path, coco), images)
    assert dataset.schema == MPII_16 and len(dataset) == 3
    assert result["pckh@0.5"] == 1.0 and result["pckh@0.1"] == 1.0 and result["epe"] == 0.0
    assert result["pckh_norm"] == "head_segment" and result["pckh_n_instances"] == 2  # 3rd: no neck
    assert "auc_0_30" not in result


def test_mpii_box_is_the_baselines_crop_clipped(tmp_path):
    src, images, _ = make_mpii_source(tmp_path)
    person = json.loads(src.read_text())[0]
    ann = convert_mpii(src, images)["annotations"][0]
    cx, cy = np.array(person["center"]) - 1
    side = 200 * person["scale"]
    x0, y0 = max(cx - side / 2, 0), max(cy + 15 * person["scale"] - side / 2, 0)
    x1, y1 = min(cx + side / 2, 160), min(cy + 15 * person["scale"] + side / 2, 120)
    np.testing.assert_allclose(ann["bbox"], [x0, y0, x1 - x0, y1 - y0])
    assert ann["area"] == pytest.approx((x1 - x0) * (y1 - y0))


def test_mpii_offset_and_fixed_size(tmp_path):
    src, _, people = make_mpii_source(tmp_path, offset=0.0)  # an already 0-based file
    coco = convert_mpii(src, default_size=(120, 160), offset=0.0)
    kp = np.array(coco["annotations"][1]["keypoints"]).reshape(16, 3)
    labelled = people[1]["labelled"]
    np.testing.assert_allclose(kp[labelled, :2], people[1]["joints"][labelled])
    assert {(im["height"], im["width"]) for im in coco["images"]} == {(120, 160)}
    with pytest.raises(ConversionError, match="--images"):
        convert_mpii(src)


_PERSON = {"image": "a.jpg", "joints": [[5, 5]] * 16, "joints_vis": [1] * 16, "center": [5, 5], "scale": 1.0}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a readable JSON"),
        (json.dumps({"people": []}), "expected a JSON list"),
        (json.dumps([1]), "person 0: expected an object"),
        (json.dumps([{k: v for k, v in _PERSON.items() if k != "joints"}]), r"missing keys \['joints'\]"),
        (json.dumps([{**_PERSON, "joints": [[5, 5]] * 15}]), r"'joints' must be .* shape \(16, 2\)"),
        (json.dumps([_PERSON, {**_PERSON, "joints_vis": [1] * 14}]), "person 1: 'joints_vis'"),
        (json.dumps([{**_PERSON, "scale": 0}]), "'scale' must be > 0"),
        (json.dumps([{**_PERSON, "center": ["x", 1]}]), "'center' must be finite numbers"),
        (json.dumps([{**_PERSON, "image": 3}]), "'image' must be a file name"),
        (json.dumps([{**_PERSON, "image": "missing.jpg"}]), "missing.jpg"),
    ],
)
def test_mpii_rejects_malformed_files(tmp_path, capsys, content, message):
    src = tmp_path / "bad.json"
    src.write_text(content)
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((20, 30, 3), np.uint8))
    out = tmp_path / "out.json"
    assert convert_main(["mpii", str(src), str(out), "--images", str(tmp_path / "images")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(src) in err and len(err.strip().splitlines()) == 1
    assert re.search(message, err) and not out.exists()


def test_rhd_converts_loads_and_scores_perfectly(tmp_path):
    src, color, uv_vis = make_rhd_source(tmp_path)
    coco = convert_rhd(src)
    assert [(im["id"], im["file_name"]) for im in coco["images"]] == [(1, "00000.png"), (8, "00007.png")]
    assert all((im["height"], im["width"]) == (320, 320) for im in coco["images"])
    anns = coco["annotations"]
    assert [(a["id"], a["image_id"], a["num_keypoints"]) for a in anns] == [(1, 1, 21), (2, 8, 5), (3, 8, 21)]
    hand = uv_vis[7][:21]
    kp = np.array(anns[1]["keypoints"]).reshape(21, 3)
    seen = hand[:, 2] > 0
    np.testing.assert_allclose(kp[seen, :2], hand[seen, :2], rtol=1e-6)
    assert np.all(kp[~seen] == 0)
    x, y, w, h = anns[1]["bbox"]  # spans all 21 projected keypoints, visible or not
    assert x < hand[:, 0].min() and y < hand[:, 1].min()
    assert x + w > hand[:, 0].max() and y + h > hand[:, 1].max()
    dataset, result = _ground_truth_scores(_write(tmp_path, coco), color)
    assert dataset.schema == HAND_21 and len(dataset) == 3
    assert result["auc_0_30"] == 1.0 and result["rhd_epe_mean"] == 0.0 and result["rhd_epe_median"] == 0.0
    assert "pckh@0.5" not in result


def test_rhd_options(tmp_path):
    src, _, uv_vis = make_rhd_source(tmp_path)
    assert [a["num_keypoints"] for a in convert_rhd(src, min_visible=6)["annotations"]] == [21, 21]
    kept = convert_rhd(src, keep_occluded=True)["annotations"][1]
    kp = np.array(kept["keypoints"]).reshape(21, 3)
    assert sorted(set(kp[:, 2])) == [1, 2] and kept["num_keypoints"] == 21
    np.testing.assert_allclose(kp[:, :2], uv_vis[7][:21, :2], rtol=1e-6)
    with pytest.raises(ConversionError, match="min-visible"):
        convert_rhd(src, min_visible=0)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_rhd_pickle_protocols_load(tmp_path, protocol):
    src, _, uv_vis = make_rhd_source(tmp_path, protocol=protocol)
    loaded = load_rhd(src)
    assert sorted(loaded) == [0, 7] and np.array_equal(loaded[7], uv_vis[7])


class _Shell:
    """Unpickling this would run a shell command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return os.system, (self.command,)


class _Eval:
    def __reduce__(self):
        return eval, ("__import__('pathlib').Path('PWNED').touch()",)


def _uv(shape=(42, 3)):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([{"uv_vis": _uv()}], "expected a dict of samples"),
        ({0: {"xyz": _uv()}}, "sample 0: expected a dict with key 'uv_vis'"),
        ({0: {"uv_vis": _uv((21, 3))}}, r"sample 0: 'uv_vis' must be .* shape \(42, 3\)"),
        ({"a": {"uv_vis": _uv()}}, "sample ids must be integers"),
        ({0: {"uv_vis": np.full((42, 3), np.nan)}}, "'uv_vis' must be finite"),
        ({0: _Eval()}, "refused to load builtins.eval"),
    ],
)
def test_rhd_rejects_malformed_files(tmp_path, capsys, payload, message):
    src = tmp_path / "bad.pickle"
    src.write_bytes(pickle.dumps(payload))
    assert convert_main(["rhd", str(src), str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert str(src) in err and re.search(message, err)


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", None])
def test_rhd_rejects_unreadable_files(tmp_path, content):
    src = tmp_path / "bad.pickle"
    if content is not None:
        src.write_bytes(content)
    else:
        src.write_bytes(pickle.dumps({0: {"uv_vis": _uv()}})[:-10])  # truncated
    with pytest.raises(ConversionError, match="not a readable RHD pickle"):
        load_rhd(src)


def test_malicious_pickle_is_refused_not_executed(tmp_path, monkeypatch):
    marker = tmp_path / "executed"
    src = tmp_path / "anno_training.pickle"
    src.write_bytes(pickle.dumps({0: {"uv_vis": _Shell(f"touch {marker}")}}))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConversionError, match=r"refused to load (posix|os|nt)\.system"):
        load_rhd(src)
    assert not marker.exists()


def test_cli_runs_as_a_module(tmp_path):
    src, _, _ = make_rhd_source(tmp_path)
    out = tmp_path / "rhd.json"
    done = subprocess.run(
        [sys.executable, "-m", "training.convert", "rhd", str(src), str(out)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "2 images, 3 rhd annotations" in done.stdout and json.loads(out.read_text())["annotations"]


@pytest.mark.parametrize(
    ("kind", "schema", "keys"),
    [("mpii", MPII_16, {"pckh@0.5", "pckh@0.1"}), ("rhd", HAND_21, {"auc_0_30", "rhd_epe_mean"})],
)
def test_evaluate_reports_the_benchmark_metrics(tmp_path, capsys, kind, schema, keys):
    if kind == "mpii":
        src, images, _ = make_mpii_source(tmp_path)
        args = ["mpii", str(src), str(tmp_path / "coco.json"), "--images", str(images)]
    else:
        src, images, _ = make_rhd_source(tmp_path)
        args = ["rhd", str(src), str(tmp_path / "coco.json")]
    assert convert_main(args) == 0
    build_pose_model("lite0", schema, input_size=(64, 64)).save_pretrained(tmp_path / "model")
    argv = [str(tmp_path / "model"), "--annotations", str(tmp_path / "coco.json"), "--images", str(images)]
    assert evaluate_main([*argv, "--workers", "0", "--out", str(tmp_path / "e.json")]) == 0
    output = capsys.readouterr().out
    summary = json.loads(output.strip().splitlines()[-1])
    assert keys <= set(summary) and all(0 <= summary[k] <= 1 for k in keys if k != "rhd_epe_mean")
    other = {"auc_0_30"} if kind == "mpii" else {"pckh@0.5"}
    assert not other & set(summary)
    if kind == "mpii":
        assert "Shoulder" in output and set(summary["pckh_table"]) >= {"Head", "Ankle", "Mean"}
