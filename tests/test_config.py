"""training.config: defaults, YAML, overrides, errors that name the key, method presets."""

import dataclasses
from pathlib import Path

import pytest

from pose.data import AugmentConfig
from training.config import (
    LEGACY_KEYS,
    METHODS,
    ConfigError,
    TrainConfig,
    help_text,
    load_config,
    save_config,
)
from training.run import main as run_main


def test_defaults_then_yaml_then_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("arch: simplebaseline_resnet50\nlr: 5.0e-4\ninput_size: [256, 192]\nepochs: 3\n")
    config = load_config(path, ["lr=1e-3", "epochs=7", "amp=false", "pretrained=none"])
    assert config.arch == "simplebaseline_resnet50"
    assert config.input_size == [256, 192]
    assert config.lr == 1e-3 and isinstance(config.lr, float)  # "1e-3" is a string to YAML 1.1
    assert config.epochs == 7 and config.amp is False and config.pretrained is None
    assert config.batch_size == TrainConfig().batch_size


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("learning_rate=0.1", "unknown config key 'learning_rate'"),
        ("epochs=many", "epochs: expected int"),
        ("epochs=2.5", "epochs: expected int"),
        ("amp=maybe", "amp: expected bool"),
        ("lr=true", "lr: expected float"),
        ("input_size=[256, x]", r"input_size\[1\]: expected int"),
        ("epochs", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_unknown_yaml_key_fails(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("arch: lite0\nbatchsize: 8\n")
    with pytest.raises(ConfigError, match="'batchsize'"):
        load_config(path)


def test_yaml_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_command_line_lists():
    assert load_config(None, ["input_size=256,192"]).input_size == [256, 192]
    assert load_config(None, ["lr_steps=[5, 8]"]).lr_steps == [5, 8]


def test_saved_config_loads_back_identical(tmp_path):
    config = load_config(None, ["arch=hrnet_w32", "lr=2e-4", "hub_repo=me/model", "decoder=integral"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["method=detection"], ("none", -1, "argmax")),
        (["method=ipr"], ("integral", 0, "integral")),
        (["method=debiased", "aug_epochs=4"], ("debiased", 4, "debiased")),
        # Table 6 ablations as switches: +L_de, +L_aug without debias, debias without L_aug.
        (["method=ipr", "heatmap_epochs=-1"], ("integral", -1, "integral")),
        (["method=ipr", "heatmap_epochs=5"], ("integral", 5, "integral")),
        (["method=debiased", "heatmap_epochs=0"], ("debiased", 0, "debiased")),
    ],
)
def test_method_presets_and_switches(overrides, expected):
    assert load_config(None, overrides).resolved() == expected


def test_unknown_method_fails():
    with pytest.raises(ConfigError, match="method"):
        load_config(None, ["method=magic"]).resolved()
    assert set(METHODS) == {"detection", "ipr", "debiased"}


def test_every_shipped_config_loads():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "training" / "configs").glob("*.yaml"))
    # 4 COCO setups, 3 MPII setups and 1 RHD hand setup x 3 methods, + 3 CPU-scale LSPET runs, + the
    # base of the CPU-scale LSPET comparison (training.compare overrides its method per run), + the GPU
    # fine-tune stage of the old bundled model, + the heatmap-all-run recipe of the new one and its
    # beta-3 stage and the six stages after it (stage 10 not shipped), + the base of the bias-alone
    # comparison over seeds, + the Lite2 GPU recipe prepared for training.budget, + the MoveNet recipe, its
    # stages 2, 3 and 4 and its GPU recipe
    assert len(configs) == 44
    for path in configs:
        config = load_config(path)
        config.validate(check_paths=False)  # every value fits (their data paths are overrides)
        suffix = path.stem.rsplit("_", 1)[1]
        named_for_their_role = ("compare", "gpu", "bias", "beta3")  # and the bundled model's stageN
        method = "debiased" if suffix in named_for_their_role or suffix.startswith("stage") else suffix
        assert config.method == method and config.beta == 10.0, path.name
        assert config.resolved()[2] == METHODS[method].decoder


def test_the_defaults_pass_the_check():
    # The default input_size was [192, 144], which no backbone accepts (144 is not a multiple of 32).
    TrainConfig().validate(check_paths=False)
    assert TrainConfig().input_size == [256, 192]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("val_every=0", "val_every: expected >= 1"),
        ("input_size=192,144", "input_size: .*multiples of 32"),
        ("input_size=256", "input_size"),
        ("arch=resnet", "arch: unknown 'resnet'; choose from"),
        ("decoder=softargmax", "decoder: unknown 'softargmax'"),
        ("coord_loss=l2", "coord_loss: unknown 'l2'"),
        ("heatmap_epochs=-3", "heatmap_epochs"),
        ("batch_size=0", "batch_size: expected >= 1"),
        ("lr=0", "lr: expected > 0"),
        ("beta=0", "beta"),
        ("flip_prob=1.5", "flip_prob"),
        ("val_fraction=1", "val_fraction"),
        ("lr_factor=0", "lr_factor"),
        ("max_steps_per_epoch=-1", "max_steps_per_epoch"),
        ("device=gpu", "device"),
    ],
)
def test_every_value_is_checked_before_training(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override]).validate(check_paths=False)


def test_missing_data_paths_name_the_key(tmp_path):
    annotations = tmp_path / "a.json"
    annotations.write_text("{}")
    with pytest.raises(ConfigError, match="train_annotations: not set"):
        load_config(None, []).validate()
    with pytest.raises(ConfigError, match="train_annotations: no such file"):
        load_config(None, [f"train_annotations={tmp_path / 'x.json'}", f"train_images={tmp_path}"]).validate()
    with pytest.raises(ConfigError, match="train_images: no such folder .*set train_images= to the folder"):
        load_config(None, [f"train_annotations={annotations}", f"train_images={tmp_path / 'im'}"]).validate()


def test_malformed_yaml_is_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("arch: lite0\n  epochs: [3\n")
    with pytest.raises(ConfigError, match=r"run.yaml: not valid YAML at line 2") as info:
        load_config(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="lr_steps: cannot read"):
        load_config(None, ["lr_steps=[5, 8"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["arch=resnet"], "arch: unknown 'resnet'"),
        (["val_every=0"], "val_every: expected >= 1"),
        (["learning_rate=1"], "unknown config key 'learning_rate'"),
        (["MISSING.yaml"], "missing.yaml: no such config file"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(args, message, tmp_path, capsys):
    if args == ["MISSING.yaml"]:
        args = [str(tmp_path / "missing.yaml")]
    assert run_main([*args, f"out_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not (tmp_path / "run").exists()  # nothing was started


def test_help_lists_every_key_with_its_default_and_meaning(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(["--help"])
    assert exit_info.value.code == 0
    shown = capsys.readouterr().out
    assert help_text() in shown
    lines = {line.split()[0]: line for line in help_text().splitlines()}
    for f in dataclasses.fields(TrainConfig):
        meaning = f.metadata.get("help", "")
        assert len(meaning) > 10, f"{f.name} has no meaning in its metadata"
        line = next(line for key, line in lines.items() if key.split("=")[0] == f.name)
        assert meaning in line
    assert "input_size=256,192 " in help_text() and "val_every=1 " in help_text()
    assert 'init_from="" ' in help_text() and "amp=true " in help_text() and "decoder=none " in help_text()


# The augmentation keys as a run saved them before they were nested (runs/*/config.yaml of runs in
# progress, and the training/configs/*.yaml of that time).
LEGACY_FLAT = "flip_prob: 0.25\nscale_factor: 0.25\nrotation_factor: 30.0\nhalf_body_prob: 0.1\nbeta: 3.0\n"


def test_legacy_flat_augmentation_keys_load_into_augment(tmp_path):
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(LEGACY_FLAT)
    keys = "  flip_prob: 0.25\n  scale_factor: 0.25\n  rotation_factor: 30.0\n  half_body_prob: 0.1\n"
    new.write_text("augment:\n" + keys + "beta: 3.0\n")
    legacy, current = load_config(old), load_config(new)
    assert legacy == current
    expected = AugmentConfig(flip_prob=0.25, scale_factor=0.25, rotation_factor=30.0, half_body_prob=0.1)
    assert legacy.augment == expected
    # Flat overrides (older command lines) and nested ones act alike; the later source wins.
    assert load_config(old, ["rotation_factor=10"]).augment.rotation_factor == 10.0
    assert load_config(old, ["augment.rotation_factor=20"]).augment.rotation_factor == 20.0
    assert load_config(new, ["augment.rotation_prob=1"]).augment.scale_factor == 0.25  # merged, not replaced
    # Saved back, the config is nested and reads the same.
    save_config(legacy, tmp_path / "saved.yaml")
    assert "augment:" in (tmp_path / "saved.yaml").read_text()
    assert "\nflip_prob" not in (tmp_path / "saved.yaml").read_text()
    assert load_config(tmp_path / "saved.yaml") == legacy


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("augment.flip_prob=1.5", "augment: AugmentConfig.flip_prob must be in"),
        ("augment.rotation_factor=-1", "augment: AugmentConfig.rotation_factor must be >= 0"),
        ("augment.spin=1", "unknown config key 'augment.spin'"),
        ("augment.rotation_factor=fast", "augment.rotation_factor: expected float"),
        ("augment=7", "augment: expected a mapping"),
    ],
)
def test_nested_augmentation_keys_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override]).validate(check_paths=False)


def test_every_shipped_config_loads_with_nested_augmentation():
    configs = Path(__file__).resolve().parent.parent / "training" / "configs"
    for path in sorted(configs.glob("*.yaml")):
        text = path.read_text()
        assert not any(line.startswith(key + ":") for key in LEGACY_KEYS for line in text.splitlines()), path
        load_config(path)


def test_help_lists_the_augmentation_keys():
    text = help_text()
    for f in dataclasses.fields(AugmentConfig):
        assert f"augment.{f.name}={f.default} " in text and f.metadata["help"] in text
