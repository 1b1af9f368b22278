"""One visitor's photo: people found (and boxes the visitor adds or removes by hand), the network run once
on the boxes shown, its logits cached in the session's Predictor, and cheap re-decoding at any beta with the
three decoders (argmax, integral J_r, debiased J_o).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from app.detection import Detections, PersonDetector
from app.images import Photo
from app.model import LoadedModel
from pose.decode import partition, softmax
from pose.evaluation.heatmaps import background_levels, background_weight_shares
from pose.inference import Prediction, Predictor

DECODER_NAMES = ("integral", "debiased", "argmax")
TABLE_COLUMNS = ["joint", "J_r x", "J_r y", "J_o x", "J_o y", "shift (px)", "score"]
MIN_HAND_BOX_SIDE = 8.0  # px of the analysed photo; a smaller box holds no person the model can see
MAX_BOXES = 20  # the network runs on every box again after each edit: bound the work a visitor can ask
# The flip test (maps averaged with the mirrored crop's) adds 0.009 PCK@0.2 to the bundled model on the
# LSPET hold-out (0.751 -> 0.760, EPE 9.26 -> 8.89 px) for a second network pass: the network then takes
# about 0.33 s of the 0.46-0.49 s a 2-person photo takes on 2 CPU cores (benchmarks.app_photo).
FLIP_TEST = True


class BoxError(ValueError):
    """A hand-drawn box that cannot be used; the message is written for the app's visitors."""


@dataclass
class PhotoSession:
    """What one browser session keeps between events (held in a ``gr.State``).

    The Predictor is the session's own (its logits cache must not be shared between visitors) and the only
    holder of the logits (the heatmap view reads one map at a time from it); the model weights inside it
    are the shared, read-only ones.

    Attributes:
        photo: the photo as analysed (possibly downscaled; see ``Photo.scale``).
        detections: what the detector returned, in ``photo.image`` pixels (kept to report it).
        boxes: ``(N, 4)`` float32 ``(x1, y1, x2, y2)``, ``photo.image`` pixels: the boxes shown, on which
            the network ran — the detector's, less those the visitor removed, plus those drawn by hand.
        scores: ``(N,)`` float32 detector score of each box; NaN for a box drawn by hand.
        model: the model that ran on the boxes, or None when there is no model.
        predictor: the session's Predictor with the cached ``(N, K, h, w)`` logits of the N boxes, or None
            without a model or boxes.
        timings_ms: how long detection and the network took.
        removed: how many of the detector's boxes the visitor removed.
        corner: ``(x, y)`` of the first corner of a box being drawn by clicks, or None.
    """

    photo: Photo
    detections: Detections
    boxes: np.ndarray | None = None
    scores: np.ndarray | None = None
    model: LoadedModel | None = None
    predictor: Predictor | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    removed: int = 0
    corner: tuple[float, float] | None = None

    def __post_init__(self):
        if self.boxes is None:  # a new photo: the detector's boxes, as found
            self.boxes, self.scores = self.detections.boxes, self.detections.scores

    @property
    def num_people(self) -> int:
        """How many people the network ran on (the boxes when it ran, else 0)."""
        return 0 if self.predictor is None else len(self.predictor.crops)

    @property
    def num_boxes(self) -> int:
        return len(self.boxes)

    @property
    def by_hand(self) -> np.ndarray:
        """``(N,)`` bool: which boxes the visitor drew."""
        return np.isnan(self.scores)

    @property
    def shown(self) -> Detections:
        """The boxes shown, as :class:`Detections` for drawing (hand-drawn ones have a NaN score)."""
        return Detections(self.boxes, self.scores, self.detections.detector, self.detections.note)


@dataclass(frozen=True)
class Decoded:
    """The three decodes of a session's cached logits at one beta (image pixels of ``photo.image``)."""

    integral: Prediction
    debiased: Prediction
    argmax: Prediction

    def __getitem__(self, name: str) -> Prediction:
        return getattr(self, name)


def analyse(photo: Photo, detector: PersonDetector, loaded: LoadedModel | None, beta: float) -> PhotoSession:
    """Find people and run the network once on their boxes.

    Args:
        photo: the visitor's photo.
        detector: the shared person detector (thread-safe).
        loaded: the session's model; None runs detection only.
        beta: softmax sharpness of the first decode.

    Returns:
        A :class:`PhotoSession` whose Predictor caches the logits for :func:`decode`.
    """
    start = time.perf_counter()
    detections = detector(photo.image)
    session = PhotoSession(photo=photo, detections=detections, model=loaded)
    session.timings_ms["detection"] = (time.perf_counter() - start) * 1e3
    return run_pose(session, beta)


def run_pose(session: PhotoSession, beta: float) -> PhotoSession:
    """Run the network once on every box shown (none without a model or boxes); its Predictor caches the
    logits."""
    session.predictor = None
    session.timings_ms.pop("pose network", None)
    if session.model is None or session.num_boxes == 0:
        return session
    start = time.perf_counter()
    predictor = Predictor(session.model.model, flip=FLIP_TEST)  # cheap: shares the weights, owns its cache
    predictor.predict(session.photo.image, session.boxes, decoder="debiased", beta=beta)
    session.predictor = predictor
    session.timings_ms["pose network"] = (time.perf_counter() - start) * 1e3
    return session


def hand_box(
    session: PhotoSession, corner_a: tuple[float, float], corner_b: tuple[float, float]
) -> np.ndarray:
    """The ``(4,)`` float32 box with two opposite corners (any order), clipped to the photo.

    Raises:
        BoxError: if the clipped box is under ``MIN_HAND_BOX_SIDE`` px on a side, or not finite.
    """
    h, w = session.photo.image.shape[:2]
    (xa, ya), (xb, yb) = corner_a, corner_b
    box = np.array([min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)], dtype=np.float64)
    if not np.isfinite(box).all():
        raise BoxError(f"box corners must be numbers, got {corner_a} and {corner_b}")
    box = box.clip(0, [w, h, w, h])
    width, height = box[2] - box[0], box[3] - box[1]
    if min(width, height) < MIN_HAND_BOX_SIDE:
        raise BoxError(
            f"that box is {width:.0f} × {height:.0f} px inside the photo; draw one at least "
            f"{MIN_HAND_BOX_SIDE:.0f} px on each side around the whole person"
        )
    return box.astype(np.float32)


def add_box(session: PhotoSession, box: np.ndarray, beta: float) -> PhotoSession:
    """A new session with ``box`` (from :func:`hand_box`) added as the last person; the network runs again.

    Raises:
        BoxError: if the photo already has ``MAX_BOXES`` boxes.
    """
    if session.num_boxes >= MAX_BOXES:
        raise BoxError(f"this photo already has {MAX_BOXES} person boxes; remove one first")
    boxes = np.concatenate([session.boxes, np.asarray(box, np.float32).reshape(1, 4)])
    scores = np.append(session.scores, np.float32(np.nan)).astype(np.float32)
    edited = replace(session, boxes=boxes, scores=scores, corner=None, timings_ms=dict(session.timings_ms))
    return run_pose(edited, beta)


def remove_box(session: PhotoSession, index: int, beta: float) -> PhotoSession:
    """A new session without box ``index`` (0-based); the network runs again on the others.

    Raises:
        BoxError: if there is no box ``index``.
    """
    if not 0 <= index < session.num_boxes:
        raise BoxError(f"there is no person {index + 1} to remove (the photo has {session.num_boxes})")
    keep = np.arange(session.num_boxes) != index
    removed = session.removed + int(not session.by_hand[index])
    edited = replace(
        session,
        boxes=session.boxes[keep],
        scores=session.scores[keep],
        removed=removed,
        corner=None,
        timings_ms=dict(session.timings_ms),
    )
    return run_pose(edited, beta)


def click(session: PhotoSession, xy: tuple[float, float], beta: float) -> PhotoSession:
    """A click on the photo at ``xy`` (photo pixels): the first marks a corner, the second adds the box.

    Raises:
        BoxError: if the two corners make no usable box (the first corner is then forgotten).
    """
    if session.corner is None:
        return replace(session, corner=(float(xy[0]), float(xy[1])))
    first = session.corner
    session.corner = None  # a failed second click starts over rather than sticking to a bad corner
    return add_box(session, hand_box(session, first, xy), beta)


def decode(session: PhotoSession, beta: float) -> Decoded | None:
    """Re-decode the cached logits at ``beta`` with every decoder; never runs the network."""
    if session.predictor is None:
        return None
    return Decoded(**{name: session.predictor.redecode(name, beta) for name in DECODER_NAMES})


def keypoint_table(
    decoded: Decoded | None, person: int, names: tuple[str, ...], scale: float
) -> pd.DataFrame:
    """Per-joint J_r, J_o, their distance and J_o's score, in the original photo's pixels.

    Args:
        decoded: the current decodes, or None (an empty table).
        person: index of the person.
        names: the K joint names.
        scale: ``Photo.scale`` (analysed pixels per original pixel).
    """
    if decoded is None or person >= len(decoded.debiased):
        return pd.DataFrame(columns=TABLE_COLUMNS)
    j_r = decoded.integral.keypoints[person] / scale  # (K, 2) original pixels
    j_o = decoded.debiased.keypoints[person] / scale
    shift = np.linalg.norm(j_o - j_r, axis=1)
    scores = decoded.debiased.scores[person]
    rows = [
        [name, *(round(float(v), 1) for v in (*r, *o)), round(float(d), 2), round(float(s), 3)]
        for name, r, o, d, s in zip(names, j_r, j_o, shift, scores, strict=True)
    ]
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


@dataclass(frozen=True)
class JointMap:
    """Everything the heatmap view shows for one joint of one person, in heatmap pixels.

    Attributes:
        values: ``(h, w)`` float32, logits or their softmax at beta.
        estimates: decoder name -> ``(2,)`` ``(x, y)`` estimate.
        omegas: ``(4, 4)`` rectangles ``(x0, y0, x1, y1)`` of Omega_1..4 around J_o.
        softmax: whether ``values`` is the softmax (else the logits).
    """

    values: np.ndarray
    estimates: dict[str, np.ndarray]
    omegas: np.ndarray
    softmax: bool


def joint_map(
    session: PhotoSession, decoded: Decoded, person: int, joint: int, beta: float, as_softmax: bool
) -> JointMap | None:
    """The heatmap view's data for ``joint`` of ``person``, or None when there is nothing to show."""
    if person >= session.num_people:
        return None
    logits = session.predictor.joint_logits(person, joint)  # (1, 1, h, w)
    values = softmax(logits, beta) if as_softmax else logits
    estimates = {name: decoded[name].heatmap_coords[person, joint] for name in DECODER_NAMES}
    omegas = partition(torch.from_numpy(np.array(estimates["debiased"])), tuple(logits.shape[-2:]))
    return JointMap(values[0, 0].numpy(), estimates, omegas.numpy(), as_softmax)


OMEGA_TEXT = (
    "**Ω1–Ω4, the paper's partition around J_o (Eq. 8–9).** Ω1 is the rectangle centred on J_o that "
    "reaches the nearest map edge on each axis: every background pixel in it has a mirror image through "
    "J_o, so its background weight pulls J_r nowhere. Ω2 (beside Ω1), Ω3 (diagonal) and Ω4 (above or below) "
    "are the rest of the map, all on the side away from the nearest edges: their background weight, "
    "exp(β·0) = 1 per pixel, pulls J_r from J_o toward them — toward the map's centre. J_o removes exactly "
    "that weight (Eq. 8), which is why it needs a background of 0."
)
FAR_PX = 6.0  # heatmap px from the peak beyond which a pixel counts as background (background_levels' radius)
OVERCORRECTION = 0.1  # |share of J_o's weight on the background| beyond which the note warns


def map_note(session: PhotoSession, person: int, joint: int, beta: float) -> str:
    """Markdown under the heatmap: what Ω1–Ω4 are, and this map's background against the zero-background
    assumption at ``beta`` (what it does to J_o). Empty when the network did not run on ``person``."""
    if person >= session.num_people:
        return ""
    heatmap = session.predictor.joint_logits(person, joint)  # (1, 1, h, w)
    values = heatmap[0, 0].numpy()
    far = _far_from_peak(values)
    median = float(np.median(values[far])) if far.any() else float("nan")
    mean = float(background_levels(heatmap)[0, 0])
    below, above = (float(share[0, 0]) for share in background_weight_shares(heatmap, beta))
    what = "heatmap value (a sigmoid)" if _is_sigmoid(session) else "logit"
    lines = [
        f"**Background of this map:** median {what} **{median:+.4f}** (mean {mean:+.4f}) more than "
        f"{FAR_PX:g} px from the peak (peak {float(values.max()):.3f}); the compensation assumes exactly 0. "
        f"At β = {beta:g} the pixels that far hold {below:+.0%} (those below 0) and {above:+.0%} (above 0) "
        "of J_o's weights, exp(βH) − 1.",
    ]
    if not (np.isfinite(below) and np.isfinite(above)) or below > 0 or above < 0:  # total weight <= 0
        lines.append(
            "⚠️ **The zero-background assumption breaks here:** the background is so far below 0 that the "
            "weights exp(βH) − 1 sum to 0 or less, so nothing can be compensated: the debiased decoder falls "
            "back to J_r (score 0). Raise β, or pick a model whose background is 0 (BlazePose)."
        )
    elif below < -OVERCORRECTION:
        lines.append(
            "⚠️ **The zero-background assumption breaks here:** below 0 the weights are negative, so Eq. 8 "
            "takes away more than the background added; J_o is pushed *away* from the map's centre "
            "(over-corrected), and flies off where the weights nearly cancel. Raise β, or pick a model whose "
            "background is 0 (BlazePose in the *Model* choice)."
        )
    if above > OVERCORRECTION:
        lines.append(
            "⚠️ **Not all of the map away from the peak is 0:** pixels above 0 there (a positive background, "
            f"or a second mode: the other limb, a neighbour) still pull J_o toward them, about {above:.0%} "
            "of the way. The compensation removes a flat background's pull, not a second peak's."
        )
    if len(lines) == 1:
        lines.append("The assumption holds: J_o is the mean of the peak alone.")
    return "\n\n".join([" ".join(lines), OMEGA_TEXT])


def _far_from_peak(values: np.ndarray) -> np.ndarray:
    """``(h, w)`` bool: pixels more than ``FAR_PX`` from the map's arg-max (as background_levels counts)."""
    py, px = np.unravel_index(np.argmax(values), values.shape)
    ys, xs = np.indices(values.shape)
    return np.hypot(xs - px, ys - py) > FAR_PX


def _is_sigmoid(session: PhotoSession) -> bool:
    # BlazePose's and a movenet PoseModel's maps are probabilities (a sigmoid), the other archs' raw logits.
    return session.model is not None and bool(getattr(session.model.model, "sigmoid_heatmaps", False))


def trained_beta(session: PhotoSession) -> float | None:
    """The beta the session's model was trained (or set up) at; None without a model."""
    return None if session.model is None else float(session.model.model.beta)


def beta_note(session: PhotoSession | None, decoded: Decoded | None, person: int, beta: float) -> str:
    """The sentence by the beta slider: the model's trained beta, what lowering beta does, which estimate
    should stay put and why, and the selected person's median |J_o - J_r| now (original photo px)."""
    if session is None or session.model is None:
        return ""
    trained = trained_beta(session)
    origin = (
        f"BlazePose was never trained with a softmax; β = {trained:g} is its setting here"
        if not getattr(session.model.model, "trained_with_softmax", True)
        else f"This model was trained at **β = {trained:g}**"
    )
    text = (
        f"{origin}. Lower β and the softmax gives the flat background more weight: **J_r** (integral) slides "
        "toward the centre of each person's crop, while **J_o** (debiased) should stay put — Eq. 8 removes "
        "exactly the background's weight, provided the background is 0 (the heatmap note says if it is)."
    )
    if decoded is not None and person < len(decoded.debiased):
        j_r, j_o = decoded.integral.keypoints[person], decoded.debiased.keypoints[person]
        shift = np.linalg.norm(j_o - j_r, axis=1)
        text += (
            f" Now, at β = {beta:g}: median |J_o − J_r| = {np.median(shift) / session.photo.scale:.2f} px "
            f"for person {person + 1}."
        )
    return text


def _people(n: int) -> str:
    return f"{n} {'person' if n == 1 else 'people'}"


def status_text(session: PhotoSession) -> str:
    """Markdown: which detector ran and why, how many people, the visitor's box edits, timings and what
    was done to the photo."""
    det = session.detections
    lines = [f"**Detector:** {det.detector}" + (f" — {det.note}" if det.note else "")]
    if len(det) == 0:
        lines.append(
            "**No person found in this photo.** Draw a box around someone by clicking two opposite corners "
            "on the image, or try a photo where people are larger or less hidden."
        )
    else:
        lines.append(f"Found {_people(len(det))}.")
    drawn = int(session.by_hand.sum())
    if drawn or session.removed:
        edits = [f"{drawn} drawn by hand"] if drawn else []
        edits += [f"{session.removed} of the detector's removed"] if session.removed else []
        lines.append(f"**Pose on {_people(session.num_boxes)}**: {', '.join(edits)}.")
    if session.corner is not None:
        x, y = (round(v / session.photo.scale) for v in session.corner)
        lines.append(f"**First corner at ({x}, {y})**: click the opposite corner of the person's box.")
    if session.model is None:
        lines.append(
            "⚠️ No pose model is loaded, so only the person boxes are shown (see the *Model picker* below)."
        )
    timings = ", ".join(f"{name} {ms:.0f} ms" for name, ms in session.timings_ms.items())
    lines.append(f"Timings: {timings}.")
    if session.photo.notes:
        lines.append("Photo: " + "; ".join(session.photo.notes) + ".")
    return "\n\n".join(lines)
