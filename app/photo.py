"""One visitor's photo: people found, the network run once, its logits kept per session, and cheap
re-decoding at any beta with the three decoders (argmax, integral J_r, debiased J_o).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from app.detection import Detections, PersonDetector
from app.images import Photo
from app.model import LoadedModel
from pose.decode import partition, softmax
from pose.inference import Prediction, Predictor

DECODER_NAMES = ("integral", "debiased", "argmax")
TABLE_COLUMNS = ["joint", "J_r x", "J_r y", "J_o x", "J_o y", "shift (px)", "score"]


@dataclass
class PhotoSession:
    """What one browser session keeps between events (held in a ``gr.State``).

    The Predictor is the session's own (its logits cache must not be shared between visitors); the
    model weights inside it are the shared, read-only ones.

    Attributes:
        photo: the photo as analysed (possibly downscaled; see ``Photo.scale``).
        detections: the person boxes, in ``photo.image`` pixels.
        model: the model that produced ``logits``, or None when there is no model.
        predictor: the session's Predictor with the cached logits, or None without a model / people.
        logits: ``(N, K, h, w)`` float32 CPU logits of the N people (a copy kept for the heatmap view).
        timings_ms: how long detection and the network took.
    """

    photo: Photo
    detections: Detections
    model: LoadedModel | None = None
    predictor: Predictor | None = None
    logits: torch.Tensor | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def num_people(self) -> int:
        return 0 if self.logits is None else int(self.logits.shape[0])


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
        A :class:`PhotoSession` whose logits are cached for :func:`decode`.
    """
    start = time.perf_counter()
    detections = detector(photo.image)
    session = PhotoSession(photo=photo, detections=detections, model=loaded)
    session.timings_ms["detection"] = (time.perf_counter() - start) * 1e3
    if loaded is None or len(detections) == 0:
        return session
    start = time.perf_counter()
    predictor = Predictor(loaded.model)  # cheap: shares the model's weights, owns its cache
    predictor.predict(photo.image, detections.boxes, decoder="debiased", beta=beta)
    session.predictor, session.logits = predictor, predictor.logits
    session.timings_ms["pose network"] = (time.perf_counter() - start) * 1e3
    return session


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
    if session.logits is None or person >= session.num_people:
        return None
    logits = session.logits[person : person + 1, joint : joint + 1]  # (1, 1, h, w)
    values = softmax(logits, beta) if as_softmax else logits
    estimates = {name: decoded[name].heatmap_coords[person, joint] for name in DECODER_NAMES}
    omegas = partition(torch.from_numpy(np.array(estimates["debiased"])), tuple(logits.shape[-2:]))
    return JointMap(values[0, 0].numpy(), estimates, omegas.numpy(), as_softmax)


def status_text(session: PhotoSession) -> str:
    """Markdown: which detector ran and why, how many people, timings and what was done to the photo."""
    det = session.detections
    lines = [f"**Detector:** {det.detector}" + (f" — {det.note}" if det.note else "")]
    if len(det) == 0:
        lines.append(
            "**No person found in this photo.** Try one where people are larger or less hidden; "
            "the detector only looks for people."
        )
    else:
        lines.append(f"Found {len(det)} {'person' if len(det) == 1 else 'people'}.")
    if session.model is None:
        lines.append(
            "⚠️ No pose model is loaded, so only the person boxes are shown (see the *Model picker* below)."
        )
    timings = ", ".join(f"{name} {ms:.0f} ms" for name, ms in session.timings_ms.items())
    lines.append(f"Timings: {timings}.")
    if session.photo.notes:
        lines.append("Photo: " + "; ".join(session.photo.notes) + ".")
    return "\n\n".join(lines)
