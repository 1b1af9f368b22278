"""The bundled default model (assets/model/, made by training.export from the LSPET run): complete, small,
the app's default, as accurate on held-out LSPET images as its card says, and sane on real photos."""

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
from pose.evaluation.predictions import predict_dataset, score
from pose.inference import Predictor
from pose.keypoints import LSP_14
from pose.models import PoseModel
from training.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "assets" / "model"
LSPET = ROOT.parent / "shared" / "data" / "lspet"
CONFIGS = ROOT / "training" / "configs"
# Two stages: the CPU run, then a GPU fine-tune from a shrunk copy of the same images.
STAGES = {
    "init_training": CONFIGS / "lspet_lite0_debiased.yaml",
    "training": CONFIGS / "lspet_lite0_gpu.yaml",
}


@pytest.fixture(scope="module")
def model() -> PoseModel:
    return PoseModel.from_pretrained(str(BUNDLED))


def test_folder_is_complete_small_and_documented(model):
    files = {p.name for p in BUNDLED.iterdir()}
    assert {"config.json", "model.safetensors", "README.md", "evaluation.json"} <= files
    assert {"training_config.yaml", "training_log.jsonl", "split.json", "init_training_config.yaml"} <= files
    assert (BUNDLED / "model.safetensors").stat().st_size <= 20 * 2**20
    assert model.schema.names == LSP_14.names and model.decoder == "debiased" and model.beta == 10.0
    card = (BUNDLED / "README.md").read_text()
    for needed in (
        "Sam Johnson and Mark Everingham",
        "CVPR 2011",
        "> Licence: none stated by the authors",
        "Removing the Bias of Integral Pose Regression",
        "| `debiased` (shipped) |",
        "- checkpoint: `best`, epoch 70 of 84",
        "init_training_log.jsonl",
    ):
        assert needed in card, needed


@pytest.mark.parametrize("stage", STAGES)
def test_recipe_log_and_split_match_the_committed_configs(stage):
    recipe = yaml.safe_load(STAGES[stage].read_text())
    used = load_config(BUNDLED / f"{stage}_config.yaml")
    for key, value in recipe.items():
        if key != "out_dir":
            assert getattr(used, key) == value, key
    log = (BUNDLED / f"{stage}_log.jsonl").read_text().splitlines()
    evaluation = json.loads((BUNDLED / "evaluation.json").read_text())
    logged = recipe["epochs"] if stage == "init_training" else evaluation["epochs_logged"]  # stage 2 was cut
    assert [json.loads(line)["epoch"] for line in log] == list(range(logged)) and logged <= recipe["epochs"]
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
    one network pass, as training.evaluate does."""
    val_ids = json.loads((BUNDLED / "split.json").read_text())["val_image_ids"][::5]
    annotations = str(LSPET / "annotations.json")
    crop = CropSpec(input_size=model.input_size, mean=model.mean, std=model.std)
    dataset = TopDownDataset(annotations, str(LSPET / "images"), crop, Selection(image_ids=val_ids))
    data = predict_dataset(model, dataset, ["argmax", "debiased", "integral"], model.beta, batch_size=30)
    scores = {name: score(data, name, dataset.schema, annotations) for name in data.preds}
    return set(val_ids), scores


@pytest.mark.skipif(not LSPET.is_dir(), reason="needs ../shared/data/lspet")
def test_held_out_accuracy_measured_now(held_out_subset):
    """The bundled model, run now on 180 held-out images (measured: debiased PCK@0.2 0.570, torso
    only 0.569, EPE 12.87 px; argmax 0.533 / 13.82 px; integral 0.571 / 12.87 px)."""
    ids, scores = held_out_subset
    debiased, integral, argmax = scores["debiased"], scores["integral"], scores["argmax"]
    assert debiased["n_instances"] == 180 and debiased["pck_n_instances"] == 180  # every person scored
    assert 0.54 <= debiased["pck@0.2"] <= 0.60 and 12.0 <= debiased["epe"] <= 14.0
    assert abs(debiased["pck@0.2_torso"] - debiased["pck@0.2"]) < 0.02
    # Decoding its own logits, the soft-argmax decoders beat SimpleBaseline's argmax clearly...
    assert debiased["pck@0.2"] - argmax["pck@0.2"] >= 0.02 and argmax["epe"] - debiased["epe"] >= 0.5
    # ...and agree with each other: at beta 10 its peaks dwarf the background (C >> hw), so the
    # compensation moves keypoints by little (the stored full-set figures differ by 0.0002).
    assert abs(debiased["pck@0.2"] - integral["pck@0.2"]) < 0.005
    assert abs(debiased["epe"] - integral["epe"]) < 0.05


@pytest.mark.skipif(not LSPET.is_dir(), reason="needs ../shared/data/lspet")
def test_stored_evaluation_describes_this_model(held_out_subset):
    """evaluation.json (all 900 held-out images) agrees with a fifth of them measured now, and its
    fallback count is the file's own count of people without a torso diagonal."""
    ids, scores = held_out_subset
    full = json.loads((BUNDLED / "evaluation.json").read_text())
    lspet = json.loads((LSPET / "annotations.json").read_text())
    all_ids = set(json.loads((BUNDLED / "split.json").read_text())["val_image_ids"])
    assert scores["debiased"]["pck_n_fallback"] == torso_less_people(lspet, ids) == 24
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
