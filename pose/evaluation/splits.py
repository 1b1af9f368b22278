"""The paper's difficulty splits (Table 1, Fig. 3): EPE by box size, number of labelled joints, occlusion.

Each factor has three bins ordered by value (small -> large box, few -> many joints, little -> much
occlusion). A bin's EPE pools the visible joints of its instances, like the overall ``epe``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["OCCLUSION_EDGES", "difficulty_splits", "format_splits_table", "joint_count_edges"]

# Paper Table 1: "< 10%", "[10%, 50%]", "> 50%" of the labelled joints occluded.
OCCLUSION_EDGES = (0.1, 0.5)


def joint_count_edges(num_keypoints: int) -> tuple[int, int]:
    """Upper ends ``(a, b)`` of the first two joint-count bins ``[0, a]``, ``[a+1, b]``, ``[b+1, K]``.

    ``a = round(5K/17)``, ``b = round(10K/17)`` (half up): the paper's ``[0, 5]``, ``[6, 10]``, ``[11, 17]``
    for COCO-17, scaled to other K (LSP-14: 4, 8; MPII-16: 5, 9; hand-21: 6, 12).
    """
    return int(np.floor(5 * num_keypoints / 17 + 0.5)), int(np.floor(10 * num_keypoints / 17 + 0.5))


def _split(bins, ranges, labels, errors, visible, excluded) -> dict[str, Any]:
    out = []
    for b, (rng, label) in enumerate(zip(ranges, labels, strict=True)):
        members = (bins == b) & ~excluded
        joints = visible & members[:, None]
        out.append(
            {
                "label": label,
                "range": [float(rng[0]), float(rng[1])],
                "n": int(members.sum()),
                "n_joints": int(joints.sum()),
                "epe": float(errors[joints].mean()) if joints.any() else None,
            }
        )
    return {"bins": out, "n_excluded": int(excluded.sum())}


def difficulty_splits(
    errors: np.ndarray,
    visible: np.ndarray,
    box_sizes: np.ndarray,
    occluded: np.ndarray | None = None,
    size_edges: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """EPE of three bins for each difficulty factor.

    - ``box_size``: ``box_sizes`` (use ``sqrt(area)``, px) split at ``size_edges``; by default at the
      terciles of the evaluated set, since absolute sizes differ across data sets (COCO people span
      32-500 px, LSPET's are about 150). Bins are ``[lo, e1)``, ``[e1, e2)``, ``[e2, hi]``.
    - ``num_joints``: labelled joints per instance, bins from ``joint_count_edges(K)``.
    - ``occlusion``: share of an instance's labelled joints that are occluded (COCO ``v == 1``), bins
      ``< 10%``, ``10-50%``, ``> 50%``. Instances without labelled joints are excluded (``n_excluded``).
      None when ``occluded`` is None or marks no labelled joint: the data does not record occlusion.

    The first two split all N instances (their ``n`` sum to N).

    Args:
        errors: ``(N, K)`` end-point errors in px (``endpoint_errors``).
        visible: ``(N, K)`` bool, labelled joints (COCO ``v > 0``).
        box_sizes: ``(N,)`` instance sizes in px.
        occluded: ``(N, K)`` bool, labelled but occluded joints (COCO ``v == 1``), or None.
        size_edges: Two increasing box-size edges in px, or None for terciles.

    Returns:
        ``{"box_size", "num_joints", "occlusion"}``, each None or ``{"bins": [...], "n_excluded": int}``;
        a bin is ``{"label", "range": [lo, hi], "n", "n_joints", "epe"}`` (``epe`` None when empty).
    """
    errors, visible = np.asarray(errors, dtype=np.float64), np.asarray(visible, dtype=bool)
    sizes = np.asarray(box_sizes, dtype=np.float64).reshape(-1)
    n, k = visible.shape
    if errors.shape != (n, k) or sizes.shape != (n,):
        raise ValueError(
            f"need errors (N, K), visible (N, K), box_sizes (N,); got {errors.shape}, "
            f"{visible.shape}, {sizes.shape}"
        )
    return {
        "box_size": _box_size_split(errors, visible, sizes, size_edges),
        "num_joints": _joint_count_split(errors, visible),
        "occlusion": _occlusion_split(errors, visible, occluded),
    }


def _box_size_split(
    errors: np.ndarray, visible: np.ndarray, sizes: np.ndarray, size_edges: tuple[float, float] | None
) -> dict[str, Any]:
    """``difficulty_splits``' box-size bins: at ``size_edges``, or the terciles of ``sizes``."""
    n = len(sizes)
    if size_edges is None:
        size_edges = tuple(np.quantile(sizes, [1 / 3, 2 / 3])) if n else (0.0, 0.0)
    e1, e2 = (float(e) for e in size_edges)
    lo, hi = (float(sizes.min()), float(sizes.max())) if n else (0.0, 0.0)
    return _split(
        np.searchsorted([e1, e2], sizes, side="right"),
        [(lo, e1), (e1, e2), (e2, hi)],
        [f"< {e1:.0f} px", f"{e1:.0f}-{e2:.0f} px", f">= {e2:.0f} px"],
        errors,
        visible,
        np.zeros(n, dtype=bool),
    )


def _joint_count_split(errors: np.ndarray, visible: np.ndarray) -> dict[str, Any]:
    """``difficulty_splits``' bins by labelled joints per instance (``joint_count_edges``)."""
    n, k = visible.shape
    a, b = joint_count_edges(k)
    return _split(
        np.searchsorted([a, b], visible.sum(1), side="left"),
        [(0, a), (a + 1, b), (b + 1, k)],
        [f"{0}-{a}", f"{a + 1}-{b}", f"{b + 1}-{k}"],
        errors,
        visible,
        np.zeros(n, dtype=bool),
    )


def _occlusion_split(errors: np.ndarray, visible: np.ndarray, occluded: np.ndarray | None) -> dict | None:
    """``difficulty_splits``' bins by occluded share; None where the data records no occlusion."""
    if occluded is None:
        return None
    occluded = np.asarray(occluded, dtype=bool)
    if occluded.shape != visible.shape:
        raise ValueError(f"occluded must be (N, K) = {visible.shape}, got {occluded.shape}")
    occluded = occluded & visible
    if not occluded.any():
        return None
    counts = visible.sum(1)
    share = occluded.sum(1) / np.maximum(counts, 1)
    # <10% | [10%, 50%] | >50%: the middle bin is closed at both ends, as in the paper.
    bins = np.where(share < OCCLUSION_EDGES[0], 0, np.where(share <= OCCLUSION_EDGES[1], 1, 2))
    return _split(
        bins,
        [(0.0, OCCLUSION_EDGES[0]), OCCLUSION_EDGES, (OCCLUSION_EDGES[1], 1.0)],
        ["< 10%", "10-50%", "> 50%"],
        errors,
        visible,
        counts == 0,
    )


_TITLES = {"box_size": "box size", "num_joints": "labelled joints", "occlusion": "occlusion"}


def format_splits_table(splits: dict[str, Any]) -> str:
    """An aligned text table of ``difficulty_splits``' result: factor, bin, instances, joints, EPE."""
    rows = [("split", "bin", "n", "joints", "EPE (px)")]
    for key, split in splits.items():
        title = _TITLES.get(key, key)
        if split is None:
            rows.append((title, "n/a (data marks no occlusion)" if key == "occlusion" else "n/a", "", "", ""))
            continue
        for i, b in enumerate(split["bins"]):
            epe = "-" if b["epe"] is None else f"{b['epe']:.2f}"
            rows.append((title if i == 0 else "", b["label"], str(b["n"]), str(b["n_joints"]), epe))
        if split.get("n_excluded"):
            rows.append(("", "(no labelled joints)", str(split["n_excluded"]), "0", "-"))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    lines = [
        "  ".join(
            cell.ljust(w) if c < 2 else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in rows
    ]
    return "\n".join(line.rstrip() for line in lines)
