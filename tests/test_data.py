"""Tests for pose.data: round trips through the crop, flips, targets, bad data, determinism, loaders."""

import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from pose.data import (
    NO_AUGMENT,
    AugmentConfig,
    CropSpec,
    Selection,
    TopDownDataset,
    TrainSpec,
    body_halves,
    make_loader,
    set_loader_epoch,
)
from pose.geometry import apply_affine, heatmap_to_input, invert_affine
from pose.keypoints import COCO_17, HAND_21, LSP_14, MPII_16
from tests.fixtures import BACKGROUND, joint_colours, make_coco_dataset

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
INPUT_SIZE = (128, 96)  # about 1.2 input px per image px on the fixture's people

AUGMENTS = {
    "scale": replace(NO_AUGMENT, scale_factor=0.35),
    "rotation": replace(NO_AUGMENT, rotation_factor=45.0, rotation_prob=1.0),
    "flip": replace(NO_AUGMENT, flip_prob=1.0),
    "half_body": replace(NO_AUGMENT, half_body_prob=1.0, num_joints_half_body=0),
    "all": AugmentConfig(half_body_prob=0.5, num_joints_half_body=0),
}


@pytest.fixture(scope="module")
def coco_set(tmp_path_factory):
    return make_coco_dataset(tmp_path_factory.mktemp("coco"), n_images=6, unlabelled_prob=0.2)


def _dataset(paths, **kwargs):
    """The data set of ``paths`` with the old keyword arguments sorted into the specs they belong to."""
    crop = CropSpec(input_size=kwargs.pop("input_size", INPUT_SIZE), padding=kwargs.pop("padding", 1.25))
    select = Selection(**{k: kwargs.pop(k) for k in ("detections", "score_threshold") if k in kwargs})
    train = None
    if kwargs.pop("train", False):
        train = TrainSpec(kwargs.pop("augment", None) or AugmentConfig(), kwargs.pop("seed", 0))
    assert not kwargs, kwargs
    return TopDownDataset(*paths, crop, select, train)


def _pixel_rgb(item, xy_input):
    """uint8-scale RGB of the item's (normalised) image at the input pixel nearest ``xy_input``."""
    x, y = np.round(xy_input).astype(int)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return (item["image"][:, y, x] * std + mean).numpy() * 255


@pytest.mark.parametrize("schema", [COCO_17, LSP_14, MPII_16])
def test_round_trip_without_augmentation(tmp_path, schema):
    dataset = _dataset(make_coco_dataset(tmp_path, n_images=3, schema=schema))
    assert dataset.schema == schema and dataset.heatmap_size == (32, 24)
    for item in dataset:
        labelled = item["visibility"] > 0
        # The fixture's box holds every joint, so exactly the labelled joints get weight 1.
        assert torch.equal(item["weights"] > 0, labelled) and not item["flipped"]
        back = apply_affine(item["coords"].numpy(), item["matrix"].numpy())
        np.testing.assert_allclose(back[labelled], item["keypoints_image"][labelled], atol=1e-3)
        assert torch.isnan(item["keypoints_image"][~labelled]).all()


@pytest.mark.parametrize("augment", AUGMENTS.values(), ids=AUGMENTS.keys())
def test_round_trip_with_augmentation(coco_set, augment):
    dataset = _dataset(coco_set, train=True, augment=augment)
    flip = np.asarray(COCO_17.flip)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for item in dataset:
            if augment.flip_prob in (0.0, 1.0):
                assert bool(item["flipped"]) == bool(augment.flip_prob)
            # Row i of the targets is annotated joint flip[i] when the item is mirrored.
            original = item["keypoints_image"].numpy()[flip if item["flipped"] else slice(None)]
            kept = item["weights"].numpy() > 0
            back = apply_affine(item["coords"].numpy(), item["matrix"].numpy())
            np.testing.assert_allclose(back[kept], original[kept], atol=1e-3)


def test_flip_swaps_left_and_right_and_mirrors_the_image(coco_set):
    plain = _dataset(coco_set, train=True, augment=NO_AUGMENT)
    flipped = _dataset(coco_set, train=True, augment=replace(NO_AUGMENT, flip_prob=1.0))
    colours_rgb = joint_colours(17)[:, ::-1].astype(float)
    width_hm = plain.heatmap_size[1]
    lw, rw = COCO_17.index("left_wrist"), COCO_17.index("right_wrist")
    for a, b in zip(plain, flipped, strict=True):
        assert b["flipped"] and torch.equal(b["image"], a["image"].flip(-1))
        if a["weights"][rw] > 0:  # left_wrist of the mirrored person = mirrored right wrist
            expected = [width_hm - 1 - a["coords"][rw, 0], a["coords"][rw, 1]]
            torch.testing.assert_close(b["coords"][lw], torch.tensor(expected), atol=1e-5, rtol=0)
        for i in np.flatnonzero(b["weights"].numpy() > 0):
            # At the target of joint i, the mirrored image shows the disc drawn for joint flip[i].
            xy = heatmap_to_input(b["coords"][i].numpy(), plain.input_size, plain.heatmap_size)
            np.testing.assert_allclose(_pixel_rgb(b, xy), colours_rgb[COCO_17.flip[i]], atol=2)
            assert abs(_blob_centroid(b, colours_rgb[COCO_17.flip[i]], xy) - xy).max() < 0.25


def test_occlusion_paints_noise_on_the_input_and_leaves_the_targets(coco_set):
    """Random erasing changes one rectangle of about the drawn area and nothing else of the item."""
    plain = _dataset(coco_set, train=True, augment=NO_AUGMENT)
    settings = replace(NO_AUGMENT, occlusion_prob=1.0, occlusion_min_area=0.1, occlusion_max_area=0.2)
    occluded = _dataset(coco_set, train=True, augment=settings)
    height, width = INPUT_SIZE
    for a, b in zip(plain, occluded, strict=True):
        for key in ("heatmaps", "coords", "weights", "matrix", "flipped"):
            assert torch.equal(a[key], b[key]), key
        changed = (a["image"] != b["image"]).any(dim=0).numpy()
        ys, xs = np.nonzero(changed)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        # One solid rectangle (a few noise pixels may equal the image) of 10-20% of the input.
        assert changed.sum() > 0.9 * box and 0.09 * height * width <= box <= 0.21 * height * width
        noise = b["image"][:, changed].std(dim=1)
        assert (noise > 1.0).all()  # uniform uint8 noise: std ~74/255 / ImageNet std ~0.23 ~ 1.3


def test_occlusion_off_or_at_zero_probability_keeps_every_item(coco_set):
    base = AugmentConfig(half_body_prob=0.5, num_joints_half_body=0)
    off = _dataset(coco_set, train=True, augment=base, seed=3)
    zero = _dataset(
        coco_set, train=True, augment=replace(base, occlusion_prob=0.0, occlusion_max_area=0.5), seed=3
    )
    half = _dataset(coco_set, train=True, augment=replace(base, occlusion_prob=0.5), seed=3)
    touched = 0
    for a, b, c in zip(off, zero, half, strict=True):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["coords"], c["coords"])
        touched += not torch.equal(a["image"], c["image"])
    assert 0 < touched < len(off)  # probability 0.5 occludes some items, not all


@pytest.mark.parametrize("low, high", [(0.0, 0.2), (0.3, 0.2), (0.1, 1.5)])
def test_occlusion_area_out_of_range_is_refused(low, high):
    with pytest.raises(ValueError, match="occlusion_min_area/max_area"):
        AugmentConfig(occlusion_min_area=low, occlusion_max_area=high)


def _blob_centroid(item, colour_rgb, near_xy, radius=5.0):
    """Input-pixel centroid of the disc of ``colour_rgb`` near ``near_xy``, weighted by coverage.

    A pixel's coverage is ``alpha`` in ``rgb = background + alpha (colour - background)``; pixels not on
    that line (other discs) get none, so anti-aliased and resampled edges count by their share.
    """
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    rgb = ((item["image"] * std[:, None, None] + mean[:, None, None]) * 255).permute(1, 2, 0).numpy()
    direction = colour_rgb - BACKGROUND
    alpha = np.clip((rgb - BACKGROUND) @ direction / (direction @ direction), 0, 1)
    off_line = np.abs(rgb - BACKGROUND - alpha[..., None] * direction).max(axis=-1) > 20
    ys, xs = np.mgrid[: rgb.shape[0], : rgb.shape[1]]
    weights = np.where(off_line | (np.hypot(xs - near_xy[0], ys - near_xy[1]) > radius), 0.0, alpha)
    return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


@pytest.mark.parametrize("padding", [1.25, 0.6])
def test_targets_peaks_and_weights(coco_set, padding):
    dataset = _dataset(coco_set, padding=padding)
    height, width = dataset.heatmap_size
    outside_seen = 0
    for item in dataset:
        coords_all = apply_affine(item["keypoints_image"].numpy(), invert_affine(item["matrix"].numpy()))
        inside = (np.abs(coords_all[:, 0] - (width - 1) / 2) <= width / 2) & (
            np.abs(coords_all[:, 1] - (height - 1) / 2) <= height / 2
        )
        labelled = item["visibility"].numpy() > 0
        np.testing.assert_array_equal(item["weights"].numpy(), (labelled & inside).astype(np.float32))
        outside_seen += int(np.sum(labelled & ~inside))
        for k, (heatmap, weight) in enumerate(zip(item["heatmaps"], item["weights"], strict=True)):
            if weight == 0:
                assert heatmap.abs().max() == 0 and item["coords"][k].abs().max() == 0
                continue
            peak = np.unravel_index(int(heatmap.argmax()), heatmap.shape)[::-1]
            assert np.abs(np.array(peak) - item["coords"][k].numpy()).max() <= 0.5 + 1e-6
    assert (outside_seen > 0) == (padding < 1)  # a tight crop pushes joints out of the heatmap


def test_half_body_crop_frames_one_half(coco_set):
    dataset = _dataset(coco_set, train=True, augment=replace(NO_AUGMENT, half_body_prob=1.0))
    height, width = dataset.heatmap_size
    for item in dataset:
        keypoints = item["keypoints_image"].numpy()
        centre = apply_affine([(width - 1) / 2, (height - 1) / 2], item["matrix"].numpy())
        matches = []
        for half in body_halves(COCO_17):
            low, high = np.nanmin(keypoints[list(half)], 0), np.nanmax(keypoints[list(half)], 0)
            # Crop = the half's joint box, widened to the input aspect, times 1.5 (half_body_padding).
            crop_height = 1.5 * max(high[1] - low[1], (high[0] - low[0]) * height / width)
            matches.append(
                np.allclose(centre, (low + high) / 2)
                and np.isclose(item["matrix"][1, 1], crop_height / height)
            )
        assert sum(matches) == 1


def test_body_halves_from_names():
    upper, lower = body_halves(COCO_17)
    assert upper == tuple(range(11)) and lower == tuple(range(11, 17))
    upper, lower = body_halves(LSP_14)
    assert sorted(upper) == list(range(6, 14)) and sorted(lower) == list(range(6))
    assert body_halves(HAND_21)[1] == ()


def _break_dataset(paths):
    """One NaN joint (ann 1), one joint outside (ann 2), empty box (ann 3), missing file (4), garbage (5)."""
    annotations_path, images_dir = paths
    coco = json.loads(annotations_path.read_text())
    anns = coco["annotations"]
    anns[0]["keypoints"][0:3] = [float("nan"), 10.0, 2]
    anns[1]["keypoints"][3:6] = [1000.0, 10.0, 2]
    anns[2]["bbox"] = [10.0, 10.0, 0.0, 30.0]
    annotations_path.write_text(json.dumps(coco))  # json writes NaN as a bare NaN, which it reads back
    (images_dir / coco["images"][3]["file_name"]).unlink()
    (images_dir / coco["images"][4]["file_name"]).write_bytes(b"\x89PNG not really" * 10)
    return coco["images"][4]["file_name"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_bad_annotations_are_skipped_and_counted(tmp_path, num_workers):
    paths = make_coco_dataset(tmp_path, n_images=8, unlabelled_prob=0.0)
    corrupt_name = _break_dataset(paths)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dataset = _dataset(paths, train=True)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "skipped 2 instances" in message and "treated 2 joints as unlabelled" in message
    assert "missing image file: 1" in message and "empty or degenerate box" in message
    assert len(dataset) == 6 and [inst.ann_id for inst in dataset.instances] == [1, 2, 5, 6, 7, 8]
    assert dataset.instances[0].visibility[0] == 0 and dataset.instances[1].visibility[1] == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(make_loader(dataset, batch_size=4, shuffle=False, num_workers=num_workers))
    ann_ids = torch.cat([b["ann_id"] for b in batches]).tolist()
    assert ann_ids == [1, 2, 6, 6, 7, 8]  # the corrupt image's item is replaced by the next one
    if num_workers == 0:  # a worker's warning stays in the worker
        assert len(caught) == 1 and corrupt_name in str(caught[0].message)
        assert dataset.load_failures == 1


def test_detection_boxes_above_threshold(tmp_path, coco_set):
    detections = [
        {"image_id": 1, "category_id": 1, "bbox": [10.0, 12.0, 40.0, 60.0], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [5.0, 5.0, 20.0, 20.0], "score": 0.3},
        {"image_id": 2, "category_id": 1, "bbox": [100.0, 50.0, 60.0, 60.0], "score": 0.6},  # clipped
        {"image_id": 2, "category_id": 2, "bbox": [10.0, 10.0, 40.0, 40.0], "score": 0.99},
        {"image_id": 3, "category_id": 1, "bbox": [10.0, 10.0, 0.5, 40.0], "score": 0.99},  # degenerate
    ]
    path = tmp_path / "detections.json"
    path.write_text(json.dumps(detections))
    with pytest.warns(UserWarning, match="empty or degenerate box"):
        dataset = _dataset(coco_set, detections=path, score_threshold=0.5)
    items = list(dataset)
    assert [int(item["image_id"]) for item in items] == [1, 2]
    torch.testing.assert_close(items[0]["box"], torch.tensor([10.0, 12.0, 50.0, 72.0], dtype=torch.float64))
    torch.testing.assert_close(items[1]["box"], torch.tensor([100.0, 50.0, 128.0, 96.0], dtype=torch.float64))
    for item, score in zip(items, [0.9, 0.6], strict=True):
        assert item["ann_id"] == -1 and item["score"] == score and item["weights"].sum() == 0
        assert torch.isnan(item["keypoints_image"]).all() and item["heatmaps"].abs().max() == 0
    with pytest.raises(ValueError, match="detections"):
        _dataset(coco_set, detections=path, train=True)


def _same_items(a, b):
    """Same keys and bit-identical tensors (NaN equal to NaN)."""
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype
        and a[k].shape == b[k].shape
        and bool(torch.isclose(a[k], b[k], 0, 0, True).all())
        for k in a
    )


def test_augmentation_is_a_function_of_seed_epoch_and_index(coco_set):
    first, second = (_dataset(coco_set, train=True, seed=7) for _ in range(2))
    first.set_epoch(3)
    second.set_epoch(3)
    for index in (0, 4):
        a, b = first[index], second[index]
        assert _same_items(a, b), index
    second.set_epoch(4)
    assert not any(torch.equal(first[i]["matrix"], second[i]["matrix"]) for i in range(len(first)))
    assert not torch.equal(first[0]["matrix"], first[1]["matrix"])


@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_workers_match_main_process(coco_set, shuffle):
    dataset = _dataset(coco_set, train=True, input_size=(64, 48))
    loaders = [make_loader(dataset, batch_size=4, shuffle=shuffle, num_workers=n, seed=3) for n in (0, 2)]
    orders = []
    for epoch in (0, 1):  # epoch 1 checks that set_epoch reaches the persistent workers
        runs = []
        for loader in loaders:
            set_loader_epoch(loader, epoch)
            runs.append(list(loader))
        for batch0, batch2 in zip(*runs, strict=True):
            assert _same_items(batch0, batch2)
        orders.append(torch.cat([b["ann_id"] for b in runs[0]]).tolist())
    assert (orders[0] != orders[1]) == shuffle


def test_a_loader_started_part_way_yields_the_rest_of_that_epoch(coco_set):
    """A mid-epoch resume: the epoch's batches after the first two, the same ones, in a worker too; the
    next epoch starts from its beginning again."""
    dataset = _dataset(coco_set, train=True, input_size=(64, 48))
    loader = make_loader(dataset, batch_size=1, shuffle=True, num_workers=1, seed=5)
    set_loader_epoch(loader, 1)
    whole = list(loader)
    set_loader_epoch(loader, 1, start_batch=2)
    rest = list(loader)
    assert len(whole) >= 4 and len(rest) == len(whole) - 2
    assert all(_same_items(a, b) for a, b in zip(whole[2:], rest, strict=True))
    set_loader_epoch(loader, 2)
    assert len(list(loader)) == len(whole)
    plain = DataLoader(dataset, batch_size=1)
    with pytest.raises(TypeError, match="make_loader"):
        set_loader_epoch(plain, 1, start_batch=2)


def test_input_size_must_divide_by_stride(coco_set):
    with pytest.raises(ValueError, match="divisible"):
        _dataset(coco_set, input_size=(130, 96))


@pytest.mark.skipif(not (SHARED_DATA / "coco-mini").is_dir(), reason="needs ../shared/data/coco-mini")
def test_coco_mini_loads_every_instance_with_keypoints():
    root = SHARED_DATA / "coco-mini"
    dataset = TopDownDataset(root / "annotations.json", root / "images", train=TrainSpec())
    assert dataset.schema == COCO_17 and len(dataset) == 12
    item = dataset[0]
    assert item["image"].shape == (3, 256, 192) and item["heatmaps"].shape == (17, 64, 48)


@pytest.mark.skipif(not (SHARED_DATA / "lspet").is_dir(), reason="needs ../shared/data/lspet")
def test_lspet_subset_loads():
    root = SHARED_DATA / "lspet"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a handful of LSPET joints lie just outside their image
        dataset = TopDownDataset(root / "annotations.json", root / "images", select=Selection(range(1, 51)))
    assert dataset.schema == LSP_14 and len(dataset) == 50
    for item in (dataset[0], dataset[49]):
        kept = item["weights"].numpy() > 0
        back = apply_affine(item["coords"].numpy(), item["matrix"].numpy())
        np.testing.assert_allclose(back[kept], item["keypoints_image"].numpy()[kept], atol=1e-3)
