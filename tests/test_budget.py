"""training.budget: a probe times the run, and one schedule is sized to the seconds left."""

import json

import pytest

from tests.fixtures import make_coco_dataset, run_overrides
from training.budget import RESERVE_S, Timing, epochs_within
from training.budget import main as budget_main
from training.config import load_config


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    return make_coco_dataset(tmp_path_factory.mktemp("tiny"), n_images=24, size=(96, 128), seed=0)


def settings(tiny_set, out_dir, *extra):
    """A YAML file and overrides: ``python -m training.budget SECONDS`` takes them in this order."""
    config = out_dir.parent / f"{out_dir.name}.yaml"
    config.write_text("lr_schedule: cosine\nepochs: 10\n")
    return [str(config), *run_overrides(tiny_set, out_dir, *extra)]


def test_epochs_within_counts_steps_saves_and_a_share_of_the_validations():
    timing = Timing(step_s=0.5, val_s=4.0, save_s=1.0, steps_per_epoch=10)
    assert timing.epoch_s(val_every=2) == 10 * 0.5 + 1.0 + 4.0 / 2
    # 100 s: the last validation (4 s) and the reserve leave 86 s -> 10 epochs of 8 s
    assert epochs_within(100.0, timing, val_every=2, most=50) == int((100 - 4 - RESERVE_S) // 8)
    assert epochs_within(100.0, timing, val_every=2, most=3) == 3  # the config's epochs cap it


def test_epochs_within_refuses_a_budget_that_fits_no_epoch():
    timing = Timing(step_s=1.0, val_s=5.0, save_s=0.0, steps_per_epoch=30)
    with pytest.raises(ValueError, match="no whole epoch fits: 25 s left .* an epoch takes 35 s"):
        epochs_within(40.0, timing, val_every=1, most=10)


def test_a_generous_budget_runs_the_config_epochs_after_a_probe(tiny_set, tmp_path, capsys):
    assert budget_main(["600", *settings(tiny_set, tmp_path, "epochs=2"), "--probe-steps", "1"]) == 0
    probe = [json.loads(line) for line in (tmp_path / "probe" / "metrics.jsonl").read_text().splitlines()]
    assert (
        [r["epoch"] for r in probe] == [0, 1, 2]
        and "val_pck@0.2" in probe[2]
        and "val_pck@0.2" not in probe[1]
    )
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and (tmp_path / "model" / "model.safetensors").is_file()
    assert load_config(tmp_path / "config.yaml").epochs == 2  # what a resume reads
    assert "-> 2 epochs in the" in capsys.readouterr().out


def test_a_budget_too_short_for_an_epoch_trains_nothing(tiny_set, tmp_path, capsys):
    assert budget_main(["1", *settings(tiny_set, tmp_path, "epochs=5"), "--probe-steps", "1"]) == 2
    assert "no whole epoch fits" in capsys.readouterr().err
    assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "last.pt").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [("lr_schedule=step", "sizes a cosine schedule"), ("resume=true", "config.yaml resume=true")],
)
def test_step_schedules_and_resume_are_refused_before_any_work(tiny_set, tmp_path, capsys, extra, message):
    assert budget_main(["600", *settings(tiny_set, tmp_path, "epochs=2", extra)]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "probe").exists()
