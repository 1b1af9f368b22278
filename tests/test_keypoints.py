"""Tests for pose/keypoints.py: built-in schemas, validation, serialisation, COCO import."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pose.evaluation import torso_sizes
from pose.keypoints import (
    COCO_17,
    HAND_21,
    LSP_14,
    MPII_16,
    SCHEMAS,
    KeypointSchema,
    infer_flip,
    schema_from_coco_category,
    schema_from_coco_file,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Literal copies of the categories in ../shared/data, so these tests need no shared data.
COCO_CATEGORY = {
    "supercategory": "person",
    "id": 1,
    "name": "person",
    "keypoints": [
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
        "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
        "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ],
    "skeleton": [
        [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
        [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
    ],
}  # fmt: skip
LSP_CATEGORY = {
    "id": 1,
    "name": "person",
    "supercategory": "person",
    "keypoints": [
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
        "left_wrist", "neck", "head_top",
    ],
    "skeleton": [
        [1, 2], [2, 3], [4, 5], [5, 6], [3, 4], [7, 8], [8, 9], [10, 11], [11, 12], [9, 13],
        [10, 13], [13, 14], [3, 9], [4, 10],
    ],
}  # fmt: skip

EXPECTED = [("coco17", COCO_17, 17), ("lsp14", LSP_14, 14), ("mpii16", MPII_16, 16),
            ("hand21", HAND_21, 21)]  # fmt: skip


@pytest.mark.parametrize("key, schema, k", EXPECTED)
def test_builtin_schema_shape(key, schema, k):
    assert SCHEMAS[key] is schema
    assert schema.name == key
    assert schema.num_keypoints == len(schema.names) == len(schema.flip) == k
    assert all(schema.flip[schema.flip[i]] == i for i in range(k))
    assert sorted(schema.flip) == list(range(k))
    assert all(0 <= i < k and 0 <= j < k and i != j for i, j in schema.skeleton)


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=list(SCHEMAS))
def test_builtin_left_maps_to_right(schema):
    for i, name in enumerate(schema.names):
        if name.startswith("left_"):
            assert schema.names[schema.flip[i]] == "right_" + name[len("left_") :]
        elif name.startswith("right_"):
            assert schema.names[schema.flip[i]] == "left_" + name[len("right_") :]
        else:
            assert schema.flip[i] == i, name


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=list(SCHEMAS))
def test_builtin_flip_matches_name_inference(schema):
    assert infer_flip(schema.names) == schema.flip


@pytest.mark.parametrize("schema, n_sigmas", [(COCO_17, 17), (LSP_14, None), (MPII_16, None),
                                              (HAND_21, None)])  # fmt: skip
def test_sigmas(schema, n_sigmas):
    if n_sigmas is None:
        assert schema.sigmas is None
    else:
        assert len(schema.sigmas) == n_sigmas


def test_coco_literals():
    assert COCO_17.flip[1] == 2 and COCO_17.flip[2] == 1
    assert COCO_17.flip[0] == 0
    assert COCO_17.index("left_eye") == 1
    assert COCO_17.sigmas[0] == pytest.approx(0.026)
    assert COCO_17.sigmas[11] == pytest.approx(0.107)
    assert COCO_17.skeleton[0] == (15, 13)  # [16, 14] 1-based: left_ankle-left_knee
    assert len(COCO_17.skeleton) == 19


def test_lsp_literals():
    assert LSP_14.flip[0] == 5 and LSP_14.flip[5] == 0  # right_ankle <-> left_ankle
    assert LSP_14.flip[8] == 9  # right_shoulder <-> left_shoulder
    assert LSP_14.flip[12] == 12 and LSP_14.flip[13] == 13  # neck, head_top
    assert LSP_14.skeleton[-1] == (3, 9)


def test_mpii_and_hand_literals():
    assert MPII_16.index("pelvis") == 6 and MPII_16.index("thorax") == 7
    assert MPII_16.flip[10] == 15  # right_wrist <-> left_wrist
    assert HAND_21.names[:5] == ("wrist", "thumb_tip", "thumb_dip", "thumb_pip", "thumb_mcp")
    assert HAND_21.names[17] == "little_tip" and HAND_21.names[20] == "little_mcp"
    assert HAND_21.flip == tuple(range(21))
    assert (0, 4) in HAND_21.skeleton and (2, 1) in HAND_21.skeleton
    assert len(HAND_21.skeleton) == 20


# The published index of each torso joint: COCO's keypoint order, LSP's joints.mat rows, MPII's joint ids.
TORSO_INDICES = {
    "coco17": {"left_shoulder": 5, "right_shoulder": 6, "left_hip": 11, "right_hip": 12},
    "lsp14": {"right_hip": 2, "left_hip": 3, "right_shoulder": 8, "left_shoulder": 9},
    "mpii16": {"right_hip": 2, "left_hip": 3, "right_shoulder": 12, "left_shoulder": 13},
}


@pytest.mark.parametrize("schema", [COCO_17, LSP_14, MPII_16], ids=list(TORSO_INDICES))
def test_torso_joints_sit_at_their_published_indices_and_mirror(schema):
    indices = TORSO_INDICES[schema.name]
    assert {name: schema.index(name) for name in indices} == indices
    for side in ("shoulder", "hip"):  # a flip swaps left and right, so the diagonals swap too
        assert schema.flip[indices[f"left_{side}"]] == indices[f"right_{side}"]


@pytest.mark.parametrize("schema", [COCO_17, LSP_14, MPII_16], ids=list(TORSO_INDICES))
def test_torso_norm_is_right_shoulder_to_left_hip_else_the_other_diagonal(schema):
    at = TORSO_INDICES[schema.name]
    gt = np.full((1, schema.num_keypoints, 2), 500.0)
    gt[0, at["right_shoulder"]], gt[0, at["left_hip"]] = (0.0, 0.0), (30.0, 40.0)  # 50 px
    gt[0, at["left_shoulder"]], gt[0, at["right_hip"]] = (100.0, 0.0), (100.0, 80.0)  # 80 px
    visible = np.ones((1, schema.num_keypoints), dtype=bool)
    norm, kind = torso_sizes(gt, visible, schema)
    assert norm.tolist() == [50.0] and kind == "torso"
    visible[0, at["left_hip"]] = False
    assert torso_sizes(gt, visible, schema)[0].tolist() == [80.0]


def test_index_unknown_lists_names():
    with pytest.raises(KeyError, match="left_eye"):
        LSP_14.index("left_eye")


@pytest.mark.parametrize("schema", SCHEMAS.values(), ids=list(SCHEMAS))
def test_dict_round_trip(schema):
    d = schema.to_dict()
    restored = KeypointSchema.from_dict(json.loads(json.dumps(d)))
    assert restored == schema
    assert hash(restored) == hash(schema)


def test_from_dict_rejects_unknown_and_missing_keys():
    with pytest.raises(ValueError, match="colour"):
        KeypointSchema.from_dict(LSP_14.to_dict() | {"colour": "red"})
    d = LSP_14.to_dict()
    del d["flip"]
    with pytest.raises(ValueError, match="flip"):
        KeypointSchema.from_dict(d)


def test_lists_become_tuples_and_flip_array():
    s = KeypointSchema("t", ["a", "b"], [0, 1], [[0, 1]], [0.1, 0.2])
    assert s.names == ("a", "b") and s.skeleton == ((0, 1),) and s.sigmas == (0.1, 0.2)
    arr = COCO_17.flip_array()
    assert arr.dtype == np.int64 and arr.shape == (17,)
    np.testing.assert_array_equal(arr[arr], np.arange(17))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"flip": (0, 0, 2)}, "permutation"),
        ({"flip": (1, 2, 0)}, "involution"),
        ({"flip": (0, 1)}, "flip has 2"),
        ({"skeleton": ((0, 3),)}, "out of range"),
        ({"skeleton": ((-1, 0),)}, "out of range"),
        ({"skeleton": ((1, 1),)}, "self-loop"),
        ({"skeleton": ((0, 1), (1, 0))}, "twice"),
        ({"names": ("a", "b", "a")}, "duplicate"),
        ({"names": "abc"}, "not a str"),
        ({"sigmas": (0.1, 0.1)}, "sigmas"),
        ({"sigmas": (0.1, 0.0, 0.1)}, "> 0"),
    ],
)
def test_invalid_schema_raises(kwargs, message):
    fields = {"name": "bad", "names": ("a", "b", "c"), "flip": (0, 1, 2), "skeleton": ()}
    with pytest.raises(ValueError, match=message):
        KeypointSchema(**(fields | kwargs))


@pytest.mark.parametrize("category, expected", [(COCO_CATEGORY, COCO_17), (LSP_CATEGORY, LSP_14)])
def test_schema_from_coco_category_matches_builtin(category, expected):
    assert schema_from_coco_category(category) == expected


def test_schema_from_coco_category_custom():
    category = {"name": "animal", "keypoints": ["L_Eye", "R_Eye", "nose", "tail"],
                "skeleton": [[1, 3], [2, 3]]}  # fmt: skip
    s = schema_from_coco_category(category)
    assert s.name == "animal" and s.flip == (1, 0, 2, 3) and s.skeleton == ((0, 2), (1, 2))
    assert s.sigmas is None
    assert schema_from_coco_category(COCO_CATEGORY, name="mine").sigmas == COCO_17.sigmas
    with pytest.raises(ValueError, match="keypoints"):
        schema_from_coco_category({"name": "x"})


@pytest.mark.parametrize(
    "names, flip",
    [
        (["l_knee", "r_knee", "pelvis"], (1, 0, 2)),
        (["hip_left", "hip_right"], (1, 0)),
        (["Left Eye", "Right Eye"], (1, 0)),
        (["leftHand", "rightHand", "head"], (1, 0, 2)),
        (["LEFT_EAR", "right_ear"], (1, 0)),  # case-insensitive fallback
        (["left_only", "lip", "lshoulder", "rshoulder"], (0, 1, 2, 3)),  # no token, no pair
    ],
)
def test_infer_flip_token_rules(names, flip):
    assert infer_flip(names) == flip


def test_schema_from_coco_file_picks_category(tmp_path):
    other = {"id": 7, "name": "bird", "keypoints": ["beak", "left_wing", "right_wing"]}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"categories": [LSP_CATEGORY, other]}))
    assert schema_from_coco_file(path) == LSP_14
    assert schema_from_coco_file(path, category_id=7).flip == (0, 2, 1)
    with pytest.raises(ValueError, match="ids present"):
        schema_from_coco_file(path, category_id=3)


@pytest.mark.parametrize("subdir, expected", [("lspet", LSP_14), ("coco-mini", COCO_17)])
def test_schema_from_shared_data(subdir, expected):
    path = SHARED_DATA / subdir / "annotations.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    assert schema_from_coco_file(path) == expected


_part = st.text(alphabet="abcdefghijkmnopqstuvwxyz", min_size=2, max_size=6)


@given(
    parts=st.lists(_part, min_size=1, max_size=8, unique=True),
    unpaired=st.lists(_part.map(lambda p: "mid_" + p), max_size=3, unique=True),
    data=st.data(),
)
def test_infer_flip_pairs_shuffled_names(parts, unpaired, data):
    names = [f"left_{p}" for p in parts] + [f"right_{p}" for p in parts] + unpaired
    names = data.draw(st.permutations(names))
    flip = infer_flip(names)
    for i, name in enumerate(names):
        if name.startswith("left_"):
            assert names[flip[i]] == "right_" + name[5:]
        elif name.startswith("right_"):
            assert names[flip[i]] == "left_" + name[6:]
        else:
            assert flip[i] == i
    # The result is always a valid schema.
    KeypointSchema("random", tuple(names), flip)
