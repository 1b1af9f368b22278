"""Tests for pose.geometry: crop edges to raster edges, exact round trips, warp agreement, flips."""

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pose.geometry import (
    Crop,
    apply_affine,
    box_to_crop,
    crop_matrix,
    crops_matrices,
    flip_points,
    heatmap_to_image,
    heatmap_to_input,
    image_to_heatmap,
    image_to_input,
    input_aspect,
    input_to_heatmap,
    input_to_image,
    invert_affine,
    warp_image,
)

HEATMAP_SIZES = [(64, 48), (96, 72), (16, 12)]
INPUT_FOR_HEATMAP = {(64, 48): (256, 192), (96, 72): (384, 288), (16, 12): (64, 48)}

crops = st.builds(
    Crop,
    center_xy=st.tuples(st.floats(-500, 1500), st.floats(-500, 1500)),
    size_wh=st.tuples(st.floats(1, 800), st.floats(1, 800)),
    rotation=st.floats(-180, 180),
)
points = st.tuples(st.floats(-2000, 2000), st.floats(-2000, 2000))


def test_crop_edges_map_to_input_edges():
    crop = Crop((50, 40), (20, 40))
    corners = np.array([[40, 20], [60, 60], [40, 60], [60, 20]])
    expected = np.array([[-0.5, -0.5], [191.5, 255.5], [-0.5, 255.5], [191.5, -0.5]])
    np.testing.assert_allclose(image_to_input(corners, crop, (256, 192)), expected, atol=1e-12)
    np.testing.assert_allclose(input_to_image(expected, crop, (256, 192)), corners, atol=1e-12)


@pytest.mark.parametrize("heatmap_size", HEATMAP_SIZES)
def test_crop_edges_map_to_heatmap_edges(heatmap_size):
    height, width = heatmap_size
    crop = Crop((50, 40), (20, 40))
    got = image_to_heatmap([[40, 20], [60, 60]], crop, heatmap_size)
    np.testing.assert_allclose(got, [[-0.5, -0.5], [width - 0.5, height - 0.5]], atol=1e-12)


@pytest.mark.parametrize("size", [(256, 192), (64, 48), (5, 3), (1, 1)])
@pytest.mark.parametrize("rotation", [0.0, 30.0, -90.0])
def test_crop_centre_maps_to_raster_centre(size, rotation):
    height, width = size
    crop = Crop((123.4, -5.6), (30, 70), rotation)
    got = image_to_input([123.4, -5.6], crop, size)
    np.testing.assert_allclose(got, [(width - 1) / 2, (height - 1) / 2], atol=1e-12)


def test_rotation_turns_content_counter_clockwise():
    # A point right of the crop centre ends up above the raster centre (y axis points down).
    crop = Crop((0, 0), (10, 10), rotation=90)
    np.testing.assert_allclose(image_to_input([5, 0], crop, (10, 10)), [4.5, -0.5], atol=1e-12)


@pytest.mark.parametrize("angle", [0.0, 17.0, 90.0, -45.0])
def test_rotation_sign_matches_cv2(angle):
    # With a crop the size of the raster, the map is a pure rotation about the raster centre.
    height, width = 40, 30
    centre = ((width - 1) / 2, (height - 1) / 2)
    crop = Crop(centre, (width, height), angle)
    expected = cv2.getRotationMatrix2D(centre, angle, 1.0)
    np.testing.assert_allclose(crop_matrix(crop, (height, width)), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("input_size", "heatmap_size", "x_in", "x_hm"),
    [
        ((256, 192), (64, 48), -0.5, -0.5),
        ((256, 192), (64, 48), 191.5, 47.5),
        ((256, 192), (64, 48), 0.0, -0.375),
        ((256, 192), (64, 48), 1.5, 0.0),
    ],
)
def test_input_to_heatmap_literal(input_size, heatmap_size, x_in, x_hm):
    got = input_to_heatmap([x_in, x_in * 4 / 3], input_size, heatmap_size)
    np.testing.assert_allclose(got[0], x_hm, atol=1e-12)
    np.testing.assert_allclose(heatmap_to_input(got, input_size, heatmap_size), [x_in, x_in * 4 / 3])


@settings(max_examples=200, deadline=None)
@given(crop=crops, point=points, heatmap_size=st.sampled_from(HEATMAP_SIZES))
def test_image_heatmap_round_trip(crop, point, heatmap_size):
    there = image_to_heatmap(point, crop, heatmap_size)
    back = heatmap_to_image(there, crop, heatmap_size)
    np.testing.assert_allclose(back, point, atol=1e-8)


@settings(max_examples=200, deadline=None)
@given(crop=crops, point=points, heatmap_size=st.sampled_from(HEATMAP_SIZES))
def test_image_to_heatmap_goes_through_input(crop, point, heatmap_size):
    input_size = INPUT_FOR_HEATMAP[heatmap_size]
    direct = image_to_heatmap(point, crop, heatmap_size)
    via_input = input_to_heatmap(image_to_input(point, crop, input_size), input_size, heatmap_size)
    np.testing.assert_allclose(via_input, direct, rtol=1e-9, atol=1e-7)
    back = input_to_image(heatmap_to_input(direct, input_size, heatmap_size), crop, input_size)
    np.testing.assert_allclose(back, point, atol=1e-8)


def test_points_keep_leading_dims():
    crop = Crop((10, 20), (30, 40), 12.0)
    pts = np.random.default_rng(0).uniform(0, 50, size=(3, 4, 17, 2))
    got = image_to_heatmap(pts, crop, (64, 48))
    assert got.shape == pts.shape and got.dtype == np.float64
    np.testing.assert_allclose(got[1, 2, 5], image_to_heatmap(pts[1, 2, 5], crop, (64, 48)))


def test_batched_crops_match_one_by_one():
    rng = np.random.default_rng(1)
    batch = [
        Crop(tuple(rng.uniform(0, 200, 2)), tuple(rng.uniform(10, 90, 2)), rng.uniform(-40, 40))
        for _ in range(5)
    ]
    pts = rng.uniform(0, 200, size=(5, 17, 2))
    got = image_to_heatmap(pts, batch, (64, 48))
    assert crops_matrices(batch, (64, 48)).shape == (5, 2, 3)
    for n, crop in enumerate(batch):
        np.testing.assert_allclose(got[n], image_to_heatmap(pts[n], crop, (64, 48)), atol=1e-10)
    np.testing.assert_allclose(heatmap_to_image(got, batch, (64, 48)), pts, atol=1e-9)


def test_invert_affine_is_inverse():
    m = crop_matrix(Crop((3, 4), (50, 20), 33), (64, 48))
    pts = np.array([[1.0, 2.0], [-7.0, 30.0]])
    np.testing.assert_allclose(apply_affine(apply_affine(pts, m), invert_affine(m)), pts, atol=1e-12)
    stacked = invert_affine(np.stack([m, m]))
    assert stacked.shape == (2, 2, 3)
    np.testing.assert_allclose(stacked[1], invert_affine(m))


@pytest.mark.parametrize(
    ("box", "aspect", "padding", "center", "size"),
    [
        ((10, 20, 30, 40), 0.75, 1.0, (20, 30), (20, 20 / 0.75)),  # wide box: heighten
        ((0, 0, 10, 40), 0.75, 1.0, (5, 20), (30, 40)),  # tall box: widen
        ((0, 0, 10, 40), 0.75, 1.25, (5, 20), (37.5, 50)),
        ((0, 0, 30, 40), 0.75, 2.0, (15, 20), (60, 80)),  # already the right aspect
    ],
)
def test_box_to_crop_literal(box, aspect, padding, center, size):
    crop = box_to_crop(box, aspect, padding)
    np.testing.assert_allclose(crop.center_xy, center)
    np.testing.assert_allclose(crop.size_wh, size)
    assert crop.rotation == 0.0


def test_input_aspect():
    assert input_aspect((256, 192)) == 0.75
    box_crop = box_to_crop([0, 0, 100, 100], input_aspect((256, 192)))
    assert box_crop.size_wh[0] / box_crop.size_wh[1] == pytest.approx(0.75)


@pytest.mark.parametrize(
    "box",
    [
        (10, 10, 10, 20),
        (10, 10, 20, 10),
        (20, 10, 10, 30),
        (0, 0, float("nan"), 5),
        (0, 0, float("inf"), 5),
        (0, 0, 5),
    ],
)
def test_box_to_crop_rejects_invalid_boxes(box):
    with pytest.raises(ValueError):
        box_to_crop(box, 0.75)


@pytest.mark.parametrize(("aspect", "padding"), [(0.0, 1.25), (-1.0, 1.25), (0.75, 0.0)])
def test_box_to_crop_rejects_invalid_ratios(aspect, padding):
    with pytest.raises(ValueError):
        box_to_crop((0, 0, 10, 10), aspect, padding)


@pytest.mark.parametrize("size_wh", [(0, 10), (10, -1), (float("nan"), 10)])
def test_crop_rejects_invalid_size(size_wh):
    with pytest.raises(ValueError):
        Crop((0, 0), size_wh)


def _blob_image(center_xy, shape=(120, 160), sigma=3.0):
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    r2 = (xs - center_xy[0]) ** 2 + (ys - center_xy[1]) ** 2
    return np.exp(-r2 / (2 * sigma**2))


def _centroid(image):
    ys, xs = np.mgrid[: image.shape[0], : image.shape[1]]
    total = image.sum()
    return np.array([(image * xs).sum() / total, (image * ys).sum() / total])


@pytest.mark.parametrize("rotation", [0.0, 25.0, -90.0])
@pytest.mark.parametrize(("input_size", "size_wh"), [((64, 48), (60, 80)), ((256, 192), (48, 64))])
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_warp_image_agrees_with_crop_matrix(rotation, input_size, size_wh, dtype):
    blob_xy = (71.3, 52.7)
    image = _blob_image(blob_xy)
    image = (image * 255).round().astype(dtype) if dtype == np.uint8 else image.astype(dtype)
    crop = Crop((70.0, 50.0), size_wh, rotation)
    warped = warp_image(image[..., None], crop, input_size)
    assert warped.shape == (*input_size, 1) and warped.dtype == dtype
    got = _centroid(warped[..., 0].astype(np.float64))
    np.testing.assert_allclose(got, image_to_input(blob_xy, crop, input_size), atol=0.05)


@pytest.mark.parametrize("channels", [1, 3, 5])
def test_warp_image_shape_and_border(channels):
    image = np.full((30, 40, channels), 9, dtype=np.uint8)
    crop = Crop((0, 0), (20, 20))  # centred on the corner: three quarters fall outside
    warped = warp_image(image, crop, (16, 12), border_value=3)
    assert warped.shape == (16, 12, channels)
    assert np.all(warped[0, 0] == 3) and np.all(warped[-1, -1] == 9)
    assert warp_image(image[..., 0], crop, (16, 12)).shape == (16, 12)


def test_flip_points_literal():
    pts = np.array([[[2.0, 1.0], [7.0, 3.0], [4.5, 0.0]]])
    got = flip_points(pts, width=10, flip_perm=[1, 0, 2])
    np.testing.assert_array_equal(got, [[[2.0, 3.0], [7.0, 1.0], [4.5, 0.0]]])
    np.testing.assert_array_equal(pts, [[[2.0, 1.0], [7.0, 3.0], [4.5, 0.0]]])  # input untouched


def test_flip_points_matches_flipped_raster():
    image = np.zeros((5, 8))
    image[3, 1] = 1.0
    flipped = image[:, ::-1]
    y, x = np.argwhere(flipped)[0]
    np.testing.assert_array_equal(flip_points([[1.0, 3.0]], width=8), [[x, y]])


@settings(max_examples=100, deadline=None)
@given(
    pts=st.lists(points, min_size=4, max_size=4),
    width=st.integers(1, 500),
    perm=st.sampled_from([[1, 0, 3, 2], [0, 1, 2, 3], [0, 2, 1, 3]]),
)
def test_flip_points_is_involution(pts, width, perm):
    pts = np.array(pts)
    twice = flip_points(flip_points(pts, width, perm), width, perm)
    np.testing.assert_allclose(twice, pts, atol=1e-9)
