"""What the photo tab's events compute: boxes drawn, typed or removed, and a redraw at another beta. Each
handler returns a record (:class:`Drawn`, :class:`Analysed`; :class:`ModelSwitch` for the events of
:mod:`app.photo_models`) whose fields :mod:`app.photo_tab` addresses to its components; no handler knows
the layout.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass
from typing import Any

import cv2
import gradio as gr
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.images import overlay_file
from app.model import LoadedModel
from app.photo import (
    TABLE_COLUMNS,
    BoxError,
    Decoded,
    PhotoSession,
    add_box,
    beta_note,
    click,
    decode,
    hand_box,
    joint_map,
    keypoint_table,
    map_note,
    remove_box,
    status_text,
    trained_beta,
)
from app.plots import compare_panels, draw_overlay, joint_figure

SOFTMAX_VIEW, LOGITS_VIEW = "softmax at β", "logits (implicit heatmap)"


@dataclass(frozen=True)
class Drawn:
    """A redraw of the session at one beta: what the slider and the view controls update.

    Attributes:
        overlay: the keypoints on the photo, a JPEG file (see ``app.images.overlay_file``), or None.
        table: the per-joint table (``TABLE_COLUMNS``), original photo pixels.
        heatmap: the selected joint's heatmap (a plotly figure).
        timing: Markdown: what was re-decoded, and in how many ms.
        beta_note: Markdown by the slider (``app.photo.beta_note``).
        map_note: Markdown under the heatmap (``app.photo.map_note``).
        compare: the person at the trained beta beside the slider's beta, a JPEG file, or None.
    """

    overlay: str | None
    table: pd.DataFrame
    heatmap: go.Figure
    timing: str = ""
    beta_note: str = ""
    map_note: str = ""
    compare: str | None = None

    @classmethod
    def empty(cls) -> Drawn:
        """No photo: no images, an empty table and an empty figure."""
        return cls(None, pd.DataFrame(columns=TABLE_COLUMNS), joint_figure(None, "", 1.0))


@dataclass(frozen=True)
class Analysed:
    """Every output of a new photo or a box edit.

    Attributes:
        session: the visitor's new :class:`PhotoSession`, or None without a photo.
        people: the *Person* dropdown: its choices (one per box) and the person shown.
        joints: the joint dropdown: the model's joint names and the joint shown.
        status: Markdown: detector, people, box edits, timings, what was done to the photo.
        drawn: the redraw of ``session``.
    """

    session: PhotoSession | None
    people: gr.Dropdown
    joints: gr.Dropdown
    status: str
    drawn: Drawn

    @classmethod
    def empty(cls) -> Analysed:
        """No photo (the input was cleared): no session, no choices."""
        no_choice = gr.Dropdown(choices=[], value=None)
        return cls(None, no_choice, no_choice, "", Drawn.empty())


@dataclass(frozen=True)
class ModelSwitch:
    """The outcome of a model choice.

    Attributes:
        message: Markdown for the model line at the top of the tab.
        model: the session's model; None is the default (shared, never copied).
        analysed: the photo analysed again with ``model``; None when the model could not be loaded, and
            then the session, its model and the photo outputs stay as they were.
    """

    message: str
    model: LoadedModel | None = None
    analysed: Analysed | None = None


def photo_source(payload: Any) -> str | io.BytesIO | None:
    """The uploaded file from the photo input's raw value (its events skip Gradio's preprocessing).

    Gradio's own preprocessing opens the file with Pillow and turns a non-image into a traceback; skipping it
    lets :func:`app.images.read_photo` decode, rotate and convert everything and explain what is wrong.
    """
    if not payload:
        return None
    if isinstance(payload, str):
        return payload
    path, url = payload.get("path"), payload.get("url") or ""
    if path:
        return str(path)
    if url.startswith("data:"):  # an inline (base64) image
        return io.BytesIO(base64.b64decode(url.partition(",")[2]))
    return None


def parse_box(text: str, scale: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Two corners in analysed-photo pixels from ``"x1, y1, x2, y2"`` in the original photo's pixels.

    Raises:
        BoxError: unless the text holds exactly four numbers.
    """
    try:
        values = [float(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        values = []
    if len(values) != 4:
        raise BoxError(f"type a box as four numbers x1, y1, x2, y2 (photo pixels), got {text!r}")
    x1, y1, x2, y2 = (v * scale for v in values)
    return (x1, y1), (x2, y2)


def _person_choices(session: PhotoSession) -> list[tuple[str, int]]:
    return [
        (f"Person {i + 1} (drawn by hand)" if np.isnan(s) else f"Person {i + 1} (detector score {s:.2f})", i)
        for i, s in enumerate(session.scores)
    ]


def _mark_corner(image: np.ndarray, corner: tuple[float, float]) -> np.ndarray:
    """The overlay with a cross-hair at the first corner of a box being drawn (a copy)."""
    marked, (x, y) = image.copy(), (round(corner[0]), round(corner[1]))
    r = max(6, round(max(image.shape[:2]) / 80))
    for colour, width in (((0, 0, 0), 4), ((255, 230, 0), 2)):
        cv2.line(marked, (x - r, y), (x + r, y), colour, width, cv2.LINE_AA)
        cv2.line(marked, (x, y - r), (x, y + r), colour, width, cv2.LINE_AA)
    return marked


def _overlay(session: PhotoSession, decoded: Decoded | None, person: int, shown: list) -> str:
    """The ``shown`` overlays (and a first corner being drawn) on the photo, as a JPEG file."""
    schema = session.model.model.schema if session.model is not None else None
    image = draw_overlay(
        session.photo.image,
        session.shown,
        decoded,
        schema.skeleton if schema else (),
        shown,
        person,
    )
    if session.corner is not None:
        image = _mark_corner(image, session.corner)
    return overlay_file(image)  # written once, whole: see overlay_file


def _comparison(session: PhotoSession, decoded: Decoded, person: int, beta: float, shown: list) -> str:
    """The selected person at the model's trained beta beside the same person at ``beta``, a JPEG file."""
    trained = trained_beta(session)
    at_trained = decoded if trained == beta else decode(session, trained)
    schema = session.model.model.schema
    panels = compare_panels(
        session.photo.image,
        session.shown,
        (at_trained, decoded),
        (trained, beta),
        schema.skeleton,
        shown,
        person,
    )
    return overlay_file(panels)  # written once, as the overlay


def _timing_text(session: PhotoSession, beta: float, ms: float) -> str:
    n, k = session.num_people, session.predictor.num_keypoints
    return (
        f"Re-decoded {n} {'person' if n == 1 else 'people'} × {k} joints with 3 decoders at "
        f"β = {float(beta):g} and redrew in {ms:.1f} ms (the network did not run)."
    )


def render(
    session: PhotoSession | None, person: Any, joint: Any, beta: float, shown: list, view: str
) -> Drawn:
    """Re-decode the session's cached logits at ``beta`` and redraw; never runs the network.

    Args:
        session: the visitor's session, or None before a photo.
        person, joint: the dropdowns' values (indices; anything else selects the first).
        beta: softmax sharpness.
        shown: the overlays ticked (``app.plots.OVERLAY_CHOICES``).
        view: ``SOFTMAX_VIEW`` or ``LOGITS_VIEW`` for the heatmap.
    """
    if session is None:
        return Drawn.empty()
    start, beta, shown = time.perf_counter(), float(beta), shown or []
    person = int(person) if isinstance(person, int | float) and 0 <= person < session.num_boxes else 0
    joint = int(joint) if isinstance(joint, int | float) else 0
    decoded = decode(session, beta)
    names = session.model.model.schema.names if session.model is not None else ()
    overlay = _overlay(session, decoded, person, shown)
    table = keypoint_table(decoded, person, names, session.photo.scale)
    if decoded is None:
        title = "no pose model loaded" if session.model is None else "no person box"
        return Drawn(overlay, table, joint_figure(None, title, beta))
    joint = min(max(joint, 0), len(names) - 1)
    data = joint_map(session, decoded, person, joint, beta, view != LOGITS_VIEW)
    figure = joint_figure(data, f"person {person + 1}, {names[joint]}", beta)
    compare = _comparison(session, decoded, person, beta, shown)
    timing = _timing_text(session, beta, (time.perf_counter() - start) * 1e3)
    notes = beta_note(session, decoded, person, beta), map_note(session, person, joint, beta)
    return Drawn(overlay, table, figure, timing, *notes, compare)


def analysed(session: PhotoSession, person: int, joint: Any, beta: float, shown: list, view: str) -> Analysed:
    """Every photo output for ``session``, showing ``person`` (an index) and ``joint``."""
    people = _person_choices(session)
    names = session.model.model.schema.names if session.model is not None else ()
    joint = int(joint) if isinstance(joint, int | float) and names else 0
    return Analysed(
        session,
        gr.Dropdown(choices=people, value=person if people else None),
        gr.Dropdown(choices=[(n, k) for k, n in enumerate(names)], value=joint if names else None),
        status_text(session),
        render(session, person, joint, beta, shown, view),
    )


def _edited(edit, session: PhotoSession | None, *args) -> PhotoSession:
    """``edit(session, *args)``, or an error shown to the visitor (boxes unchanged) if it cannot be."""
    if session is None:
        raise gr.Error("Upload a photo or pick an example first.", title="No photo yet")
    try:
        return edit(session, *args)
    except BoxError as err:
        raise gr.Error(str(err), title="Box not changed") from None


def on_click(
    session: PhotoSession | None, person: Any, joint: Any, beta, shown, view, evt: gr.SelectData
) -> Analysed | None:
    """A click on the overlay: the first marks a corner, the second adds the box and reruns the pose.

    Returns None (nothing changes) for a select event that is not a point.
    """
    if not isinstance(evt.index, list | tuple) or len(evt.index) != 2:
        return None
    edited = _edited(click, session, tuple(evt.index), float(beta))
    if edited.corner is None:  # the box was added: show its person
        person = edited.num_boxes - 1
    elif not (isinstance(person, int | float) and 0 <= person < edited.num_boxes):
        person = 0
    return analysed(edited, int(person), joint, beta, shown, view)


def on_add_box(session: PhotoSession | None, text: str, joint: Any, beta, shown, view) -> Analysed:
    """Add the typed box ``x1, y1, x2, y2`` (original photo pixels) as a person; rerun the pose."""
    scale = session.photo.scale if session is not None else 1.0

    def typed(s: PhotoSession, text: str, beta: float) -> PhotoSession:
        return add_box(s, hand_box(s, *parse_box(text, scale)), beta)

    edited = _edited(typed, session, text, float(beta))
    return analysed(edited, edited.num_boxes - 1, joint, beta, shown, view)


def on_remove_box(session: PhotoSession | None, person: Any, joint: Any, beta, shown, view) -> Analysed:
    """Remove the selected person's box; rerun the pose on the others."""
    if not isinstance(person, int | float):
        raise gr.Error("Pick the person whose box to remove first.", title="Box not changed")
    edited = _edited(remove_box, session, int(person), float(beta))
    return analysed(edited, 0, joint, beta, shown, view)
