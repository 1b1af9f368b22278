"""pose.inference.Predictor on test doubles: exact image coordinates, re-decoding, flip test, errors."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pose.decode import DECODERS
from pose.geometry import box_to_crop, flip_points, heatmap_to_image, input_aspect, warp_image
from pose.inference import CROP_PADDING, Prediction, Predictor
from pose.keypoints import KeypointSchema
from pose.targets import gaussian_heatmaps

# Joints 0 and 1 swap under a mirror, joint 2 does not: a left/right-asymmetric schema.
TRIO = KeypointSchema("trio", ("left_hand", "right_hand", "head"), flip=(1, 0, 2))
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_HW = (480, 640)
BOX = (100.0, 50.0, 300.0, 450.0)  # 200 x 400 px: the aspect fix widens it to 300 x 400


class FixedHeatmapModel(nn.Module):
    """Test double: ignores its input and emits amplitude-1 Gaussian bumps at fixed heatmap coordinates.

    Zero background, so the debiased decoder recovers the centres exactly. Counts forward calls.
    """

    def __init__(self, centres, schema=TRIO, input_size=(256, 192), sigma=2.0, decoder="debiased", beta=1.0):
        super().__init__()
        self.schema, self.input_size = schema, input_size
        self.heatmap_size = (input_size[0] // 4, input_size[1] // 4)
        self.decoder, self.beta, self.mean, self.std = decoder, beta, MEAN, STD
        self.register_buffer("heatmaps", gaussian_heatmaps(torch.tensor(centres), self.heatmap_size, sigma))
        self.calls, self.batch_sizes, self.last_input = 0, [], None

    def forward(self, images):
        self.calls += 1
        self.batch_sizes.append(images.shape[0])
        self.last_input = images
        return self.heatmaps.expand(images.shape[0], -1, -1, -1).clone()


class MirrorEquivariantModel(nn.Module):
    """Test double: a fixed tiny 'network' that commutes with mirroring, joints 0 and 1 swapping.

    From the crop's brightness b (0..1): joint 0 = relu(db/dx) (rising edges), joint 1 = relu(-db/dx)
    (falling edges), joint 2 = b, each 4x4 average-pooled to the heatmap. Central differences with zero
    padding and aligned 4x4 pooling mirror exactly: mirroring the crop mirrors joint 2 and swaps 0 and 1.
    """

    def __init__(self, input_size=(64, 48), decoder="debiased", beta=4.0):
        super().__init__()
        self.schema, self.input_size = TRIO, input_size
        self.heatmap_size = (input_size[0] // 4, input_size[1] // 4)
        self.decoder, self.beta, self.mean, self.std = decoder, beta, MEAN, STD
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
        brightness = (images * std + mean).mean(dim=1, keepdim=True)
        padded = F.pad(brightness, (1, 1))
        dx = 2.0 * (padded[..., 2:] - padded[..., :-2])  # scaled so edge peaks are comparable to b
        return F.avg_pool2d(torch.cat([dx.relu(), (-dx).relu(), brightness], dim=1), 4)


def expected_image_xy(heatmap_xy, box, input_size, heatmap_size):
    """Heatmap pixels -> image pixels, worked out by hand from the box (independent of pose.geometry)."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    aspect = input_size[1] / input_size[0]
    w, h = (w, w / aspect) if w > aspect * h else (h * aspect, h)
    crop_w, crop_h = w * CROP_PADDING, h * CROP_PADDING
    hm_h, hm_w = heatmap_size
    xy = np.asarray(heatmap_xy, dtype=np.float64)
    # Edge to edge: heatmap x = -0.5 is the crop's left edge, x = W - 0.5 its right edge.
    x = (x1 + x2) / 2 + (xy[..., 0] + 0.5 - hm_w / 2) * crop_w / hm_w
    y = (y1 + y2) / 2 + (xy[..., 1] + 0.5 - hm_h / 2) * crop_h / hm_h
    return np.stack([x, y], axis=-1)


def mirror_boxes(boxes, image_width):
    b = np.asarray(boxes, dtype=np.float64)
    return np.stack([image_width - 1 - b[:, 2], b[:, 1], image_width - 1 - b[:, 0], b[:, 3]], axis=1)


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (*IMAGE_HW, 3), dtype=np.uint8)


@pytest.fixture
def blob_image():
    """Black image with three bright Gaussian blobs of different colours, off any symmetry axis."""
    ys, xs = np.mgrid[: IMAGE_HW[0], : IMAGE_HW[1]].astype(np.float64)
    out = np.zeros((*IMAGE_HW, 3))
    blobs = [
        ((211.3, 140.7), 5.0, (230, 120, 40)),
        ((190.2, 171.4), 4.0, (60, 200, 90)),
        ((452.6, 318.2), 6.0, (200, 200, 250)),
    ]
    for (cx, cy), sigma, colour in blobs:
        out += np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))[..., None] * colour
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# Crops of 96 x 128 px sampled at 48 x 64: every input pixel lands on an integer image pixel (no
# interpolation), so the mirrored image gives exactly the mirrored crops.
BLOB_BOXES = [(161.6, 98.8, 238.4, 201.2), (411.6, 258.8, 488.4, 361.2)]

# --- image coordinates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "centres, beta",
    [
        ([(10.5, 20.0), (30.0, 40.5), (23.5, 31.5)], 4.0),  # half-pixel lattice: exact at any beta
        ([(12.3, 17.8), (31.07, 44.6), (25.9, 9.35)], 1.0),  # any centre: sigma 2 >= 0.7 sqrt(beta)
    ],
)
def test_debiased_keypoints_are_the_bump_centres_in_image_pixels(image, centres, beta):
    model = FixedHeatmapModel(centres, beta=beta)
    prediction = Predictor(model).predict(image, [BOX])
    np.testing.assert_allclose(prediction.heatmap_coords[0], centres, atol=1e-4)
    expected = expected_image_xy(centres, BOX, model.input_size, model.heatmap_size)
    np.testing.assert_allclose(prediction.keypoints[0], expected, atol=1e-3)


@pytest.mark.parametrize("decoder", ["debiased", "integral"])
def test_box_centre_maps_to_heatmap_centre(image, decoder):
    # A bump on the heatmap centre: even the (biased) integral decoder is exact there, by symmetry.
    model = FixedHeatmapModel([(23.5, 31.5)] * 3)
    prediction = Predictor(model).predict(image, [BOX], decoder=decoder)
    np.testing.assert_allclose(prediction.keypoints[0], [[200.0, 250.0]] * 3, atol=1e-3)


def test_argmax_keypoints_carry_the_quarter_pixel_step(image):
    centres = np.array([(20.3, 30.0), (15.0, 9.8), (7.6, 40.2)])
    model = FixedHeatmapModel(centres.tolist(), decoder="argmax")
    prediction = Predictor(model).predict(image, [BOX])
    # Arg-max pixel, plus 0.25 px toward the higher neighbour: the side the true centre is on.
    nearest = np.rint(centres)
    expected_hm = nearest + 0.25 * np.sign(centres - nearest)
    np.testing.assert_array_equal(prediction.heatmap_coords[0], expected_hm)
    expected = expected_image_xy(expected_hm, BOX, model.input_size, model.heatmap_size)
    np.testing.assert_allclose(prediction.keypoints[0], expected, atol=1e-3)


@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_prediction_is_the_decoded_logits_mapped_through_the_crops(image, decoder):
    model = FixedHeatmapModel([(12.3, 17.8), (31.07, 44.6), (25.9, 9.35)])
    boxes = [BOX, (400.0, 100.0, 520.0, 300.0)]
    prediction = Predictor(model).predict(image, boxes, decoder=decoder, beta=2.0)
    coords, scores = DECODERS[decoder](model.heatmaps[None].expand(2, -1, -1, -1), 2.0)
    crops = [box_to_crop(b, input_aspect(model.input_size), padding=CROP_PADDING) for b in boxes]
    assert prediction.crops == tuple(crops)
    np.testing.assert_allclose(prediction.heatmap_coords, coords.numpy(), atol=1e-6)
    np.testing.assert_allclose(prediction.scores, scores.numpy(), atol=1e-6)
    expected = heatmap_to_image(coords.numpy(), crops, model.heatmap_size)
    np.testing.assert_allclose(prediction.keypoints, expected, atol=1e-3)
    assert (prediction.decoder, prediction.beta) == (decoder, 2.0)


def test_network_input_is_the_normalised_warped_crop(image):
    model = FixedHeatmapModel([(10.0, 10.0)] * 3)
    Predictor(model).predict(image, [BOX])
    crop = box_to_crop(BOX, input_aspect(model.input_size), padding=CROP_PADDING)
    warped = warp_image(image, crop, model.input_size).astype(np.float32) / 255
    expected = (warped - np.array(MEAN, np.float32)) / np.array(STD, np.float32)
    np.testing.assert_allclose(model.last_input[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)


# --- cached logits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "decoder, beta", [("integral", 3.0), ("argmax", 1.0), ("debiased", 0.5), (None, None)]
)
def test_redecode_runs_no_network_and_equals_predict(image, decoder, beta):
    model = FixedHeatmapModel([(12.3, 17.8), (31.07, 44.6), (25.9, 9.35)])
    predictor = Predictor(model)
    predictor.predict(image, [BOX, (10, 20, 60, 200)], decoder="debiased", beta=1.0)
    calls = model.calls
    again = predictor.redecode(decoder, beta)
    assert model.calls == calls
    fresh = predictor.predict(image, [BOX, (10, 20, 60, 200)], decoder=decoder, beta=beta)
    for field in ("keypoints", "scores", "heatmap_coords", "boxes"):
        np.testing.assert_array_equal(getattr(again, field), getattr(fresh, field))
    assert (again.decoder, again.beta) == (decoder or model.decoder, beta or model.beta)


def test_logits_and_crops_are_exposed_without_aliasing_the_cache(image):
    model = FixedHeatmapModel([(12.3, 17.8), (31.07, 44.6), (25.9, 9.35)])
    predictor = Predictor(model)
    assert predictor.logits is None and predictor.crops is None
    first = predictor.predict(image, [BOX])
    logits = predictor.logits
    assert logits.shape == (1, 3, 64, 48) and logits.dtype == torch.float32 and logits.device.type == "cpu"
    torch.testing.assert_close(logits[0], model.heatmaps)
    logits.fill_(float("nan"))  # the caller's copy, not the cache
    np.testing.assert_array_equal(predictor.redecode().keypoints, first.keypoints)
    assert predictor.crops == first.crops
    with pytest.raises(ValueError):
        first.keypoints[0, 0, 0] = 1.0  # read-only


def test_joint_logits_copies_one_cached_map(image):
    model = FixedHeatmapModel([(12.3, 17.8), (31.07, 44.6), (25.9, 9.35)])
    predictor = Predictor(model)
    with pytest.raises(RuntimeError, match="predict"):
        predictor.joint_logits(0, 0)
    predictor.predict(image, [BOX, (10, 20, 60, 200)])
    one = predictor.joint_logits(1, 2)
    assert one.shape == (1, 1, 64, 48) and one.dtype == torch.float32
    torch.testing.assert_close(one, predictor.logits[1:2, 2:3])
    one.fill_(float("nan"))  # the caller's copy, not the cache
    assert torch.isfinite(predictor.logits).all()
    for person, joint in ((2, 0), (0, 3), (-1, 0)):
        with pytest.raises(IndexError, match="2 x 3"):
            predictor.joint_logits(person, joint)


@pytest.mark.parametrize(
    "num_boxes, batch_size, flip", [(0, 4, False), (1, 4, False), (10, 4, False), (10, 4, True)]
)
def test_box_counts_shapes_and_batching(image, num_boxes, batch_size, flip):
    model = FixedHeatmapModel([(12.3, 17.8), (31.07, 44.6), (25.9, 9.35)])
    predictor = Predictor(model, flip=flip, batch_size=batch_size)
    boxes = [(10.0 + 5 * i, 20.0, 110.0 + 5 * i, 220.0) for i in range(num_boxes)]
    prediction = predictor.predict(image, boxes)
    assert isinstance(prediction, Prediction) and len(prediction) == num_boxes
    assert prediction.keypoints.shape == prediction.heatmap_coords.shape == (num_boxes, 3, 2)
    assert prediction.scores.shape == (num_boxes, 3) and prediction.boxes.shape == (num_boxes, 4)
    assert prediction.keypoints.dtype == prediction.scores.dtype == np.float32
    chunks = [min(batch_size, num_boxes - s) for s in range(0, num_boxes, batch_size)]
    assert model.batch_sizes == [n for n in chunks for _ in range(2 if flip else 1)]
    assert predictor.logits.shape == (num_boxes, 3, 64, 48)
    assert predictor.redecode("integral", 2.0).keypoints.shape == (num_boxes, 3, 2)


# --- flip test -----------------------------------------------------------------------------------------


def test_flip_averages_logits_mirrored_back_without_shift_and_with_the_permutation(image):
    # The double ignores its input, so the mirrored pass returns the same bumps; mirrored back with the
    # joint swap, joint k's map is the mean of bump k and mirror(bump flip[k]). Both are on the
    # half-pixel lattice, so the debiased decoder gives their midpoint exactly. A one-pixel shift would
    # move it by 0.5 px; a missing permutation would average joint 0 with its own mirror image.
    centres = [(10.5, 20.5), (30.5, 40.5), (20.5, 10.5)]
    model = FixedHeatmapModel(centres, beta=2.0)
    prediction = Predictor(model, flip=True).predict(image, [BOX])
    width = model.heatmap_size[1]
    mirrored = [(width - 1 - x, y) for x, y in centres]  # 47 - x
    expected = [np.add(centres[k], mirrored[TRIO.flip[k]]) / 2 for k in range(3)]
    np.testing.assert_allclose(prediction.heatmap_coords[0], expected, atol=1e-4)
    np.testing.assert_allclose(expected, [(13.5, 30.5), (33.5, 30.5), (23.5, 10.5)])


def test_flip_test_leaves_a_mirror_equivariant_network_unchanged(blob_image):
    # Mirroring the crop mirrors this network's logits exactly (with joints 0 and 1 swapped), so
    # un-mirroring them must give back the plain logits: a one-pixel shift or a missing swap would not.
    model = MirrorEquivariantModel()
    plain, flipped = Predictor(model), Predictor(model, flip=True)
    plain_prediction = plain.predict(blob_image, BLOB_BOXES)
    flipped_prediction = flipped.predict(blob_image, BLOB_BOXES)
    assert plain.logits[:, :2].amax() > 0.05  # the edge joints see the blobs
    torch.testing.assert_close(flipped.logits, plain.logits, atol=1e-6, rtol=0)
    np.testing.assert_allclose(flipped_prediction.keypoints, plain_prediction.keypoints, atol=1e-3)


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_mirrored_image_gives_mirrored_keypoints(blob_image, flip, decoder):
    model = MirrorEquivariantModel()
    predictor = Predictor(model, flip=flip)
    original = predictor.predict(blob_image, BLOB_BOXES, decoder=decoder)
    width = IMAGE_HW[1]
    mirrored = predictor.predict(blob_image[:, ::-1], mirror_boxes(BLOB_BOXES, width), decoder=decoder)
    back = flip_points(mirrored.keypoints, width, TRIO.flip)
    np.testing.assert_allclose(back, original.keypoints, atol=1e-3)
    np.testing.assert_allclose(mirrored.scores[:, list(TRIO.flip)], original.scores, atol=1e-5)


# --- errors --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((48, 64), np.uint8), "RGB"),
        (np.zeros((48, 64, 1), np.uint8), "RGB"),
        (np.zeros((48, 64, 4), np.uint8), "RGB"),
        (np.zeros((48, 64, 3), np.float32), "uint8"),
        (np.zeros((0, 64, 3), np.uint8), "empty"),
        ([[[0, 0, 0]]], "numpy array"),
    ],
)
def test_bad_images_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        Predictor(FixedHeatmapModel([(1.0, 1.0)] * 3)).predict(bad, [BOX])


@pytest.mark.parametrize(
    "boxes, match",
    [
        ([1, 2, 3, 4], r"shape \(N, 4\)"),
        ([[1, 2, 3]], r"shape \(N, 4\)"),
        ([BOX, (0, 0, math.nan, 10)], "box 1 is not finite"),
        ([BOX, BOX, (10, 10, 10, 20)], "box 2 is degenerate"),
        ([(10, 30, 20, 20)], "box 0 is degenerate"),
        ([["a", 1, 2, 3]], "numbers"),
    ],
)
def test_bad_boxes_are_rejected_naming_the_box(image, boxes, match):
    with pytest.raises(ValueError, match=match):
        Predictor(FixedHeatmapModel([(1.0, 1.0)] * 3)).predict(image, boxes)


def test_bad_decoder_or_beta_and_early_redecode_are_rejected(image):
    predictor = Predictor(FixedHeatmapModel([(1.0, 1.0)] * 3))
    with pytest.raises(RuntimeError, match="call predict"):
        predictor.redecode()
    with pytest.raises(ValueError, match=r"unknown decoder 'soft'.*argmax.*debiased.*integral"):
        predictor.predict(image, [BOX], decoder="soft")
    for beta in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="beta"):
            predictor.predict(image, [BOX], beta=beta)
    with pytest.raises(ValueError, match="batch_size"):
        Predictor(FixedHeatmapModel([(1.0, 1.0)] * 3), batch_size=0)


def test_nan_logits_name_the_boxes_and_keep_the_previous_cache(image):
    model = FixedHeatmapModel([(12.3, 17.8), (31.07, 44.6), (25.9, 9.35)])
    predictor = Predictor(model)
    before = predictor.predict(image, [BOX])
    model.heatmaps[2] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf logits for boxes \[0, 1\] \(joints \['head'\]\)"):
        predictor.predict(image, [BOX, BOX])
    np.testing.assert_array_equal(predictor.redecode().keypoints, before.keypoints)
