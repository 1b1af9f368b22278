"""training.evaluate (JSON last line, one network pass for all decoders, errors) and training.compare."""

import json
import math

import numpy as np
import pytest
import torch

from pose.data import CropSpec, TopDownDataset
from pose.evaluation.predictions import DatasetPredictions, predict_dataset, predict_dataset_at, score
from pose.keypoints import COCO_17, LSP_14
from pose.models import PoseModel, build_pose_model
from tests.fixtures import make_coco_dataset
from training import compare
from training.evaluate import main as evaluate_main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    annotations, images = make_coco_dataset(root, n_images=6, size=(96, 128), seed=3)
    model = build_pose_model("lite0", COCO_17, input_size=(64, 64))
    model.save_pretrained(root / "model")
    return root, annotations, images


def test_last_line_is_the_json_summary(tiny, tmp_path, capsys):
    root, annotations, images = tiny
    out = tmp_path / "evaluation.json"
    args = [
        str(root / "model"),
        "--annotations",
        str(annotations),
        "--images",
        str(images),
        "--out",
        str(out),
    ]
    assert evaluate_main([*args, "--workers", "0"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"pck@0.2", "pck_norm", "epe", "auc", "ap", "decoder", "beta", "n_instances"} <= set(summary)
    assert summary["decoder"] == "debiased" and summary["beta"] == 10.0 and summary["n_instances"] == 6
    assert summary["pck_norm"] == "torso" and 0 <= summary["pck@0.2"] <= 1 and summary["epe"] > 0
    report = json.loads(out.read_text())
    assert set(report["splits"]["debiased"]) == {"box_size", "num_joints", "occlusion"}


def test_the_background_level_is_reported(tiny, tmp_path, capsys):
    root, annotations, images = tiny
    model = PoseModel.from_pretrained(str(root / "model"))
    with torch.no_grad():  # every logit 0.01: a flat map off the zero the compensation assumes
        model.head.final.weight.zero_()
        model.head.final.bias.fill_(0.01)
    model.save_pretrained(tmp_path / "flat")
    args = [str(tmp_path / "flat"), "--annotations", str(annotations), "--images", str(images)]
    assert evaluate_main([*args, "--workers", "0"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["background_mean"] == pytest.approx(0.01, abs=1e-6)
    assert summary["background_median"] == pytest.approx(0.01, abs=1e-6)
    assert summary["second_mode_share"] == 0.0
    assert "mean +0.0100" in out


def test_all_decoders_share_one_network_pass(tiny, tmp_path, capsys, monkeypatch):
    root, annotations, images = tiny
    calls = []
    original = PoseModel.forward
    monkeypatch.setattr(PoseModel, "forward", lambda self, x: calls.append(len(x)) or original(self, x))
    args = [str(root / "model"), "--annotations", str(annotations), "--images", str(images)]
    extra = ["--decoder", "all", "--beta", "5", "--batch-size", "4", "--workers", "0"]
    extra += ["--out", str(tmp_path / "e.json")]
    assert evaluate_main([*args, *extra]) == 0
    assert calls == [4, 2]  # six crops in batches of four, once
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["beta"] == 5.0 and set(summary["others"]) == {"argmax", "integral"}
    assert all(math.isfinite(summary["others"][name]["epe"]) for name in summary["others"])


def test_several_betas_share_one_network_pass_and_match_one_beta_runs(tiny, monkeypatch):
    """predict_dataset_at (export's beta 10 + beta 3) decodes each beta from one forward pass, and each
    beta's predictions equal a run at that beta alone; the logit statistics do not depend on beta."""
    root, annotations, images = tiny
    model = PoseModel.from_pretrained(str(root / "model"))
    crop = CropSpec(input_size=model.input_size, mean=model.mean, std=model.std)
    dataset = TopDownDataset(str(annotations), str(images), crop)
    # An untrained head's logits are ~1e-7, flat maps that decode alike at every beta: add an off-centre
    # peak (height 0.5 at heatmap (3, 4)) so that beta matters, as on a trained model.
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    peak = 0.5 * torch.exp(-((xs - 3) ** 2 + (ys - 4) ** 2) / 2)
    calls = []
    original = PoseModel.forward
    monkeypatch.setattr(
        PoseModel, "forward", lambda self, x: calls.append(len(x)) or original(self, x) + peak
    )
    plan = {10.0: ["argmax", "debiased", "integral"], 3.0: ["debiased", "integral"]}
    at = predict_dataset_at(model, dataset, plan, batch_size=4)
    assert calls == [4, 2] and set(at) == {10.0, 3.0}
    for beta, names in plan.items():
        alone = predict_dataset(model, dataset, names, beta, batch_size=4)
        assert set(at[beta].preds) == set(names)
        for name in names:
            np.testing.assert_allclose(at[beta].preds[name], alone.preds[name], atol=1e-5)
            np.testing.assert_allclose(at[beta].scores[name], alone.scores[name], atol=1e-6)
        np.testing.assert_array_equal(at[beta].background, at[10.0].background)
    moved = np.linalg.norm(at[3.0].preds["integral"] - at[10.0].preds["integral"], axis=-1)
    assert moved.max() > 0.1  # the betas really differ: integral's J_r moves with beta


def test_split_file_limits_the_images(tiny, tmp_path, capsys):
    root, annotations, images = tiny
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train_image_ids": [1, 2, 3, 4], "val_image_ids": [5, 6]}))
    args = [str(root / "model"), "--annotations", str(annotations), "--images", str(images)]
    assert (
        evaluate_main([*args, "--split", str(split), "--workers", "0", "--out", str(tmp_path / "e.json")])
        == 0
    )
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_instances"] == 2


def test_input_size_scores_the_weights_at_another_crop_size(tiny, tmp_path, capsys, monkeypatch):
    # The same weights saved with another input size score exactly as --input-size does.
    root, annotations, images = tiny
    model = PoseModel.from_pretrained(str(root / "model"))
    model.input_size = (96, 64)
    model.save_pretrained(tmp_path / "resized")
    shapes = []
    original = PoseModel.forward
    monkeypatch.setattr(PoseModel, "forward", lambda self, x: shapes.append(x.shape[2:]) or original(self, x))
    args = ["--annotations", str(annotations), "--images", str(images), "--workers", "0"]
    summaries = []
    for checkpoint, extra in ((root / "model", ["--input-size", "96", "64"]), (tmp_path / "resized", [])):
        assert evaluate_main([str(checkpoint), *args, *extra]) == 0
        summaries.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))
    assert set(shapes) == {(96, 64)}
    assert summaries[0] == summaries[1] and summaries[0]["input_size"] == [96, 64]
    assert evaluate_main([str(root / "model"), *args]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["input_size"] == [64, 64]


def test_missing_checkpoint_is_a_clear_error(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, annotations, images = tiny
    missing = str(tmp_path / "no-such-model")
    assert evaluate_main([missing, "--annotations", str(annotations), "--images", str(images)]) == 2
    assert "no-such-model" in capsys.readouterr().err


def test_a_model_of_other_keypoints_is_refused_before_the_network_runs(tiny, tmp_path, capsys, monkeypatch):
    # A 14-joint LSP model on a 17-joint COCO file used to run every crop, then crash in pycocotools.
    _, annotations, images = tiny
    build_pose_model("lite0", LSP_14, input_size=(64, 64)).save_pretrained(tmp_path / "lsp")
    calls = []
    monkeypatch.setattr(PoseModel, "forward", lambda self, x: calls.append(len(x)))
    args = [str(tmp_path / "lsp"), "--annotations", str(annotations), "--images", str(images)]
    assert evaluate_main([*args, "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and calls == []
    assert "predicts 14 keypoints (lsp14)" in err and f"{annotations} has 17" in err
    assert "evaluate it on annotations of its own keypoints" in err


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--images": "no_such_folder"}, "--images: no such folder"),
        ({"--annotations": "no_such.json"}, "--annotations: no such file"),
        ({"--split": "no_split.json"}, "--split: cannot read val_image_ids"),
        ({"--decoder": "softargmax"}, "--decoder must be one of"),
        ({"--input-size": "100 64"}, "--input-size: input_size must be (H, W) with both divisible by 32"),
    ],
)
def test_bad_arguments_are_one_line_before_the_network_runs(tiny, tmp_path, capsys, change, message):
    root, annotations, images = tiny
    options = {"--annotations": str(annotations), "--images": str(images), "--workers": "0"}
    options.update(
        {k: v if k.startswith(("--decoder", "--input")) else str(tmp_path / v) for k, v in change.items()}
    )
    argv = [x for k, v in options.items() for x in (k, *v.split())]  # "--input-size": two values
    assert evaluate_main([str(root / "model"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_evaluation_json_only_with_out_and_never_overwritten_silently(tiny, tmp_path, capsys, monkeypatch):
    root, annotations, images = tiny
    monkeypatch.chdir(tmp_path)  # it used to write evaluation.json here, unasked
    args = [str(root / "model"), "--annotations", str(annotations), "--images", str(images), "--workers", "0"]
    assert evaluate_main(args) == 0
    assert list(tmp_path.iterdir()) == []
    out = tmp_path / "mine.json"
    out.write_text("keep me")
    assert evaluate_main([*args, "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.read_text() == "keep me"
    assert evaluate_main([*args, "--out", str(out), "--force"]) == 0
    keys = {"checkpoint", "beta", "flip", "input_size", "decoders", "heatmaps", "splits"}
    assert set(json.loads(out.read_text())) == keys


@pytest.mark.parametrize(("offset", "correct"), [(17.9, True), (18.1, False)])
def test_score_normalises_a_torso_less_person_by_its_box_size(tmp_path, offset, correct):
    # The data set's boxes are corners (x0, y0, x1, y1); PCK's box norms need (w, h): here w 100, h 300,
    # so the fallback norm is 0.3 x 300 = 90 px and 0.2 of it 18 px. Read as (x, y, w, h), the box
    # would give 0.3 x 400 = 120 px and count 18.1 px as correct.
    gt = np.full((1, 17, 2), 150.0) + np.arange(17)[None, :, None]
    visible = np.full((1, 17), 2)
    visible[0, [COCO_17.index(n) for n in ("left_hip", "right_hip")]] = 0
    data = DatasetPredictions(
        preds={"debiased": gt + [offset, 0.0]},
        scores={"debiased": np.ones((1, 17))},
        keypoints_image=gt,
        visibility=visible,
        box=np.array([[100.0, 100.0, 200.0, 400.0]]),
        image_id=np.array([1]),
    )
    result = score(data, "debiased", COCO_17, annotations=None)
    assert result["pck_n_fallback"] == 1 and result["pck@0.2_torso"] is None
    assert result["pck@0.2"] == (1.0 if correct else 0.0)


def test_compare_writes_json_and_html(tiny, tmp_path):
    root, annotations, images = tiny
    data = [f"train_annotations={annotations}", f"train_images={images}", "val_fraction=0.34"]
    budget = ["input_size=64,64", "batch_size=2", "num_workers=0", "epochs=2", "max_steps_per_epoch=1"]
    base = [*data, *budget, "aug_epochs=1"]
    assert compare.main([*base, "--out", str(tmp_path), "--groups", "methods"]) == 0
    results = json.loads((tmp_path / "compare.json").read_text())
    assert results["groups"] == {"methods": ["detection", "ipr", "debiased"]}
    for name in ("detection", "ipr", "debiased"):
        run = results["runs"][name]
        assert [e["epoch"] for e in run["epochs"]] == [0, 1] and "val_epe" in run["final"]
        assert run["splits"]["box_size"]["bins"]
    page = (tmp_path / "compare.html").read_text()
    assert "Plotly.newPlot" in page and "paper Table 1" in page
    # A second call resumes every finished run instead of training again.
    before = (tmp_path / "ipr" / "metrics.jsonl").read_text()
    assert compare.main([*base, "--out", str(tmp_path), "--groups", "methods"]) == 0
    assert (tmp_path / "ipr" / "metrics.jsonl").read_text() == before


def test_ablation_runs_are_config_switches():
    overrides = {name: compare.run_overrides(name, [], compare.Path("x"), 7) for name in compare.RUNS}
    assert "heatmap_epochs=7" in overrides["ipr_laug"] and "heatmap_epochs=-1" in overrides["ipr_lde"]
    assert "heatmap_epochs=0" in overrides["debiased_no_laug"] and "beta=20" in overrides["debiased_beta20"]


def test_the_bias_group_trains_each_run_per_seed_on_one_hold_out(tiny, tmp_path):
    root, annotations, images = tiny
    data = [f"train_annotations={annotations}", f"train_images={images}", "val_fraction=0.34"]
    budget = ["input_size=64,64", "batch_size=2", "num_workers=0", "epochs=2", "max_steps_per_epoch=1"]
    argv = [*data, *budget, "split_seed=5", "--out", str(tmp_path), "--groups", "bias", "--seeds", "3,4"]
    assert compare.main(argv) == 0
    results = json.loads((tmp_path / "compare.json").read_text())
    assert results["groups"]["bias"] == ["ipr_beta1", "debiased_no_laug_beta1", "ipr", "debiased_no_laug"]
    assert results["seeds"] == [3, 4] and results["split_seed"] == 5
    held_out = set()
    for name in results["groups"]["bias"]:
        run = results["runs"][name]
        assert sorted(run["seeds"]) == ["3", "4"] and [e["epoch"] for e in run["epochs"]] == [0, 1]
        finals = [run["seeds"][s]["final"]["val_epe"] for s in ("3", "4")]
        assert run["final"]["val_epe"] == pytest.approx(np.mean(finals))
        assert run["final_sd"]["val_epe"] == pytest.approx(np.std(finals, ddof=1))
        for seed in (3, 4):
            folder = tmp_path / f"seed{seed}" / name
            config = (folder / "config.yaml").read_text()
            assert f"seed: {seed}" in config and "split_seed: 5" in config
            held_out.add(tuple(json.loads((folder / "split.json").read_text())["val_image_ids"]))
    assert len(held_out) == 1  # every seed and run validated on the same images
    page = (tmp_path / "compare.html").read_text()
    assert "beta 1" in page and f"{results['runs']['ipr']['final_sd']['val_epe']:.4f}</td>" in page


def test_seeds_mean_keeps_the_epochs_every_seed_reached():
    runs = {
        0: {
            "epochs": [{"epoch": 0, "val_epe": 4.0}, {"epoch": 1, "val_epe": 2.0}],
            "final": {"val_epe": 2.0},
        },
        1: {"epochs": [{"epoch": 0, "val_epe": 6.0}], "final": {"val_epe": 6.0, "note": "x"}},
    }
    mean = compare.mean_over_seeds(runs)
    assert mean["epochs"] == [{"epoch": 0, "val_epe": 5.0}] and mean["final"] == {"val_epe": 4.0}
    assert mean["final_sd"]["val_epe"] == pytest.approx(math.sqrt(8.0))


@pytest.mark.parametrize("seeds", ["a,b", "1,1", ","])
def test_bad_seeds_are_refused(seeds, capsys):
    with pytest.raises(SystemExit):
        compare.main(["--seeds", seeds])
    assert "--seeds" in capsys.readouterr().err
