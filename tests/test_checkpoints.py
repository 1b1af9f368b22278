"""PoseModel checkpoints: save -> load round trips, config.json contents, and one clear error per failure."""

import json
import shutil
import socket
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import save_file

from pose.keypoints import COCO_17, LSP_14
from pose.models import CheckpointError, PoseModel, build_pose_model, imagenet

SIZE = (64, 64)


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch, tmp_path):
    """No test here may touch the network: offline Hub, empty cache, and sockets that refuse to connect.

    HF_HUB_OFFLINE is read when huggingface_hub is imported, so its constant is patched too.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))

    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[PoseModel, Path]:
    """A small Lite0 model (random init, 64x64 input, non-default decoder/beta) and its saved folder."""
    torch.manual_seed(0)
    model = build_pose_model("lite0", COCO_17, input_size=SIZE, decoder="integral", beta=4.5)
    folder = tmp_path_factory.mktemp("ckpt") / "lite0-coco"
    model.save_pretrained(folder)
    return model.eval(), folder


@pytest.fixture
def copy(saved, tmp_path) -> Path:
    """A fresh copy of the saved checkpoint folder, to break."""
    return Path(shutil.copytree(saved[1], tmp_path / "broken"))


def test_save_writes_config_and_safetensors_only(saved):
    _, folder = saved
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md"}


def test_round_trip_gives_identical_outputs_and_config(saved, tmp_path):
    model, folder = saved
    loaded = PoseModel.from_pretrained(folder)
    assert not loaded.training
    images = torch.randn(2, 3, *SIZE)
    with torch.no_grad():
        assert torch.equal(loaded(images), model(images))
    assert loaded.to_config() == model.to_config()
    assert loaded.schema == COCO_17
    assert (loaded.input_size, loaded.heatmap_size) == (SIZE, (16, 16))
    assert (loaded.decoder, loaded.beta, loaded.mean, loaded.std) == ("integral", 4.5, model.mean, model.std)
    loaded.save_pretrained(tmp_path / "again")
    assert (tmp_path / "again" / "config.json").read_text() == (folder / "config.json").read_text()


def test_config_json_contents(saved):
    model, folder = saved
    config = json.loads((folder / "config.json").read_text())
    assert config == {
        "format": 1,
        "arch": "lite0",
        "keypoints": {
            "name": "coco17",
            "names": list(COCO_17.names),
            "flip": list(COCO_17.flip),
            "skeleton": [list(edge) for edge in COCO_17.skeleton],
            "sigmas": list(COCO_17.sigmas),
        },
        "input_size": [64, 64],
        "heatmap_size": [16, 16],
        "decoder": "integral",
        "beta": 4.5,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
    }


def test_decoding_defaults_changed_after_construction_are_saved_and_overridable(tmp_path):
    model = PoseModel("lite0", LSP_14.to_dict(), input_size=SIZE)
    model.decoder, model.beta = "argmax", 2.0
    model.save_pretrained(tmp_path)
    assert (PoseModel.from_pretrained(tmp_path).decoder, PoseModel.from_pretrained(tmp_path).beta) == (
        "argmax",
        2.0,
    )
    assert PoseModel.from_pretrained(tmp_path, decoder="debiased", beta=7).beta == 7.0


def test_loading_never_fetches_imagenet_weights(saved, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("from_pretrained fetched ImageNet weights")

    monkeypatch.setattr(imagenet, "timm_state_dict", fail)
    monkeypatch.setattr(imagenet, "lite_package_file", fail)
    assert PoseModel.from_pretrained(saved[1]).arch == "lite0"


# --- failures: one exception type, naming the checkpoint and the cause ------------------------------


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del config[key]
        else:
            config[key] = value
    path.write_text(json.dumps(config))


BROKEN_CONFIGS = [
    ({"arch": "resnet9000"}, r"invalid fields: unknown architecture 'resnet9000'; known: \["),
    ({"beta": -1.0}, "invalid fields: beta must be a finite number > 0"),
    ({"decoder": "median"}, "invalid fields: unknown decoder 'median'"),
    ({"input_size": [60, 64]}, "invalid fields: input_size must be .* divisible by 32"),
    ({"keypoints": {"name": "x", "names": ["a"], "flip": [3]}}, "invalid fields: .*not a permutation"),
    ({"keypoints": None}, r"lacks fields \['keypoints'\]"),
    ({"arch": None}, r"lacks fields \['arch'\]"),
    ({"pretrained": "timm"}, r"unknown fields \['pretrained'\]"),
    ({"format": 2}, "has format 2; this version reads 1"),
    ({"heatmap_size": [32, 32]}, r"heatmap_size \[32, 32\], but input_size \[64, 64\] gives \[16, 16\]"),
]


@pytest.mark.parametrize(("changes", "cause"), BROKEN_CONFIGS)
def test_bad_config_fields(copy, changes, cause):
    _edit_config(copy, **changes)
    with pytest.raises(CheckpointError, match=cause) as info:
        PoseModel.from_pretrained(copy)
    assert str(copy) in str(info.value)


@pytest.mark.parametrize(
    ("text", "cause"), [("{arch: lite0", "config.json is not valid JSON"), ("[1, 2]", "not a JSON object")]
)
def test_config_that_is_not_a_json_object(copy, text, cause):
    (copy / "config.json").write_text(text)
    with pytest.raises(CheckpointError, match=cause) as info:
        PoseModel.from_pretrained(copy)
    assert str(copy) in str(info.value)


def test_missing_folder_and_missing_config(tmp_path, copy):
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(CheckpointError, match="no such folder") as info:
        PoseModel.from_pretrained(missing)
    assert str(missing) in str(info.value)
    (copy / "config.json").unlink()
    with pytest.raises(CheckpointError, match="the folder has no config.json") as info:
        PoseModel.from_pretrained(copy)
    assert str(copy) in str(info.value)
    with pytest.raises(CheckpointError, match="a file, not a folder"):
        PoseModel.from_pretrained(copy / "model.safetensors")


@pytest.mark.parametrize("keep", [0, 100, -1000])
def test_corrupt_safetensors(copy, keep):
    weights = copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[:keep])  # empty, a cut header, a file missing its last tensor bytes
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt or unreadable") as info:
        PoseModel.from_pretrained(copy)
    assert str(copy) in str(info.value)


def test_pickle_weights_are_refused(copy, saved):
    (copy / "model.safetensors").unlink()
    torch.save(saved[0].state_dict(), copy / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="no model.safetensors; pytorch_model.bin is pickle") as info:
        PoseModel.from_pretrained(copy)
    assert str(copy) in str(info.value)
    with pytest.raises(CheckpointError, match="no model.safetensors"):  # the mixin's hook is strict too
        PoseModel._from_pretrained(
            model_id=str(copy),
            revision=None,
            cache_dir=None,
            force_download=False,
            local_files_only=False,
            token=None,
        )


def _rewrite_weights(folder: Path, edit) -> None:
    from safetensors.torch import load_file

    state = load_file(folder / "model.safetensors")
    edit(state)
    save_file(state, folder / "model.safetensors")


@pytest.mark.parametrize(
    ("edit", "cause"),
    [
        (lambda s: s.pop("head.final.bias"), "Missing key.*head.final.bias"),
        (lambda s: s.update(extra=torch.zeros(1)), "Unexpected key.*extra"),
        (lambda s: s.update({"head.final.bias": torch.zeros(14)}), "size mismatch for head.final.bias"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_weights_that_do_not_match_the_architecture(copy, edit, cause):
    _rewrite_weights(copy, edit)
    expected = f"(?s)does not match the architecture .*'lite0'.*{cause}"  # torch's message spans lines
    with pytest.raises(CheckpointError, match=expected) as info:
        PoseModel.from_pretrained(copy)
    assert str(copy) in str(info.value)


def test_config_for_another_schema_does_not_fit_the_weights(copy):
    _edit_config(copy, keypoints=LSP_14.to_dict())  # 14 maps in config.json, 17 in the weights
    with pytest.raises(CheckpointError, match="size mismatch for head.final.weight"):
        PoseModel.from_pretrained(copy)


@pytest.mark.parametrize("repo_id", ["nobody/no-such-pose-model", "debias-pose-lite0"])
def test_hub_repo_that_cannot_be_reached_offline(repo_id):
    with pytest.raises(CheckpointError, match="could not be fetched from the Hub .*offline") as info:
        PoseModel.from_pretrained(repo_id)
    assert repr(repo_id) in str(info.value)
    assert "LocalEntryNotFoundError" in str(info.value)


def test_invalid_repo_id_that_is_no_folder():
    with pytest.raises(CheckpointError, match="'owner/name'") as info:
        PoseModel.from_pretrained("not a//repo")
    assert "'not a//repo'" in str(info.value)
