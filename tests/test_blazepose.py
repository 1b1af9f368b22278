"""BlazePose Full (assets/blazepose) through pose.Predictor and pose.decode: on a real photo, and with a
synthetic bump that checks the heatmap -> image map against MediaPipe's own convention (cell i = crop
pixel 4 i + 1.5).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.model import BLAZEPOSE_FILE
from app.photo_tab import example_photos
from pose.blazepose import COCO_TO_BLAZEPOSE, BlazePoseError, BlazePoseHeatmaps
from pose.inference import Predictor
from pose.keypoints import COCO_17

# The two people in the middle of ultralytics' bus.jpg (x1, y1, x2, y2), as the offline detector boxes them.
BUS_BOXES = np.array([[44.2, 410.5, 219.2, 916.6], [212.1, 397.3, 356.4, 862.0]])


@pytest.fixture(scope="module")
def blazepose() -> BlazePoseHeatmaps:
    return BlazePoseHeatmaps(BLAZEPOSE_FILE)


@pytest.fixture(scope="module")
def bus() -> np.ndarray:
    path = next(p for p in example_photos() if p.endswith("bus.jpg"))
    return np.asarray(Image.open(path).convert("RGB"))


def test_landmark_map_names_the_same_joints():
    # BlazePose: 0 nose, 2/5 eye centres, 7/8 ears, then left (odd) / right (even) from the shoulders.
    assert len(COCO_TO_BLAZEPOSE) == COCO_17.num_keypoints
    for k, name in enumerate(COCO_17.names):
        blaze = COCO_TO_BLAZEPOSE[k]
        if name.startswith("left_") and blaze >= 11:
            assert blaze % 2 == 1, name
        if name.startswith("right_") and blaze >= 11:
            assert blaze % 2 == 0, name


def test_missing_file_gives_a_clear_error(tmp_path):
    with pytest.raises(BlazePoseError, match="not found"):
        BlazePoseHeatmaps(tmp_path / "none.tflite")


@pytest.mark.parametrize("decoder", ["argmax", "debiased", "integral"])
def test_keypoints_on_a_real_photo_are_finite_and_on_the_person(blazepose, bus, decoder):
    predictor = Predictor(blazepose)
    prediction = predictor.predict(bus, BUS_BOXES, decoder=decoder, beta=10.0)
    assert prediction.keypoints.shape == (2, 17, 2) and np.isfinite(prediction.keypoints).all()
    heatmaps = predictor.logits
    assert float(heatmaps.min()) >= 0 and float(heatmaps.max()) <= 1  # a sigmoid, not logits
    assert float(heatmaps.median()) < 0.01  # the zero background the compensation assumes
    for person, (x1, y1, x2, y2) in zip(prediction.keypoints, BUS_BOXES, strict=True):
        if decoder == "integral":  # pulled toward the crop centre, but never out of the crop
            crop_half = 0.75 * max(x2 - x1, y2 - y1)
            centre = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
            assert (np.abs(person - centre) <= crop_half).all()
            continue
        margin = 0.05 * (y2 - y1)
        assert (person[:, 0] > x1 - margin).all() and (person[:, 0] < x2 + margin).all()
        assert (person[:, 1] > y1 - margin).all() and (person[:, 1] < y2 + margin).all()
        # Both face the camera: their own left side is on the right of the photo (shoulders and hips; the
        # second person's ankles meet, so those may share a cell).
        for left, right in ((5, 6), (11, 12)):
            assert person[left, 0] > person[right, 0], COCO_17.names[left]
        assert person[0, 1] < person[5, 1] < person[11, 1] < person[13, 1] < person[15, 1]  # head to ankle


class SyntheticBump(BlazePoseHeatmaps):
    """The adapter with its network's heatmaps replaced by one zero-background bump per joint at ``cell``."""

    def __init__(self, cell: tuple[float, float], sigma: float = 2.0) -> None:
        super().__init__(BLAZEPOSE_FILE)
        ys, xs = np.mgrid[0:64, 0:64].astype(np.float64)
        bump = np.exp(-((xs - cell[0]) ** 2 + (ys - cell[1]) ** 2) / (2 * sigma**2))
        self.bump = np.repeat(bump[None], 17, axis=0).astype(np.float32)

    def crop_heatmaps(self, crop: np.ndarray) -> np.ndarray:
        return self.bump


@pytest.mark.parametrize("point", [(60.4, 430.0), (75.3, 860.7), (210.8, 900.2)])
def test_debiased_recovers_a_synthetic_bump_through_the_adapter(bus, point):
    box = BUS_BOXES[0]
    # MediaPipe's convention, written out independently of pose.geometry: the square crop is 1.5 times the
    # longer box side around the box centre, resized to 256 px (pixel centres at integers, so the crop's
    # left edge is at -0.5); heatmap cell i is crop pixel 4 i + 1.5.
    side = 1.5 * max(box[2] - box[0], box[3] - box[1])
    left, top = (box[0] + box[2]) / 2 - side / 2, (box[1] + box[3]) / 2 - side / 2
    crop_px = (np.array(point) - [left, top]) * 256 / side - 0.5
    cell = (crop_px - 1.5) / 4
    predictor = Predictor(SyntheticBump(tuple(cell)))
    debiased = predictor.predict(bus, box[None], decoder="debiased", beta=10.0).keypoints[0]
    integral = predictor.redecode("integral", 10.0).keypoints[0]
    image_px_per_cell = side / 64
    # Exact up to float32 and the sampling of exp(beta H) (sigma 2 >= 0.7 sqrt(10)): well under a cell.
    assert np.abs(debiased - point).max() < 0.02 * image_px_per_cell
    # The bias the adapter exists to show: J_r sits well off the bump, toward the crop centre.
    assert np.linalg.norm(integral[0] - point) > 1.0 * image_px_per_cell
