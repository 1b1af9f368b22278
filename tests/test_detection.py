"""app.detection: the offline ONNX detector on ultralytics' photos, the fallback chain, YOLO wiring."""

import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from app import detection
from app.detection import SSDLITE_NAME, WHOLE_IMAGE_NAME, Detections, PersonDetector
from benchmarks import detector_recall as recall

ultralytics = pytest.importorskip("ultralytics")
PHOTOS = Path(ultralytics.__file__).parent / "assets"
MISSING_WEIGHTS = "no_such_yolo_weights_for_tests.pt"

# Hand-drawn body boxes (x1, y1, x2, y2), px, checked by eye on the photos; Zidane's pointing arm left out.
ZIDANE_PEOPLE = np.array([(150, 200, 700, 720), (720, 40, 1130, 720)], dtype=float)
BUS_PEOPLE = np.array(
    [(50, 400, 245, 905), (220, 405, 345, 860), (670, 390, 810, 880), (0, 550, 65, 875)], float
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test may reach for the network: ultralytics' online check answers False at once."""
    monkeypatch.setenv("YOLO_OFFLINE", "1")


@pytest.fixture(scope="module")
def onnx_detector():
    detector = PersonDetector(yolo_model=MISSING_WEIGHTS)
    detector.load()
    assert detector.name == SSDLITE_NAME
    return detector


def photo(name: str) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(PHOTOS / name))[:, :, ::-1])


def ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection over union of boxes ``a (N, 4)`` and ``b (M, 4)``."""
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod((hi - lo).clip(0), axis=-1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], axis=-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def assert_well_formed(found: Detections, image: np.ndarray) -> None:
    h, w = image.shape[:2]
    assert found.boxes.dtype == np.float32 and found.scores.dtype == np.float32
    assert found.boxes.shape == (len(found), 4) and found.scores.shape == (len(found),)
    assert (
        np.all(found.boxes >= 0)
        and np.all(found.boxes[:, [0, 2]] <= w)
        and np.all(found.boxes[:, [1, 3]] <= h)
    )
    assert np.all(found.boxes[:, 2:] - found.boxes[:, :2] >= 1)
    assert np.all(np.diff(found.scores) <= 0)


@pytest.mark.parametrize("scale", [1.0, 0.5])
@pytest.mark.parametrize(
    ("name", "people", "num_found"), [("zidane.jpg", ZIDANE_PEOPLE, {2}), ("bus.jpg", BUS_PEOPLE, {2, 3, 4})]
)
def test_onnx_detector_finds_the_people(onnx_detector, name, people, num_found, scale):
    image = photo(name)
    image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale != 1 else image
    found = onnx_detector(image)
    assert_well_formed(found, image)
    assert len(found) in num_found and np.all(found.scores >= onnx_detector.score_threshold)
    overlap = ious(found.boxes.astype(float) / scale, people)
    assert np.all(overlap.max(axis=1) >= 0.75), overlap  # every box is on a person...
    assert len(set(overlap.argmax(axis=1))) == len(found)  # ...and no person is found twice


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.5, 0.9, 0.8, 0.7], np.float32)  # box 1 overlaps 0 (IoU 0.82); 3 is half of 0
    np.testing.assert_array_equal(detection._nms(boxes, scores, max_iou=0.45), [1, 2, 3])
    np.testing.assert_array_equal(detection._nms(boxes[:0], scores[:0], max_iou=0.45), np.zeros(0, int))


def test_max_people_keeps_the_most_confident_and_says_so():
    detector = PersonDetector(yolo_model=MISSING_WEIGHTS, max_people=1)
    found = detector(photo("zidane.jpg"))
    assert len(found) == 1 and "kept the 1 most confident" in found.note
    assert ious(found.boxes.astype(float), ZIDANE_PEOPLE).max() >= 0.8


def test_no_person_gives_empty_detections(onnx_detector):
    sky = np.full((240, 320, 3), (120, 170, 230), np.uint8)
    found = onnx_detector(sky)
    assert len(found) == 0 and found.boxes.shape == (0, 4) and found.detector == SSDLITE_NAME


@pytest.mark.parametrize("weights", ["yolo11n.pt", MISSING_WEIGHTS])
def test_offline_without_yolo_weights_falls_back_quickly(monkeypatch, tmp_path, weights):
    from ultralytics.utils import SETTINGS

    if (Path(SETTINGS["weights_dir"]) / weights).is_file():
        pytest.skip(f"{weights} is on this machine")
    monkeypatch.chdir(tmp_path)  # ultralytics also looks in the working directory
    monkeypatch.setenv("YOLO_MODEL", weights)
    start = time.perf_counter()
    detector = PersonDetector()
    found = detector(photo("bus.jpg"))
    assert time.perf_counter() - start < 15.0
    assert found.detector == SSDLITE_NAME and len(found) >= 2
    assert f"YOLO weights {weights!r} are not on this machine and it is offline" in found.note
    assert "using the offline detector" in found.note


def test_failed_yolo_download_falls_back(monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("Download failure")

    monkeypatch.setattr("ultralytics.utils.is_online", lambda: True)
    monkeypatch.setattr("ultralytics.YOLO", refuse)
    detector = PersonDetector(yolo_model=MISSING_WEIGHTS)
    assert detector.name == SSDLITE_NAME
    assert "could not be loaded (ConnectionError: Download failure)" in detector(photo("bus.jpg")).note


@pytest.mark.parametrize("inject", [False, True])
def test_untrained_yolo_runs_and_finds_nobody(inject):
    model = ultralytics.YOLO("yolo11n.yaml") if inject else "yolo11n.yaml"
    detector = PersonDetector(yolo_model=model)
    image = photo("bus.jpg")
    found = detector(image)
    assert found.detector == "YOLO (yolo11n.yaml)" and found.note == ""
    assert_well_formed(found, image)


class FakeYolo:
    """Test double for an ultralytics YOLO: fixed boxes, records what ``predict`` was given."""

    names = {0: "bicycle", 1: "person"}
    task = "detect"
    ckpt_path = "fake.pt"

    def __init__(self, xyxy, conf):
        self.xyxy, self.conf, self.calls = torch.tensor(xyxy), torch.tensor(conf), []

    def predict(self, image, classes, conf, verbose):
        self.calls.append((image, classes, conf))
        return [SimpleNamespace(boxes=SimpleNamespace(xyxy=self.xyxy, conf=self.conf))]


def test_yolo_boxes_are_clipped_filtered_sorted_and_capped():
    raw = [(10, 10, 50, 90), (-20, 5, 30, 120), (40, 40, 40.5, 80), (60, 0, 90, 50), (0, 0, 20, 20)]
    yolo = FakeYolo(raw, [0.5, 0.9, 0.95, 0.2, 0.6])
    image = np.zeros((100, 80, 3), np.uint8)
    image[..., 0] = 255  # pure red in RGB
    found = PersonDetector(yolo_model=yolo, score_threshold=0.3, max_people=2)(image)
    assert found.detector == "YOLO (fake.pt)"
    # the sliver (0.95) and the low score (0.2) go; (-20, ..., 120) is clipped; 3 remain, capped at 2
    np.testing.assert_array_equal(found.boxes, [[0, 5, 30, 100], [0, 0, 20, 20]])
    np.testing.assert_allclose(found.scores, [0.9, 0.6])
    assert "found 3 people, kept the 2 most confident" in found.note
    sent, classes, conf = yolo.calls[0]
    assert classes == [1] and conf == 0.3  # the class named "person", and the threshold, reach YOLO
    assert sent[0, 0].tolist() == [0, 0, 255]  # as BGR, which ultralytics expects of numpy images


def test_whole_image_when_no_detector_can_run(tmp_path):
    detector = PersonDetector(yolo_model=MISSING_WEIGHTS, onnx_path=tmp_path / "missing.onnx")
    found = detector(np.zeros((50, 70, 3), np.uint8))
    assert found.detector == WHOLE_IMAGE_NAME == detector.name
    np.testing.assert_array_equal(found.boxes, [[0, 0, 70, 50]])
    np.testing.assert_array_equal(found.scores, [1.0])
    assert "missing.onnx is missing; using the whole image" in found.note


def test_nothing_loads_until_first_use(monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("loaded at construction")

    monkeypatch.setattr(detection, "_load_yolo", explode)
    PersonDetector()


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10, 3), np.uint16), "uint8"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((10, 10), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((10, 10, 4), np.uint8), r"\(H, W, 3\)"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[0, 0, 0]], "numpy array"),
    ],
)
def test_bad_images_are_refused_clearly(tmp_path, image, message):
    detector = PersonDetector(yolo_model=MISSING_WEIGHTS, onnx_path=tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match=message):
        detector(image)


# --- Small people: tiles of large photos, the mirror image of small ones (benchmarks/detector_recall.py) ---

DARKNET = recall.darknet_data()
needs_darknet = pytest.mark.skipif(
    DARKNET is None,
    reason="darknet's kite.jpg / person.jpg not unpacked (.ci/run does it: apt-get download darknet)",
)
needs_lspet = pytest.mark.skipif(
    not (recall.LSPET_DIR / "annotations.json").is_file(), reason=f"no LSPET at {recall.LSPET_DIR}"
)


@pytest.mark.parametrize(
    ("hw", "count"), [((900, 1352), 12), ((1080, 810), 12), ((720, 1280), 15), ((590, 4000), 0)]
)
def test_tiles_cover_large_photos_with_overlap_and_skip_small_ones(hw, count):
    grid = np.array(detection.tiles(hw)).reshape(-1, 4)
    assert len(grid) == count
    if count == 0:
        return
    side = round(min(hw) * detection.TILE_FRACTION)
    assert side >= detection.MIN_TILE_SIDE and np.all(grid[:, 2:] - grid[:, :2] == side)
    covered = np.zeros(hw, bool)
    for x0, y0, x1, y1 in grid:
        covered[y0:y1, x0:x1] = True
    assert covered.all() and grid[:, 2:].max(axis=0).tolist() == [hw[1], hw[0]]
    for axis in (0, 1):  # neighbouring tiles overlap by at least TILE_OVERLAP of a side
        starts = np.unique(grid[:, axis])
        assert np.all(np.diff(starts) <= side * (1 - detection.TILE_OVERLAP) + 1)


def test_recall_matching_gives_each_box_one_person():
    people = [(0, 0, 10, 20), (1, 0, 11, 20), (50, 50, 60, 70)]
    boxes = np.array([[0, 0, 10, 20], [48, 50, 60, 70], [100, 100, 110, 110]], np.float32)
    np.testing.assert_array_equal(recall.matched(people, boxes), [True, False, True])
    assert recall.false_boxes(people, boxes) == 1
    assert recall.false_boxes(people, boxes, ignore=[(90, 90, 120, 120)]) == 0


@needs_darknet
def test_the_two_children_in_kite_jpg_are_found_now_and_were_missed_before():
    image = recall.read_rgb(DARKNET / "kite.jpg")
    truth = recall.HAND_BOXES["kite.jpg"]
    found = {name: d(image) for name, d in recall.detectors().items()}
    assert recall.matched(recall.KITE_CHILDREN, found["before"].boxes).sum() == 0
    assert recall.matched(recall.KITE_CHILDREN, found["after"].boxes).all()
    assert recall.matched(truth["people"], found["after"].boxes).sum() >= 5  # of 7: small people too
    assert recall.false_boxes(truth["people"], found["after"].boxes, truth["ignore"]) == 0


@needs_darknet
def test_one_person_in_person_jpg_and_no_false_box():
    found = recall.detectors()["after"](recall.read_rgb(DARKNET / "person.jpg"))  # a dog and a horse beside
    people = recall.HAND_BOXES["person.jpg"]["people"]
    assert recall.matched(people, found.boxes).all() and recall.false_boxes(people, found.boxes) == 0


@needs_lspet
def test_more_lspet_people_are_found_than_before():
    sample = recall.lspet_sample(recall.LSPET_DIR, every=150)  # 60 photos, people ~150 px high
    runs = recall.detectors()
    found = {name: 0 for name in runs}
    for path, box in sample:
        image = recall.read_rgb(path)
        for name, detector in runs.items():
            found[name] += int(recall.matched([box], detector(image).boxes).sum())
    assert found["after"] >= found["before"] + 3, found
