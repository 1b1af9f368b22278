"""training.run end to end on tiny generated data: learning, outputs, resume after SIGKILL, torchrun."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from pose.keypoints import COCO_17, KeypointSchema
from pose.models import PoseModel, build_pose_model
from tests.fixtures import make_coco_dataset
from tests.fixtures import run_overrides as overrides
from training.config import ConfigError, load_config
from training.run import main as run_main
from training.trainer import Trainer, _lr_schedule, step_losses

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    return make_coco_dataset(tmp_path_factory.mktemp("tiny"), n_images=24, size=(96, 128), seed=0)


# Four joints in four colours, no left/right pairs: a task a few hundred CPU steps can learn. (With
# mirrored pairs, a flipped crop of single coloured discs is ambiguous, so flips are off as well.)
FOUR = KeypointSchema("four", ("a", "b", "c", "d"), (0, 1, 2, 3), ((0, 1), (1, 2), (2, 3)))
EASY = ["flip_prob=0", "rotation_factor=0", "half_body_prob=0", "scale_factor=0.25", "pretrained=package"]


@pytest.fixture(scope="module")
def four_joint_set(tmp_path_factory):
    return make_coco_dataset(tmp_path_factory.mktemp("four"), n_images=64, size=(96, 128), schema=FOUR)


@pytest.mark.parametrize("method", ["detection", "ipr", "debiased"])
def test_each_method_learns(four_joint_set, tmp_path, method):
    settings = [f"method={method}", "epochs=30", "aug_epochs=15", "lr_steps=[25]", *EASY]
    trainer = Trainer(load_config(None, overrides(four_joint_set, tmp_path, *settings)))
    before = trainer.validate()["epe"]
    trainer.fit()
    after = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])["val_epe"]
    assert after < 0.8 * before, (before, after)  # measurably lower: the untrained EPE is ~28 px


def test_run_writes_model_card_config_and_metrics(tiny_set, tmp_path, capsys):
    rc = run_main(
        overrides(tiny_set, tmp_path, "epochs=2", "max_steps_per_epoch=2", "hub_repo=someone/model")
    )
    assert rc == 0
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1]
    assert {"loss", "lr", "val_pck@0.2", "val_epe", "val_auc", "val_ap"} <= set(lines[-1])
    assert load_config(tmp_path / "config.yaml").hub_repo == "someone/model"
    split = json.loads((tmp_path / "split.json").read_text())
    assert len(split["train_image_ids"]) == 18 and len(split["val_image_ids"]) == 6
    assert not set(split["train_image_ids"]) & set(split["val_image_ids"])
    model = PoseModel.from_pretrained(str(tmp_path / "model"))
    assert model.decoder == "debiased" and model.schema.num_keypoints == 17
    card = (tmp_path / "model" / "README.md").read_text()
    assert "Removing the Bias of Integral Pose Regression" in card and "val_pck@0.2" in card
    out = capsys.readouterr().out
    assert "could not push to the Hub repo 'someone/model'" in out and "saved locally" not in out


def test_init_from_starts_from_a_saved_model(tiny_set, tmp_path):
    start = Trainer(
        load_config(None, overrides(tiny_set, tmp_path / "a", "epochs=1", "max_steps_per_epoch=2"))
    ).fit()
    settings = overrides(tiny_set, tmp_path / "b", "epochs=0", "input_size=96,64", f"init_from={start}")
    final = Trainer(load_config(None, settings)).fit()  # no step taken: the start weights, saved again
    want, got = PoseModel.from_pretrained(str(start)).state_dict(), PoseModel.from_pretrained(str(final))
    assert got.input_size == (96, 64) and all(torch.equal(got.state_dict()[k], want[k]) for k in want)


def test_init_from_a_lite0_starts_a_lite1_that_computes_the_same_maps(tiny_set, tmp_path, capsys):
    build_pose_model("lite0", COCO_17, (64, 64)).save_pretrained(tmp_path / "lite0")
    start = PoseModel.from_pretrained(str(tmp_path / "lite0"))
    settings = overrides(
        tiny_set, tmp_path / "run", "epochs=0", "arch=lite1", f"init_from={tmp_path / 'lite0'}"
    )
    grown = PoseModel.from_pretrained(str(Trainer(load_config(None, settings)).fit()))
    assert grown.arch == "lite1" and "lite0) grown to lite1: 5 new blocks" in capsys.readouterr().out
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grown.eval()(x), start.eval()(x), rtol=0, atol=1e-6)
    wider = overrides(tiny_set, tmp_path / "wide", "arch=lite2", f"init_from={tmp_path / 'lite0'}")
    assert run_main(wider) == 2
    assert "does not fit this run's arch and keypoints" in capsys.readouterr().err


def test_init_from_a_model_of_other_keypoints_fails_clearly(tiny_set, tmp_path, capsys):
    build_pose_model("lite0", FOUR, (64, 64)).save_pretrained(tmp_path / "four")
    assert run_main(overrides(tiny_set, tmp_path / "run", f"init_from={tmp_path / 'four'}")) == 2
    assert "does not fit this run's arch and keypoints" in capsys.readouterr().err
    assert run_main(overrides(tiny_set, tmp_path / "run", f"init_from={tmp_path / 'nothing'}")) == 2
    assert "nothing" in capsys.readouterr().err


def test_the_default_config_trains(tiny_set, tmp_path):
    # Only the data, the run folder and the budget are set: input_size, arch, method... are the defaults
    # (input_size was [192, 144], which every backbone refuses).
    ann, images = tiny_set
    data = [f"train_annotations={ann}", f"train_images={images}", f"out_dir={tmp_path}"]
    budget = ["epochs=1", "max_steps_per_epoch=1", "batch_size=2", "num_workers=0"]
    assert run_main([*data, *budget]) == 0
    model = PoseModel.from_pretrained(str(tmp_path / "model"))
    assert model.input_size == (256, 192) and model.arch == "lite0" and model.decoder == "debiased"
    record = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert math.isfinite(record["loss"]) and math.isfinite(record["val_epe"])


def test_a_missing_or_wrong_image_folder_is_one_line_before_any_work(tiny_set, tmp_path, capsys):
    ann, _ = tiny_set
    for folder, message in [
        (tmp_path / "no_such_folder", "train_images: no such folder"),
        (tmp_path, "train_images: .* holds none of the images that .* names \\(e.g. '000001.png'\\)"),
    ]:
        args = [f"train_annotations={ann}", f"train_images={folder}", f"out_dir={tmp_path / 'run'}"]
        assert run_main(args) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and re.search(message, err), err
        assert "set train_images= to the folder" in err and not (tmp_path / "run").exists()


def test_too_few_crops_for_a_batch_says_so_and_how(tiny_set, tmp_path, capsys):
    assert run_main(overrides(tiny_set, tmp_path / "run", "batch_size=64")) == 2
    err = capsys.readouterr().err
    assert "the training set has 18 person crops, fewer than 64" in err and "smaller batch_size" in err
    assert not (tmp_path / "run").exists()


def test_val_every_zero_stops_before_the_first_step(tiny_set, tmp_path, capsys):
    # It used to pass the check, train a whole epoch and die with ZeroDivisionError before saving.
    assert run_main(overrides(tiny_set, tmp_path / "run", "val_every=0")) == 2
    assert "val_every: expected >= 1" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_an_error_after_the_steps_loses_no_training(tiny_set, tmp_path, capsys):
    """Validation fails after epoch 1's steps (its annotation file vanished): the trained epoch is in
    last.pt, and resume=true validates it and finishes exactly like a run that never failed."""
    ann, images = tiny_set
    val_file = tmp_path / "val.json"
    val_file.write_bytes(Path(ann).read_bytes())
    common = ["epochs=2", "max_steps_per_epoch=2", f"val_annotations={val_file}", f"val_images={images}"]
    reference = Trainer(load_config(None, overrides(tiny_set, tmp_path / "reference", *common)))
    reference.fit()
    settings = overrides(tiny_set, tmp_path / "failed", *common)
    trainer = Trainer(load_config(None, settings))
    val_file.unlink()  # COCO AP reads the file at validation time
    with pytest.raises(FileNotFoundError):
        trainer.fit()
    assert "its training is saved in" in capsys.readouterr().err
    payload = torch.load(tmp_path / "failed" / "last.pt", weights_only=True)
    assert payload["epoch"] == 1 and json.loads(payload["pending"])["epoch"] == 0
    assert not (tmp_path / "failed" / "metrics.jsonl").exists()
    val_file.write_bytes(Path(ann).read_bytes())
    Trainer(load_config(None, [*settings, "resume=true"])).fit()
    got = [json.loads(x) for x in (tmp_path / "failed" / "metrics.jsonl").read_text().splitlines()]
    want = [json.loads(x) for x in (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in got] == [0, 1]
    for a, b in zip(got, want, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["val_epe"] == pytest.approx(b["val_epe"])


def test_one_line_per_epoch_with_loss_validation_lr_and_time(tiny_set, tmp_path, capsys):
    assert run_main(overrides(tiny_set, tmp_path, "epochs=3", "max_steps_per_epoch=1", "val_every=2")) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    number, lr, parts = r"\d+\.\d+", r"\d\.\d\de[-+]\d+", r"\(L_re \d+\.\d+ \+ L_aug \d+\.\d+\)"
    validated = rf", val PCK@0\.2 {number} EPE {number} px, lr {lr}, \d+ s$"
    assert len(lines) == 3
    assert re.match(rf"^epoch 1/3: loss {number} {parts}, not validated, lr {lr}, \d+ s$", lines[0])
    assert all(re.match(rf"^epoch {i}/3: loss {number} {parts}{validated}", lines[i - 1]) for i in (2, 3))


@pytest.mark.parametrize(
    ("method", "heatmap_on"),
    [("debiased", [True, True, False, False]), ("detection", [True] * 4), ("ipr", [False] * 4)],
)
def test_l_aug_is_on_for_the_first_aug_epochs_only(tiny_set, tmp_path, method, heatmap_on):
    settings = [f"method={method}", "aug_epochs=2", "epochs=4", "max_steps_per_epoch=1", "val_every=4"]
    trainer = Trainer(load_config(None, overrides(tiny_set, tmp_path, *settings)))
    assert [trainer.uses_heatmap_loss(e) for e in range(4)] == heatmap_on
    trainer.fit()
    records = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    # The logged parts are the losses the steps took: the heatmap MSE is positive exactly when it is on.
    assert [r["loss_heatmap"] > 0 for r in records] == heatmap_on
    assert all(r["loss_heatmap"] == 0.0 for r, on in zip(records, heatmap_on, strict=True) if not on)
    assert all((r["loss_coord"] > 0) == (method != "detection") for r in records)
    assert all(r["loss"] == pytest.approx(r["loss_coord"] + r["loss_heatmap"]) for r in records)


def test_bad_config_key_exits_with_message(capsys):
    assert run_main(["epochs=3", "learning_rate=0.1"]) == 2
    assert "unknown config key 'learning_rate'" in capsys.readouterr().err


def run_cli(args, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "training.run", *args], cwd=ROOT, env=env, **kwargs)


def test_sigkill_mid_epoch_then_resume_loses_nothing(tiny_set, tmp_path):
    common = ["epochs=3", "batch_size=1", "aug_epochs=1"]  # 18 steps an epoch: the kill lands mid-epoch
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    reference = run_cli(overrides(tiny_set, tmp_path / "reference", *common), **quiet)
    killed = run_cli(overrides(tiny_set, tmp_path / "killed", *common), **quiet)
    metrics, state = tmp_path / "killed" / "metrics.jsonl", tmp_path / "killed" / "last.pt"
    deadline = time.monotonic() + 120
    while not metrics.exists() and time.monotonic() < deadline:  # epoch 1 trained, saved and validated
        time.sleep(0.005)
    time.sleep(0.05)  # a few steps into the second epoch, which takes far longer on any machine seen so far
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert reference.wait(timeout=300) == 0
    assert metrics.read_text().count("\n") == 1, "the kill must land in the second epoch"
    assert state.exists()
    assert not (tmp_path / "killed" / "model").exists()
    resumed = run_cli(
        overrides(tiny_set, tmp_path / "killed", *common, "resume=true"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert "resuming" in out and "at epoch 2 of 3" in out
    got = [json.loads(line) for line in metrics.read_text().splitlines()]
    want = [json.loads(line) for line in (tmp_path / "reference" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in got] == [0, 1, 2]
    for a, b in zip(got, want, strict=True):  # same losses and metrics as a run never interrupted
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["val_epe"] == pytest.approx(b["val_epe"])
    final = PoseModel.from_pretrained(str(tmp_path / "killed" / "model")).state_dict()
    reference_final = PoseModel.from_pretrained(str(tmp_path / "reference" / "model")).state_dict()
    assert all(torch.allclose(final[k].float(), reference_final[k].float(), atol=1e-5) for k in final)


class Interrupted(Exception):
    """Stands in for the end of a session in the middle of an epoch."""


def test_a_mid_epoch_checkpoint_resumes_at_its_step_and_loses_nothing(
    tiny_set, tmp_path, monkeypatch, capsys
):
    """checkpoint_minutes saves last.pt inside an epoch; a run stopped after such a save resumes at the
    next step and ends exactly where a run never stopped ends (losses, metrics, weights, EMA)."""
    common = ["epochs=2", "batch_size=2", "num_workers=1", "ema_decay=0.5"]  # 9 steps an epoch
    Trainer(
        load_config(None, overrides(tiny_set, tmp_path / "reference", *common, "checkpoint_minutes=0"))
    ).fit()
    settings = overrides(tiny_set, tmp_path / "stopped", *common, "checkpoint_minutes=1e-9")  # every step
    save = Trainer._save_state

    def save_then_stop(self, pending, partial=None):
        save(self, pending, partial)
        if partial is not None and self.epoch == 1 and partial["items"] == 8:  # 4 steps into epoch 2
            raise Interrupted

    monkeypatch.setattr(Trainer, "_save_state", save_then_stop)
    with pytest.raises(Interrupted):
        Trainer(load_config(None, settings)).fit()
    monkeypatch.undo()
    assert len((tmp_path / "stopped" / "metrics.jsonl").read_text().splitlines()) == 1
    capsys.readouterr()
    Trainer(load_config(None, [*settings, "resume=true"])).fit()
    assert "at epoch 2 of 2, step 5 of 9" in capsys.readouterr().out
    got, want = (
        [json.loads(x) for x in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]
        for d in ("stopped", "reference")
    )
    assert [r["epoch"] for r in got] == [0, 1]
    for a, b in zip(got, want, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["val_epe"] == pytest.approx(b["val_epe"])
    assert got[1]["seconds"] > 0
    final, reference = (
        PoseModel.from_pretrained(str(tmp_path / d / "model")).state_dict() for d in ("stopped", "reference")
    )
    assert all(torch.allclose(final[k].float(), reference[k].float(), atol=1e-6) for k in final)


def test_resume_refuses_a_corrupt_state_file_clearly(tiny_set, tmp_path):
    settings = overrides(tiny_set, tmp_path, "epochs=1", "max_steps_per_epoch=1")
    Trainer(load_config(None, settings)).fit()
    state = tmp_path / "last.pt"
    state.write_bytes(state.read_bytes()[:1000])  # cut short, as a full disk would leave it
    with pytest.raises(RuntimeError, match="cannot resume from .*last.pt"):
        Trainer(load_config(None, [*settings, "epochs=2", "resume=true"])).fit()


def test_resume_reads_a_state_file_without_rng(tiny_set, tmp_path):
    settings = overrides(tiny_set, tmp_path, "epochs=1", "max_steps_per_epoch=1")
    Trainer(load_config(None, settings)).fit()
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    del payload["torch_rng"]  # the layout written before the RNG state was recorded
    torch.save(payload, tmp_path / "last.pt")
    trainer = Trainer(load_config(None, [*settings, "epochs=2", "resume=true"]))
    trainer.fit()
    assert trainer.epoch == 2
    assert [json.loads(x)["epoch"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [0, 1]


def test_resume_drops_the_metrics_line_of_an_epoch_the_state_lacks(tiny_set, tmp_path):
    settings = overrides(tiny_set, tmp_path, "epochs=1", "max_steps_per_epoch=1")
    Trainer(load_config(None, settings)).fit()
    metrics = tmp_path / "metrics.jsonl"
    line = json.loads(metrics.read_text())
    with open(metrics, "a") as f:  # killed after appending epoch 1's line, before last.pt was replaced
        f.write(json.dumps({**line, "epoch": 1}) + "\n")
    Trainer(load_config(None, [*settings, "epochs=2", "resume=true"])).fit()
    assert [json.loads(x)["epoch"] for x in metrics.read_text().splitlines()] == [0, 1]


def test_a_resume_with_other_settings_says_so_and_records_them(tiny_set, tmp_path, capsys):
    """A run resumed as a shorter or longer schedule: config.yaml (what training.export ships) holds the
    settings it went on with, and the log names the change; an unchanged resume rewrites nothing."""
    settings = overrides(tiny_set, tmp_path, "epochs=1", "max_steps_per_epoch=1")
    Trainer(load_config(None, settings)).fit()
    written = (tmp_path / "config.yaml").stat().st_mtime_ns
    Trainer(load_config(None, [*settings, "resume=true"])).fit()
    assert (tmp_path / "config.yaml").stat().st_mtime_ns == written
    assert "changed settings" not in capsys.readouterr().out
    Trainer(load_config(None, [*settings, "epochs=2", "resume=true"])).fit()
    assert "resuming with changed settings: epochs 1 -> 2" in capsys.readouterr().out
    assert load_config(tmp_path / "config.yaml").epochs == 2


def test_ema_validates_and_saves_the_average_and_resumes(tiny_set, tmp_path):
    settings = overrides(tiny_set, tmp_path, "epochs=1", "ema_decay=0.5")
    trainer = Trainer(load_config(None, settings))
    trainer.fit()
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    saved = PoseModel.from_pretrained(str(tmp_path / "model")).state_dict()
    average = {k.removeprefix("module."): v for k, v in payload["ema"].items() if k.startswith("module.")}
    assert all(torch.equal(saved[k], average[k]) for k in saved)  # the average ships, not the last step
    assert not all(torch.equal(saved[k], payload["model"][k]) for k in saved if saved[k].is_floating_point())
    del payload["ema"]  # a state written before ema_decay was set: the average restarts from the model
    torch.save(payload, tmp_path / "last.pt")
    resumed = Trainer(load_config(None, [*settings, "epochs=2", "resume=true"]))
    resumed.fit()
    assert resumed.epoch == 2 and int(resumed.ema.n_averaged) == 2  # 2 steps an epoch


@pytest.mark.parametrize(
    ("settings", "expected"),
    [  # factor at steps 0, 4 (end of warm-up), 12 (half way), 24 (the last) for 3 epochs of 8 steps
        (["lr_schedule=cosine", "warmup_steps=5"], [0.2, 0.9330, 0.5, 0.0]),
        (["lr_schedule=step", "lr_steps=[1,2]", "warmup_steps=5"], [0.2, 1.0, 0.1, 0.01]),
        (["lr_schedule=cosine", "warmup_steps=0"], [1.0, 0.9330, 0.5, 0.0]),
    ],
)
def test_lr_schedules(settings, expected):
    factor = _lr_schedule(load_config(None, ["epochs=3", *settings]), steps_per_epoch=8)
    assert [factor(s) for s in (0, 4, 12, 24)] == pytest.approx(expected, abs=1e-4)


def test_adamw_decays_weights_decoupled(tiny_set, tmp_path):
    trainer = Trainer(load_config(None, overrides(tiny_set, tmp_path, "optimizer=adamw", "weight_decay=0.1")))
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    with pytest.raises(ConfigError, match="optimizer: unknown 'sgd'"):
        load_config(None, ["optimizer=sgd"]).resolved()


def test_cpu_bf16_autocasts_the_forward_and_trains(tiny_set, tmp_path):
    settings = overrides(tiny_set, tmp_path, "epochs=1", "max_steps_per_epoch=2", "cpu_bf16=true")
    trainer = Trainer(load_config(None, settings))
    with trainer._autocast():
        logits = trainer.model(torch.zeros(1, 3, 64, 64))
    assert logits.dtype == torch.bfloat16
    trainer.fit()
    record = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert math.isfinite(record["loss"]) and math.isfinite(record["val_epe"])


def test_torchrun_two_processes_gloo_same_metrics(tiny_set, tmp_path):
    args = overrides(tiny_set, tmp_path, "epochs=1", "max_steps_per_epoch=2", "device=cpu")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = ["-m", "tests.ddp_validate", *args]
    single = subprocess.run([sys.executable, *script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    double = subprocess.run([*torchrun, *script], cwd=ROOT, env=env, capture_output=True, text=True)
    assert double.returncode == 0, double.stderr
    one, two = json.loads(single.stdout.splitlines()[-1]), json.loads(double.stdout.splitlines()[-1])
    assert two["world"] == 2 and one["world"] == 1
    assert two["n_instances"] == one["n_instances"] == 6
    for key in ("pck@0.2", "epe", "auc", "ap"):
        assert two[key] == pytest.approx(one[key], abs=1e-6), key
    assert two["trained"] and (tmp_path / "model" / "model.safetensors").exists()


SHARED = ROOT.parent / "shared" / "data"


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("coco-mini", ["val_fraction=0.25", "batch_size=2"]),
        ("lspet", ["max_train_images=16", "val_fraction=0.002", "batch_size=4"]),
    ],
)
def test_smoke_run_on_real_data(name, settings, tmp_path):
    if not (SHARED / name / "annotations.json").exists():
        pytest.skip(f"../shared/data/{name} is not here")
    data = [
        f"train_annotations={SHARED / name / 'annotations.json'}",
        f"train_images={SHARED / name / 'images'}",
    ]
    budget = ["input_size=64,64", "epochs=1", "max_steps_per_epoch=1", "num_workers=0", f"out_dir={tmp_path}"]
    assert run_main([*data, *budget, *settings]) == 0
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["val_n_instances"] > 0 and math.isfinite(record["val_epe"])
    expected_k = {"coco-mini": 17, "lspet": 14}[name]
    assert PoseModel.from_pretrained(str(tmp_path / "model")).schema.num_keypoints == expected_k


def test_extra_betas_average_the_coordinate_loss_over_betas():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 6, generator=generator)
    batch = {
        "coords": torch.rand(2, 3, 2, generator=generator) * 5,
        "heatmaps": torch.zeros(2, 3, 8, 6),
        "weights": torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0]]),
    }

    def coord_part(*extra):
        config = load_config(None, [f"extra_betas={list(extra)}"])
        return step_losses(logits, batch, "debiased", False, config)["loss_coord"].item()

    at_10, at_3 = coord_part(), load_config(None, ["beta=3"])
    at_3 = step_losses(logits, batch, "debiased", False, at_3)["loss_coord"].item()
    assert at_10 != pytest.approx(at_3)  # the two betas decode these maps differently
    assert coord_part(3.0) == pytest.approx((at_10 + at_3) / 2)
    with pytest.raises(ConfigError, match="extra_betas"):
        load_config(None, ["extra_betas=[0]"]).validate()


def test_a_run_saved_with_flat_augmentation_keys_resumes(tiny_set, tmp_path, capsys):
    """A run started before the augmentation was nested (its config.yaml has flip_prob, scale_factor,
    rotation_factor, half_body_prob at the top level) resumes from that file with the same settings."""
    settings = overrides(tiny_set, tmp_path, "epochs=1", "max_steps_per_epoch=1", "augment.scale_factor=0.2")
    Trainer(load_config(None, settings)).fit()
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    flat = {k: v for k, v in saved.items() if k != "augment"} | {
        k: saved["augment"][k] for k in ("flip_prob", "scale_factor", "rotation_factor", "half_body_prob")
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(flat, sort_keys=False))  # as an older run wrote it
    config = load_config(tmp_path / "config.yaml", ["epochs=2", "resume=true"])
    assert config.augment == load_config(None, settings).augment
    Trainer(config).fit()
    assert "resuming" in capsys.readouterr().out
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == [0, 1]
