"""The bundled default model (assets/model/, made by training.export from MoveNet fine-tuned on LSPET):
complete, small, the app's default, as accurate on held-out LSPET images as its card says, with the bias
plain at its beta and compensated at beta 3 (the zero background the compensation assumes), and sane on
real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from app.detection import PersonDetector
from app.model import default_source
from pose.data import CropSpec, Selection, TopDownDataset
from pose.evaluation.predictions import heatmap_report, predict_dataset, predict_dataset_at, score
from pose.inference import Predictor
from pose.keypoints import LSP_14
from pose.models import PoseModel
from training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "assets" / "model"
LSPET = ROOT.parent / "shared" / "data" / "lspet"
CONFIGS = ROOT / "training" / "configs"
# Four runs from MoveNet Thunder's network and heatmap filters, heatmap MSE every epoch beside the debiased
# L1 at beta 10 and 3, each a cosine schedule: 6 epochs at 288x224 (stage 1), 6 at 320x256 (stage 2), 4 at
# 352x288 (stage 3), then 3 there with weaker augmentation (stage 4, the folder's training_* files).
STAGES = {
    "stage1": CONFIGS / "lspet_movenet_heatmap_debiased.yaml",
    "stage2": CONFIGS / "lspet_movenet_heatmap_debiased_stage2.yaml",
    "stage3": CONFIGS / "lspet_movenet_heatmap_debiased_stage3.yaml",
    "training": CONFIGS / "lspet_movenet_heatmap_debiased_stage4.yaml",
}


@pytest.fixture(scope="module")
def model() -> PoseModel:
    return PoseModel.from_pretrained(str(BUNDLED))


def test_folder_is_complete_small_and_documented(model):
    files = {p.name for p in BUNDLED.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "evaluation.json"} <= files
    assert {"training_config.yaml", "training_log.jsonl", "split.json"} <= files
    assert {f"stage{k}_{kind}" for k in (1, 2, 3) for kind in ("config.yaml", "log.jsonl")} <= files
    assert (BUNDLED / "model.safetensors").stat().st_size <= 25_000_000  # the 25 MB
    assert model.schema.names == LSP_14.names and model.decoder == "debiased" and model.beta == 10.0
    card = (BUNDLED / "README.md").read_text()
    for needed in (
        "Sam Johnson and Mark Everingham",
        "CVPR 2011",
        "> Licence: none stated by the authors",
        "Removing the Bias of Integral Pose Regression",
        "| `debiased` (shipped) |",
        "- checkpoint: `model`, after epoch 3 of 3",
        "this run is stage 4 of 4",
        "## The bias on these heatmaps (beta 3)",
        "BlazePose GHUM Heavy",
        "- stage 1 started from MoveNet SinglePose Thunder (Google, Apache-2.0",
        "keep its Apache-2.0 terms",
        "With the flip test",
    ):
        assert needed in card, needed


@pytest.mark.parametrize("stage", STAGES)
def test_recipe_log_and_split_match_the_committed_configs(stage):
    recipe = yaml.safe_load(STAGES[stage].read_text())
    used = load_config(BUNDLED / f"{stage}_config.yaml")
    for key, value in recipe.items():
        got = getattr(used, key)
        if key == "augment":  # a nested section: the recipe's keys, in the run's AugmentConfig
            assert {k: getattr(got, k) for k in value} == value
        elif key not in ("out_dir", "num_workers"):  # where it wrote and how it loaded, not what it trained
            assert got == value, key
    log = (BUNDLED / f"{stage}_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == list(range(recipe["epochs"]))
    split = json.loads((BUNDLED / "split.json").read_text())
    train, val = set(split["train_image_ids"]), set(split["val_image_ids"])
    assert not train & val and (len(train), len(val)) == (8100, 900)


def test_the_app_loads_it_by_default(monkeypatch):
    monkeypatch.delenv("POSE_MODEL", raising=False)
    assert default_source() == (str(BUNDLED), "the bundled model (assets/model/)")


def torso_less_people(annotations: dict, image_ids: set[int]) -> int:
    """People of ``image_ids`` with neither torso diagonal labelled, counted from the file itself."""
    names = annotations["categories"][0]["keypoints"]
    count = 0
    for ann in annotations["annotations"]:
        if ann["image_id"] in image_ids:
            v = {name: ann["keypoints"][3 * k + 2] > 0 for k, name in enumerate(names)}
            diagonals = [("right_shoulder", "left_hip"), ("left_shoulder", "right_hip")]
            count += not any(v[a] and v[b] for a, b in diagonals)
    return count


@pytest.fixture(scope="module")
def held_out_subset(model):
    """A fixed fifth of the held-out images (every fifth id of split.json), scored with every decoder from
    one network pass at the model's beta and at beta 3 (``"beta3"``), as training.export does, and with the
    flip test the app runs (``"flip"``, debiased)."""
    val_ids = json.loads((BUNDLED / "split.json").read_text())["val_image_ids"][::5]
    annotations = str(LSPET / "annotations.json")
    crop = CropSpec(input_size=model.input_size, mean=model.mean, std=model.std)
    dataset = TopDownDataset(annotations, str(LSPET / "images"), crop, Selection(image_ids=val_ids))
    plan = {model.beta: ["argmax", "debiased", "integral"], 3.0: ["debiased", "integral"]}
    at = predict_dataset_at(model, dataset, plan, batch_size=30)
    data, low = at[model.beta], at[3.0]
    scores = {name: score(data, name, dataset.schema, annotations) for name in data.preds}
    scores["heatmaps"] = heatmap_report(data)
    scores["beta3"] = {name: score(low, name, dataset.schema, annotations) for name in low.preds}
    flipped = predict_dataset(model, dataset, ["debiased"], model.beta, batch_size=30, flip=True)
    scores["flip"] = score(flipped, "debiased", dataset.schema, annotations)
    return set(val_ids), scores


@pytest.mark.skipif(not LSPET.is_dir(), reason="needs ../shared/data/lspet")
def test_held_out_accuracy_measured_now(held_out_subset):
    """The bundled model, run now on 180 held-out images (measured: debiased PCK@0.2 0.735, torso only
    0.731, left/right tolerant 0.793, EPE 9.37 px; argmax 0.737 / 9.72 px; integral 0.259 / 23.95 px)."""
    ids, scores = held_out_subset
    debiased, integral, argmax = scores["debiased"], scores["integral"], scores["argmax"]
    assert debiased["n_instances"] == 180 and debiased["pck_n_instances"] == 180  # every person scored
    assert 0.70 <= debiased["pck@0.2"] <= 0.76 and 9.2 <= debiased["epe"] <= 10.9
    assert abs(debiased["pck@0.2_torso"] - debiased["pck@0.2"]) < 0.02
    assert debiased["pck@0.2_lr_tolerant"] >= debiased["pck@0.2"]
    # J_o matches the peak (argmax) and is finer; J_r is pulled toward the crop centre (the bias, plain).
    assert debiased["pck@0.2"] >= argmax["pck@0.2"] - 0.01 and debiased["epe"] <= argmax["epe"]
    assert debiased["pck@0.2"] - integral["pck@0.2"] >= 0.35  # J_r is biased even at the trained beta


@pytest.mark.skipif(not LSPET.is_dir(), reason="needs ../shared/data/lspet")
def test_the_compensation_holds_at_beta_3_on_a_zero_background(held_out_subset):
    """The bundled-model issue's criteria, on the same 180 people: at beta 3 debiased within 0.08 of its
    beta-10 PCK and integral at least 0.15 below it; the background (logits > 6 heatmap px from the
    peaks) at zero. Measured: debiased 0.735 -> 0.732 at beta 3, integral 0.033; background +0.0004 (the
    maps are sigmoid probabilities: the background cannot go below 0)."""
    ids, scores = held_out_subset
    high, low = scores["debiased"]["pck@0.2"], scores["beta3"]["debiased"]["pck@0.2"]
    assert high - low <= 0.08
    assert low - scores["beta3"]["integral"]["pck@0.2"] >= 0.15
    assert abs(scores["heatmaps"]["background_mean"]) <= 0.005


@pytest.mark.skipif(not LSPET.is_dir(), reason="needs ../shared/data/lspet")
def test_the_flip_test_the_app_runs_is_more_accurate(held_out_subset):
    """The app averages each crop's logits with its mirror image's (measured on these 180 people: debiased
    PCK@0.2 0.753 against 0.735, EPE 8.91 px against 9.37; on all 900, 0.760 against 0.751)."""
    ids, scores = held_out_subset
    assert scores["flip"]["pck@0.2"] >= max(scores["debiased"]["pck@0.2"], 0.72)
    assert scores["flip"]["epe"] <= scores["debiased"]["epe"] - 0.1


@pytest.mark.skipif(not LSPET.is_dir(), reason="needs ../shared/data/lspet")
def test_stored_evaluation_describes_this_model(held_out_subset):
    """evaluation.json (all 900 held-out images) agrees with a fifth of them measured now, its fallback
    count is the file's own count of people without a torso diagonal, and it meets the bundled-model
    issue's target: debiased PCK@0.2 >= 0.75 from one network pass (stored: 0.751; flip test 0.760)."""
    ids, scores = held_out_subset
    full = json.loads((BUNDLED / "evaluation.json").read_text())
    lspet = json.loads((LSPET / "annotations.json").read_text())
    all_ids = set(json.loads((BUNDLED / "split.json").read_text())["val_image_ids"])
    assert scores["debiased"]["pck_n_fallback"] == torso_less_people(lspet, ids) == 24
    assert full["low_beta"]["beta"] == 3.0 and abs(full["heatmaps"]["background_mean"]) <= 0.005
    flip = full["flip"]["decoders"]["debiased"]  # export --flip: the test the app runs, on all 900
    assert (
        abs(flip["pck@0.2"] - scores["flip"]["pck@0.2"]) < 0.04
        and flip["pck@0.2"] > full["decoders"]["debiased"]["pck@0.2"]
        and flip["pck@0.2"] >= 0.75  # what the card and the README state
    )
    debiased = full["decoders"]["debiased"]["pck@0.2"]  # one pass, at the model's own beta
    assert debiased >= 0.75 and debiased > full["decoders"]["integral"]["pck@0.2"]
    for name, stored in full["low_beta"].items():
        if name != "beta":
            assert abs(stored["pck@0.2"] - scores["beta3"][name]["pck@0.2"]) < 0.04, name
    for name, stored in full["decoders"].items():
        assert stored["pck_n_instances"] == stored["n_instances"] == 900
        assert stored["pck_n_fallback"] == torso_less_people(lspet, all_ids) == 176  # 19.6%
        assert abs(stored["pck@0.2"] - scores[name]["pck@0.2"]) < 0.04, name
        assert abs(stored["epe"] - scores[name]["epe"]) < 1.5, name


def test_standing_people_come_out_head_over_heels(model):
    """bus.jpg: everyone the offline detector finds stands upright, so the head is above the shoulders,
    the shoulders above the hips, the hips above the knees and the knees above the ankles."""
    import ultralytics

    image = np.asarray(Image.open(Path(ultralytics.__file__).parent / "assets" / "bus.jpg").convert("RGB"))
    people = PersonDetector(yolo_model="no_such_yolo_weights_for_tests.pt")(image)
    assert len(people.boxes) >= 2
    y = Predictor(model).predict(image, people.boxes).keypoints[..., 1]
    names = LSP_14.names

    def mean_y(*joints):
        return y[:, [names.index(j) for j in joints]].mean(axis=1)

    order = [
        mean_y("head_top"),
        mean_y("right_shoulder", "left_shoulder"),
        mean_y("right_hip", "left_hip"),
        mean_y("right_knee", "left_knee"),
        mean_y("right_ankle", "left_ankle"),
    ]
    assert np.all(np.diff(np.stack(order), axis=0) > 0), np.stack(order)
