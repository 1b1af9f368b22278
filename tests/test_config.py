"""training.config: defaults, YAML, overrides, errors that name the key, method presets."""

import pytest

from training.config import METHODS, ConfigError, TrainConfig, load_config, save_config


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
    # fine-tune stage of the bundled model
    assert len(configs) == 29
    for path in configs:
        config = load_config(path)
        suffix = path.stem.rsplit("_", 1)[1]
        method = {"compare": "debiased", "gpu": "debiased"}.get(suffix, suffix)
        assert config.method == method and config.beta == 10.0, path.name
        assert config.resolved()[2] == METHODS[method][2]
