"""pose.evaluation: literal PCK / EPE / AUC / norms, COCO AP on generated and shared files, splits, JSON."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pose.evaluation import (
    BOX_TORSO_RATIO,
    auc,
    coco_ap,
    difficulty_splits,
    endpoint_errors,
    epe,
    format_splits_table,
    head_sizes,
    joint_count_edges,
    pck,
    pck_curve,
    pck_norms,
    pck_per_joint,
    pck_swap_tolerant,
    pckh,
    pckh_table,
    rhd_auc,
    rhd_epe,
    summarize,
    torso_sizes,
    visibility_masks,
)
from pose.keypoints import COCO_17, HAND_21, LSP_14, MPII_16

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO_MINI = SHARED_DATA / "coco-mini" / "annotations.json"


def _person(rng: np.random.Generator, x0: float, y0: float, scale: float) -> np.ndarray:
    """(17, 2) points spread over a ``scale``-px person box at (x0, y0)."""
    return np.array([x0, y0]) + rng.uniform(0.1, 0.9, size=(17, 2)) * np.array([0.6, 1.0]) * scale


def _ann(ann_id: int, image_id: int, bbox: list, keypoints: np.ndarray, iscrowd: int = 0) -> dict:
    """A COCO person annotation; ``keypoints`` is (17, 3) with COCO v flags, area half the box's."""
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": iscrowd, "bbox": bbox,
            "area": 0.5 * bbox[2] * bbox[3], "num_keypoints": int((keypoints[:, 2] > 0).sum()),
            "keypoints": keypoints.reshape(-1).tolist()}  # fmt: skip


def _coco_file(tmp_path: Path, extra: bool = True) -> tuple[Path, dict]:
    """Two images, five people with COCO-17 keypoints (some v=0/v=1), plus a keypoint-less and a crowd one."""
    rng = np.random.default_rng(0)
    anns = []
    people = [(1, 10, 10, 200), (1, 250, 20, 120), (1, 400, 50, 80), (2, 30, 40, 150), (2, 300, 60, 60)]
    for ann_id, (image_id, x0, y0, s) in enumerate(people, start=1):
        v = np.full(17, 2)
        v[rng.choice(17, 3, replace=False)] = 0
        v[rng.choice(17, 2, replace=False)] = 1
        kp = np.concatenate([_person(rng, x0, y0, s) * (v[:, None] > 0), v[:, None]], axis=1)
        anns.append(_ann(ann_id, image_id, [x0, y0, 0.6 * s, s], kp))
    if extra:  # COCOeval must ignore both: no keypoints, and a crowd
        anns.append(_ann(6, 1, [500, 300, 20, 30], np.zeros((17, 3))))
        anns.append(_ann(7, 2, [0, 300, 200, 100], np.zeros((17, 3)), iscrowd=1))
    images = [{"id": i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in (1, 2)]
    category = {"id": 1, "name": "person", "keypoints": list(COCO_17.names), "skeleton": []}
    data = {"images": images, "annotations": anns, "categories": [category]}
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data))
    return path, data


def _arrays(data: dict) -> dict[str, np.ndarray]:
    anns = [a for a in data["annotations"] if not a.get("iscrowd")]
    kp = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(len(anns), -1, 3)
    visible, occluded = visibility_masks(kp[..., 2])
    return {
        "gt": kp[..., :2],
        "visible": visible,
        "occluded": occluded,
        "boxes": np.array([a["bbox"] for a in anns], dtype=np.float64),
        "image_ids": np.array([a["image_id"] for a in anns]),
    }


def _lsp_instance(torso: float = 50.0) -> np.ndarray:
    """(1, 14, 2): right_shoulder at the origin, left_hip at (0, torso), the rest nearby."""
    gt = np.tile(np.array([[10.0, 10.0]]), (1, 14, 1))
    gt[0, LSP_14.index("right_shoulder")] = [0.0, 0.0]
    gt[0, LSP_14.index("left_hip")] = [0.0, torso]
    return gt


def test_ground_truth_as_prediction_is_perfect(tmp_path):
    path, data = _coco_file(tmp_path)
    a = _arrays(data)
    gt, visible = a["gt"], a["visible"]
    result = summarize(
        gt,
        np.ones(visible.shape),
        gt,
        visible,
        a["boxes"],
        COCO_17,
        image_ids=a["image_ids"],
        annotations=path,
    )
    assert result["pck@0.2"] == 1.0 and result["epe"] == 0.0 and result["auc"] == 1.0
    assert result["ap"] == 1.0 and result["pck_norm"] == "torso" and result["n_instances"] == 6
    # Every person is scored; the keypoint-less one has no torso and is normalised by its box.
    assert result["pck_n_instances"] == 6 and result["pck_n_fallback"] == 1
    assert result["pck@0.2_torso"] == 1.0 and result["pck_fallback"] == "0.3 x box long side"
    json.dumps(result, allow_nan=False)


@pytest.mark.skipif(not COCO_MINI.exists(), reason="../shared/data/coco-mini absent")
def test_ground_truth_as_prediction_on_coco_mini():
    a = _arrays(json.loads(COCO_MINI.read_text()))
    gt, visible = a["gt"], a["visible"]
    result = summarize(
        gt,
        np.ones(visible.shape),
        gt,
        visible,
        a["boxes"],
        COCO_17,
        image_ids=a["image_ids"],
        annotations=COCO_MINI,
    )
    assert result["ap"] == pytest.approx(1.0) and result["epe"] == 0.0 and result["pck@0.2"] == 1.0
    assert a["occluded"] is not None  # COCO marks occlusion, so the split exists
    assert difficulty_splits(endpoint_errors(gt, gt), visible, np.ones(len(gt)), a["occluded"])["occlusion"]


def test_offset_of_three_pixels_literal():
    gt = _lsp_instance(torso=50.0)
    pred = gt + np.array([3.0, 0.0])  # 3 px on every joint
    visible = np.ones((1, 14), dtype=bool)
    norm, kind = torso_sizes(gt, visible, LSP_14)
    assert kind == "torso" and norm.tolist() == [50.0]
    assert epe(pred, gt, visible) == pytest.approx(3.0)
    assert pck(pred, gt, visible, norm, threshold=3 / 50 + 1e-6) == 1.0
    assert pck(pred, gt, visible, norm, threshold=3 / 50 - 1e-6) == 0.0
    assert pck_per_joint(pred, gt, visible, norm, threshold=0.1).tolist() == [1.0] * 14
    # Thresholds 0, 0.01, ..., 0.2: PCK is 0 below 0.06 and 1 from 0.06 on; trapezoid area / 0.2.
    assert auc(pred, gt, visible, norm) == pytest.approx((0.2 - 0.055) / 0.2)


def test_swap_tolerant_pck_forgives_a_left_right_swap_per_person_only():
    angles = 2 * np.pi * np.arange(14) / 14  # joints on a circle of radius 100: partners 44+ px apart
    ring = 100 * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    gt = np.stack([ring, ring + 300.0])  # torso diagonal 195 px: PCK@0.2 allows 39 px
    visible = np.ones((2, 14), dtype=bool)
    norm, _ = torso_sizes(gt, visible, LSP_14)
    flip = LSP_14.flip_array()
    pred = gt.copy()
    pred[0] = gt[0, flip]  # person 0 predicted mirror-image: every paired joint on its partner
    pred[1, 13] += 100.0  # person 1: the head top plainly wrong, which no swap explains
    paired = int((flip != np.arange(14)).sum())  # 12 of LSP's 14 joints have a partner
    assert pck(pred, gt, visible, norm) == pytest.approx((14 - paired + 13) / 28)
    assert pck_swap_tolerant(pred, gt, visible, norm, flip) == pytest.approx(27 / 28)
    # the better of the two is chosen per person: swapping person 1 as well would lose its 12 paired joints
    assert pck_swap_tolerant(gt, gt, visible, norm, flip) == 1.0
    result = summarize(pred, np.ones((2, 14)), gt, visible, np.array([[0, 0, 1, 1]] * 2), LSP_14)
    assert result["pck@0.2_lr_tolerant"] == pytest.approx(27 / 28)


def test_torso_uses_the_other_diagonal_when_one_end_is_missing():
    gt = _lsp_instance()
    gt[0, LSP_14.index("left_shoulder")] = [0.0, 0.0]
    gt[0, LSP_14.index("right_hip")] = [30.0, 40.0]
    visible = np.ones((3, 14), dtype=bool)
    gt = np.repeat(gt, 3, axis=0)
    visible[1, LSP_14.index("left_hip")] = False  # -> left_shoulder-right_hip = 50
    visible[2, [LSP_14.index("left_hip"), LSP_14.index("right_hip")]] = False  # neither -> excluded
    norm, kind = torso_sizes(gt, visible, LSP_14)
    assert kind == "torso" and norm[:2].tolist() == [50.0, 50.0] and math.isnan(norm[2])
    # The person without a diagonal is 1,000 px off: PCK scores them (box fallback), the torso-only
    # figure beside it does not.
    pred = gt.copy()
    pred[2] += 1000.0
    boxes = np.array([[0.0, 0.0, 40.0, 60.0]] * 3)
    result = summarize(pred, np.ones((3, 14)), gt, visible, boxes, LSP_14)
    assert result["pck@0.2"] == pytest.approx(27 / 39)  # 14 + 13 right, 12 wrong
    assert result["pck@0.2_torso"] == 1.0 and result["pck_n_fallback"] == 1
    assert result["pck_n_instances"] == 3 and result["auc"] < 0.7 and epe(pred, gt, visible) > 100


def test_box_fallback_norm_literal():
    # No torso diagonal labelled: the norm is 0.3 x the box's longer side (0.3 x 100 = 30 px, so 6 px
    # at 0.2); the median torso / box-long-side ratio of LSPET's training people is 0.305.
    gt = _lsp_instance()
    visible = np.ones((1, 14), dtype=bool)
    visible[0, [LSP_14.index("left_hip"), LSP_14.index("right_hip")]] = False
    boxes = np.array([[10.0, 20.0, 50.0, 100.0]])  # (x, y, w, h)
    norm, fallback, kind = pck_norms(gt, visible, LSP_14, boxes)
    assert BOX_TORSO_RATIO == 0.3 and kind == "torso"
    assert norm.tolist() == [30.0] and fallback.tolist() == [True]
    assert pck(gt + [5.99, 0.0], gt, visible, norm) == 1.0 and pck(gt + [6.01, 0.0], gt, visible, norm) == 0.0
    visible[0, LSP_14.index("left_hip")] = True  # a diagonal again: the torso wins, no fallback
    norm, fallback, _ = pck_norms(gt, visible, LSP_14, boxes)
    assert norm.tolist() == [50.0] and fallback.tolist() == [False]


@pytest.mark.parametrize("schema", [HAND_21, MPII_16])
def test_box_norm_without_torso_joints(schema):
    if schema is MPII_16:  # MPII names both diagonals' joints, so it is torso-normalised
        assert torso_sizes(np.zeros((1, 16, 2)), np.ones((1, 16), bool), schema)[1] == "torso"
        return
    gt = np.zeros((2, 21, 2))
    boxes = np.array([[0, 0, 40, 100], [5, 5, 0, 0]], dtype=np.float64)
    norm, kind = torso_sizes(gt, np.ones((2, 21), bool), schema, boxes)
    assert kind == "box" and norm[0] == 100.0 and math.isnan(norm[1])
    with pytest.raises(ValueError, match="boxes"):
        torso_sizes(gt, np.ones((2, 21), bool), schema)


def test_auc_monotone_in_error_and_curve_monotone():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 100, size=(20, 17, 2))
    visible = rng.random((20, 17)) > 0.2
    norm = np.full(20, 40.0)
    direction = rng.normal(size=gt.shape)
    values = [auc(gt + s * direction, gt, visible, norm) for s in (0.0, 0.5, 1.0, 2.0, 4.0)]
    assert values[0] == 1.0 and all(a > b for a, b in zip(values, values[1:], strict=False))
    curve = pck_curve(gt + direction, gt, visible, norm)
    assert np.all(np.diff(curve) >= 0)


def test_ap_decreases_with_perturbation_and_none_without_sigmas(tmp_path):
    path, data = _coco_file(tmp_path, extra=False)
    a = _arrays(data)
    rng = np.random.default_rng(2)
    noise = rng.normal(size=a["gt"].shape)
    aps = [
        coco_ap(a["gt"] + s * noise, np.ones(a["visible"].shape), a["image_ids"], path, COCO_17)["AP"]
        for s in (0.0, 3.0, 10.0)
    ]
    assert aps[0] == 1.0 and aps[0] > aps[1] > aps[2]
    assert coco_ap(np.zeros((1, 21, 2)), np.ones((1, 21)), np.array([1]), path, HAND_21) is None
    result = summarize(
        a["gt"][:, :14],
        np.ones((5, 14)),
        a["gt"][:, :14],
        a["visible"][:, :14],
        a["boxes"],
        LSP_14,
        image_ids=a["image_ids"],
        annotations=path,
    )
    assert result["ap"] is None and result["coco"] is None


def test_joint_count_edges_match_the_paper():
    assert joint_count_edges(17) == (5, 10)
    assert joint_count_edges(14) == (4, 8) and joint_count_edges(21) == (6, 12)


def test_splits_literal_bins_and_partition():
    # Six instances of K=17; instance i has a constant error of i px on each labelled joint.
    counts = [0, 5, 6, 10, 11, 17]
    visible = np.array([[j < c for j in range(17)] for c in counts])
    errors = np.arange(6, dtype=np.float64)[:, None] * np.ones((6, 17))
    sizes = np.array([30.0, 40.0, 60.0, 70.0, 90.0, 100.0])
    splits = difficulty_splits(errors, visible, sizes, occluded=None, size_edges=(50.0, 80.0))
    assert splits["occlusion"] is None
    joints = splits["num_joints"]["bins"]
    assert [b["n"] for b in joints] == [2, 2, 2] and [b["label"] for b in joints] == ["0-5", "6-10", "11-17"]
    assert joints[0]["epe"] == 1.0  # only instance 1 has labelled joints in the first bin
    assert joints[1]["epe"] == pytest.approx((2 * 6 + 3 * 10) / 16)
    assert [b["n"] for b in splits["box_size"]["bins"]] == [2, 2, 2]
    # Terciles by default; counts always add up to N.
    default = difficulty_splits(errors, visible, sizes)
    assert sum(b["n"] for b in default["box_size"]["bins"]) == 6
    occluded = np.zeros((6, 17), bool)
    occluded[3, :1] = True  # 1/10 -> middle bin
    occluded[5, :9] = True  # 9/17 > 50%
    occ = difficulty_splits(errors, visible, sizes, occluded)["occlusion"]
    assert [b["n"] for b in occ["bins"]] == [3, 1, 1] and occ["n_excluded"] == 1
    assert occ["bins"][2]["epe"] == 5.0
    table = format_splits_table(difficulty_splits(errors, visible, sizes, occluded))
    for label in ["0-5", "6-10", "11-17", "< 10%", "10-50%", "> 50%", "px"]:
        assert label in table
    assert "n/a" in format_splits_table(splits)
    json.dumps(splits, allow_nan=False)


def test_undefined_values_are_none_and_json_clean():
    gt = np.zeros((2, 21, 2))
    visible = np.zeros((2, 21), bool)
    result = summarize(gt, np.zeros((2, 21)), gt, visible, np.ones((2, 4)), HAND_21)
    assert result["pck@0.2"] is None and result["epe"] is None and result["auc"] is None
    assert result["ap"] is None and result["pck_norm"] == "box"
    json.dumps(result, allow_nan=False)


def test_shape_errors_are_named():
    with pytest.raises(ValueError, match=r"\(N, K, 2\)"):
        epe(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(2, bool))
    with pytest.raises(ValueError, match="visible"):
        epe(np.zeros((2, 3, 2)), np.zeros((2, 3, 2)), np.ones((3, 2), bool))


def _mpii_instance(head: float = 10.0) -> np.ndarray:
    """(1, 16, 2): upper_neck at the origin, head_top ``head`` px above it, the rest spread out."""
    gt = np.arange(32, dtype=np.float64).reshape(1, 16, 2) * 7.0
    gt[0, MPII_16.index("upper_neck")] = [0.0, 0.0]
    gt[0, MPII_16.index("head_top")] = [0.0, -head]
    return gt


@pytest.mark.parametrize(("error", "correct"), [(4.999, 1.0), (5.0, 1.0), (5.001, 0.0)])
def test_pckh_threshold_is_half_the_head_segment(error, correct):
    gt = _mpii_instance(head=10.0)
    visible = np.ones((1, 16), bool)
    size = head_sizes(gt, visible, MPII_16)
    assert size.tolist() == [10.0]
    pred = gt + np.array([0.6, 0.8]) * error  # a diagonal error of exactly ``error`` px
    assert pckh(pred, gt, visible, size, MPII_16) == correct
    table = pckh_table(pred, gt, visible, size, MPII_16)
    assert list(table) == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean"]
    assert set(table.values()) == {correct}


def test_pckh_mean_table_and_head_box_literal():
    gt = _mpii_instance(head=10.0)
    visible = np.ones((1, 16), bool)
    size = head_sizes(gt, visible, MPII_16)
    pred = gt.copy()
    pred[0, [MPII_16.index("pelvis"), MPII_16.index("thorax")]] += 100.0  # left out of the MPII mean
    pred[0, MPII_16.index("left_wrist")] += 6.0
    assert pckh(pred, gt, visible, size, MPII_16) == pytest.approx(13 / 14)
    table = pckh_table(pred, gt, visible, size, MPII_16)
    assert table["Wrist"] == 0.5 and table["Head"] == 1.0 and table["Mean"] == pytest.approx(13 / 14)
    # The official norm: 0.6 x the head box diagonal (a 30 x 40 box: 0.6 x 50 = 30 px).
    assert head_sizes(gt, visible, MPII_16, np.array([[5.0, 5.0, 35.0, 45.0]])).tolist() == [30.0]
    visible[0, MPII_16.index("upper_neck")] = False  # no head segment: left out
    assert math.isnan(head_sizes(gt, visible, MPII_16)[0])


def test_rhd_auc_and_epe_literal():
    gt = np.zeros((2, 21, 2))
    visible = np.ones((2, 21), bool)
    pred = gt + np.array([3.0, 0.0])  # 3 px on every keypoint
    # Thresholds 30 i / 19: PCK is 0 up to 30/19 px, 1 from 60/19 on; trapezoid area / 30.
    assert rhd_auc(pred, gt, visible) == pytest.approx((30 - 45 / 19) / 30)
    assert rhd_auc(gt, gt, visible) == 1.0
    # Per-keypoint means, then the mean over keypoints (not over all joints pooled).
    visible = np.zeros((2, 21), bool)
    visible[:, 0], visible[0, 1] = True, True
    pred = gt.copy()
    pred[0, 0, 0], pred[1, 0, 0], pred[0, 1, 0] = 1.0, 3.0, 10.0
    assert rhd_epe(pred, gt, visible) == (6.0, 6.0) and epe(pred, gt, visible) == pytest.approx(14 / 3)
    assert all(math.isnan(v) for v in rhd_epe(pred, gt, np.zeros((2, 21), bool)))


def test_summarize_adds_benchmark_keys_only_for_their_schema(tmp_path):
    gt = np.repeat(_mpii_instance(), 2, axis=0)
    visible = np.ones((2, 16), bool)
    mpii = summarize(gt, np.ones((2, 16)), gt, visible, np.ones((2, 4)), MPII_16)
    assert mpii["pckh@0.5"] == 1.0 and mpii["pckh_n_instances"] == 2 and "auc_0_30" not in mpii
    hand = summarize(np.zeros((1, 21, 2)), np.ones((1, 21)), np.zeros((1, 21, 2)), np.ones((1, 21), bool),
                     np.full((1, 4), 50.0), HAND_21)  # fmt: skip
    assert hand["auc_0_30"] == 1.0 and hand["rhd_epe_mean"] == 0.0 and "pckh@0.5" not in hand
    path, data = _coco_file(tmp_path)
    a = _arrays(data)
    coco = summarize(a["gt"], np.ones(a["visible"].shape), a["gt"], a["visible"], a["boxes"], COCO_17)
    assert not {"pckh@0.5", "auc_0_30", "rhd_epe_mean"} & set(coco)
    undefined = summarize(gt, np.ones((2, 16)), gt, np.zeros((2, 16), bool), np.ones((2, 4)), MPII_16)
    assert undefined["pckh@0.5"] is None and undefined["pckh_n_instances"] == 0
    json.dumps(undefined, allow_nan=False)
