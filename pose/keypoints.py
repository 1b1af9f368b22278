"""Keypoint schemas as plain data: joint names, left/right flip permutation, skeleton, OKS sigmas.

Built-ins: COCO_17, LSP_14, MPII_16, HAND_21 (in ``SCHEMAS``); others come from a COCO category.
"""

from __future__ import annotations

import json
import operator
import re
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import numpy as np

__all__ = [
    "COCO_17",
    "HAND_21",
    "LSP_14",
    "MPII_16",
    "SCHEMAS",
    "KeypointSchema",
    "infer_flip",
    "schema_from_coco_category",
    "schema_from_coco_file",
]


@dataclass(frozen=True)
class KeypointSchema:
    """An ordered set of K keypoints and what is known about them.

    Sequences given as lists are stored as tuples, so schemas are hashable and compare by value.

    Attributes:
        name: Short identifier, e.g. ``"coco17"``.
        names: K unique joint names; "left"/"right" are the person's own sides.
        flip: K indices; ``flip[i]`` is the joint that joint i becomes in a horizontally mirrored
            image. An involution (``flip[flip[i]] == i``); ``flip[i] == i`` for unpaired joints.
        skeleton: Undirected 0-based edges ``(i, j)`` with ``i != j``, used for drawing.
        sigmas: K per-keypoint OKS sigmas where published (COCO-17), else None.

    Raises:
        ValueError: If lengths disagree, names repeat, ``flip`` is not an involutive
            permutation, an edge is out of range / a self-loop / repeated, or a sigma is not > 0.
    """

    name: str
    names: tuple[str, ...]
    flip: tuple[int, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    sigmas: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        # Frozen: normalise through object.__setattr__ so lists from JSON/YAML become tuples.
        if isinstance(self.names, str):  # a lone string would silently become one-letter joints
            raise ValueError(f"schema {self.name!r}: names must be a sequence of str, not a str")
        try:
            names = tuple(str(n) for n in self.names)
            flip = tuple(operator.index(i) for i in self.flip)
            skeleton = tuple((operator.index(i), operator.index(j)) for i, j in self.skeleton)
            sigmas = None if self.sigmas is None else tuple(float(s) for s in self.sigmas)
        except (TypeError, ValueError) as err:
            raise ValueError(f"schema {self.name!r}: malformed field ({err})") from err
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "flip", flip)
        object.__setattr__(self, "skeleton", skeleton)
        object.__setattr__(self, "sigmas", sigmas)
        self._validate()

    def _validate(self) -> None:
        k, where = len(self.names), f"schema {self.name!r}"
        if k == 0:
            raise ValueError(f"{where}: needs at least one keypoint")
        duplicates = sorted({n for n in self.names if self.names.count(n) > 1})
        if duplicates:
            raise ValueError(f"{where}: duplicate keypoint names {duplicates}")
        if len(self.flip) != k:
            raise ValueError(f"{where}: flip has {len(self.flip)} entries for {k} keypoints")
        if sorted(self.flip) != list(range(k)):
            raise ValueError(f"{where}: flip {list(self.flip)} is not a permutation of 0..{k - 1}")
        for i, j in enumerate(self.flip):
            if self.flip[j] != i:
                raise ValueError(
                    f"{where}: flip is not an involution: {self.names[i]!r} -> {self.names[j]!r}"
                    f" but {self.names[j]!r} -> {self.names[self.flip[j]]!r}"
                )
        seen: set[frozenset[int]] = set()
        for i, j in self.skeleton:
            if not (0 <= i < k and 0 <= j < k):
                raise ValueError(f"{where}: edge ({i}, {j}) out of range for {k} keypoints")
            if i == j:
                raise ValueError(f"{where}: edge ({i}, {j}) is a self-loop")
            if frozenset((i, j)) in seen:
                raise ValueError(f"{where}: edge ({i}, {j}) appears twice")
            seen.add(frozenset((i, j)))
        if self.sigmas is not None:
            if len(self.sigmas) != k:
                raise ValueError(f"{where}: {len(self.sigmas)} sigmas for {k} keypoints")
            if not all(s > 0 for s in self.sigmas):  # also rejects NaN
                raise ValueError(f"{where}: sigmas must be > 0, got {list(self.sigmas)}")

    @property
    def num_keypoints(self) -> int:
        """K, the number of keypoints."""
        return len(self.names)

    def index(self, name: str) -> int:
        """Position of the joint called ``name``.

        Raises:
            KeyError: If there is no such joint; the message lists the valid names.
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(
                f"schema {self.name!r} has no keypoint {name!r}; valid names: {list(self.names)}"
            ) from None

    def flip_array(self) -> np.ndarray:
        """The flip permutation as a fresh ``(K,)`` int64 array (index with it to mirror joints)."""
        return np.asarray(self.flip, dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (lists, str, float, None); ``from_dict`` inverts it."""
        return {
            "name": self.name,
            "names": list(self.names),
            "flip": list(self.flip),
            "skeleton": [list(edge) for edge in self.skeleton],
            "sigmas": None if self.sigmas is None else list(self.sigmas),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KeypointSchema:
        """Rebuild a schema written by ``to_dict``; ``skeleton`` and ``sigmas`` may be omitted.

        Raises:
            ValueError: On unknown or missing keys, or if the schema does not validate.
        """
        required, optional = {"name", "names", "flip"}, {"skeleton", "sigmas"}
        unknown = sorted(set(d) - required - optional)
        if unknown:
            raise ValueError(f"unknown keypoint schema keys {unknown}")
        missing = sorted(required - set(d))
        if missing:
            raise ValueError(f"keypoint schema dict lacks keys {missing}")
        return cls(
            name=str(d["name"]),
            names=d["names"],
            flip=d["flip"],
            skeleton=d.get("skeleton", ()),
            sigmas=d.get("sigmas"),
        )


# Tokens split on separators and on lower->Upper camelCase boundaries; the separators are kept
# (capturing group) so a swapped name can be reassembled exactly.
_TOKEN_SPLIT = re.compile(r"([_\-\s.]+|(?<=[a-z0-9])(?=[A-Z]))")
_SIDE_SWAP = {"left": "right", "right": "left", "l": "r", "r": "l"}


def _mirror_name(name: str) -> str:
    """``name`` with every side token swapped (``left``<->``right``, ``l``<->``r``), case kept."""
    parts = _TOKEN_SPLIT.split(name)
    for n, part in enumerate(parts):
        other = _SIDE_SWAP.get(part.lower())
        if other is None:
            continue
        if part.isupper():
            other = other.upper()
        elif part[0].isupper():
            other = other.capitalize()
        parts[n] = other
    return "".join(parts)


def infer_flip(names: tuple[str, ...] | list[str]) -> tuple[int, ...]:
    """Infer the left/right flip permutation from joint names.

    A name is split into tokens at ``_``, ``-``, ``.``, whitespace and lower->Upper camelCase
    boundaries. Tokens ``left``/``right`` and ``l``/``r`` (any case) are side tokens; the mirror
    of a name swaps each of them, so ``left_shoulder``<->``right_shoulder``, ``l_knee``<->
    ``r_knee``, ``hip_left``<->``hip_right``, ``Left Eye``<->``Right Eye``, ``leftHand``<->
    ``rightHand``. The counterpart is matched exactly, else case-insensitively if that is
    unambiguous. Glued prefixes (``lshoulder``) are not recognised: ``l`` there is not a token.
    Joints without a side token, or whose mirror is absent, map to themselves.

    Args:
        names: K joint names.

    Returns:
        K indices, an involution.
    """
    names = list(names)
    exact = {n: i for i, n in enumerate(names)}
    lowered: dict[str, list[int]] = {}
    for i, n in enumerate(names):
        lowered.setdefault(n.lower(), []).append(i)
    flip = list(range(len(names)))
    for i, n in enumerate(names):
        mirror = _mirror_name(n)
        if mirror == n:
            continue
        if mirror in exact:
            flip[i] = exact[mirror]
        elif len(lowered.get(mirror.lower(), [])) == 1:
            flip[i] = lowered[mirror.lower()][0]
    return tuple(flip)


def schema_from_coco_category(category: dict[str, Any], name: str | None = None) -> KeypointSchema:
    """Build a schema from a COCO keypoint category.

    Uses the category's ``keypoints`` (names) and 1-based ``skeleton`` (optional); the flip is
    inferred from names (see ``infer_flip``). Sigmas are COCO's when the names equal COCO_17's
    in order, else None. With ``name=None``, a category identical to a built-in schema takes
    that schema's name (so COCO's category gives ``COCO_17`` exactly), otherwise the
    category's ``name`` (default ``"custom"``).

    Args:
        category: One entry of a COCO file's ``categories``.
        name: Schema name; None to choose as above.

    Raises:
        ValueError: If ``keypoints`` is missing or the result does not validate.
    """
    if "keypoints" not in category:
        raise ValueError(f"COCO category {category.get('name')!r} has no 'keypoints' list")
    names = tuple(str(n) for n in category["keypoints"])
    skeleton = tuple((int(i) - 1, int(j) - 1) for i, j in category.get("skeleton") or ())
    sigmas = COCO_17.sigmas if names == COCO_17.names else None
    schema = KeypointSchema(
        name=name if name is not None else str(category.get("name", "custom")),
        names=names,
        flip=infer_flip(names),
        skeleton=skeleton,
        sigmas=sigmas,
    )
    if name is None:
        for builtin in SCHEMAS.values():
            if replace(schema, name=builtin.name) == builtin:
                return builtin
    return schema


def schema_from_coco_file(
    path: str | PathLike[str], category_id: int | None = None, name: str | None = None
) -> KeypointSchema:
    """Read a COCO keypoint JSON file and build the schema of one of its categories.

    Args:
        path: COCO-format annotation file.
        category_id: The ``id`` of the category to use; None for ``categories[0]``.
        name: Passed to ``schema_from_coco_category``.

    Raises:
        ValueError: If the file has no categories or none with ``category_id``.
    """
    with open(path, encoding="utf-8") as f:
        categories = json.load(f).get("categories") or []
    if not categories:
        raise ValueError(f"{path}: no 'categories' in COCO file")
    if category_id is None:
        return schema_from_coco_category(categories[0], name=name)
    for category in categories:
        if category.get("id") == category_id:
            return schema_from_coco_category(category, name=name)
    ids = [c.get("id") for c in categories]
    raise ValueError(f"{path}: no category with id {category_id}; ids present: {ids}")


def _edges_from_one_based(edges: list[list[int]]) -> tuple[tuple[int, int], ...]:
    return tuple((i - 1, j - 1) for i, j in edges)


_COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
# The official person category's skeleton, 1-based and in its order.
_COCO_SKELETON_1B = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
    [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]  # fmt: skip
# cocoapi's COCOeval.kpt_oks_sigmas, times 10.
_COCO_SIGMAS_X10 = (
    0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
    1.07, 1.07, 0.87, 0.87, 0.89, 0.89,
)  # fmt: skip

COCO_17 = KeypointSchema(
    name="coco17",
    names=_COCO_NAMES,
    flip=(0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15),
    skeleton=_edges_from_one_based(_COCO_SKELETON_1B),
    sigmas=tuple(s / 10.0 for s in _COCO_SIGMAS_X10),
)

_LSP_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist", "neck", "head_top",
)  # fmt: skip
# As in ../shared/data/lspet/annotations.json: 1-based and in its order.
_LSP_SKELETON_1B = [
    [1, 2], [2, 3], [4, 5], [5, 6], [3, 4], [7, 8], [8, 9], [10, 11], [11, 12],
    [9, 13], [10, 13], [13, 14], [3, 9], [4, 10],
]  # fmt: skip

LSP_14 = KeypointSchema(
    name="lsp14",
    names=_LSP_NAMES,
    flip=(5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 6, 12, 13),
    skeleton=_edges_from_one_based(_LSP_SKELETON_1B),
)

_MPII_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)  # fmt: skip
# Legs -> pelvis -> thorax -> neck -> head; arms hang from the thorax (the usual MPII drawing).
_MPII_SKELETON = (
    (0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9),
    (10, 11), (11, 12), (12, 7), (7, 13), (13, 14), (14, 15),
)  # fmt: skip

MPII_16 = KeypointSchema(
    name="mpii16",
    names=_MPII_NAMES,
    flip=(5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10),
    skeleton=_MPII_SKELETON,
)

_FINGERS = ("thumb", "index", "middle", "ring", "little")
_FINGER_JOINTS = ("tip", "dip", "pip", "mcp")  # RHD order within a finger: tip first, base last

HAND_21 = KeypointSchema(
    name="hand21",
    # RHD (Zimmermann & Brox 2017) order: 0 wrist, then per finger tip -> dip -> pip -> mcp
    # (1 thumb_tip .. 4 thumb_mcp, 5 index_tip .. 8 index_mcp, ..., 17 little_tip .. 20
    # little_mcp). For the thumb, "dip/pip/mcp" are RHD's uniform labels for IP/MCP/CMC.
    names=("wrist",) + tuple(f"{f}_{j}" for f in _FINGERS for j in _FINGER_JOINTS),
    flip=tuple(range(21)),  # one hand: mirroring changes handedness, not joint identity
    skeleton=tuple(
        edge
        for base in range(1, 21, 4)  # base = tip index of each finger; base + 3 is its mcp
        for edge in ((0, base + 3), (base + 3, base + 2), (base + 2, base + 1), (base + 1, base))
    ),
)

SCHEMAS: dict[str, KeypointSchema] = {
    "coco17": COCO_17,
    "lsp14": LSP_14,
    "mpii16": MPII_16,
    "hand21": HAND_21,
}
