"""Tab 1, "Your photo": upload / webcam / examples, people (found, or boxes drawn by hand and removed),
overlays, the per-joint table, the heatmap of one joint, the beta slider that re-decodes cached logits, and
the model picker.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import time
from pathlib import Path
from typing import Any

import cv2
import gradio as gr
import numpy as np
import pandas as pd

from app.detection import PersonDetector
from app.images import PhotoError, overlay_file, read_photo
from app.model import BLAZEPOSE, CheckpointError, LoadedModel, ModelStore
from app.photo import (
    TABLE_COLUMNS,
    BoxError,
    Decoded,
    PhotoSession,
    add_box,
    analyse,
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
from app.plots import DEFAULT_OVERLAYS, OVERLAY_CHOICES, compare_panels, draw_overlay, joint_figure

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
SOFTMAX_VIEW, LOGITS_VIEW = "softmax at β", "logits (implicit heatmap)"
DEFAULT_BETA = 10.0
TABLE_LABEL = "Per joint, in the original photo's pixels (shift = |J_o − J_r|, score = J_o's confidence)"
DEFAULT_CHOICE = "default"
MODEL_CHOICES = [
    ("The default model (above)", DEFAULT_CHOICE),
    ("BlazePose Full (Google MediaPipe): a zero-background heatmap model", BLAZEPOSE),
]
COMPARE_LABEL = "The selected person at the model's trained β (left) and at the slider's β (right)"
BOX_HELP = (
    "**Someone missing?** Click two opposite corners of their box on the image above (or type the box "
    "below). **A wrong box?** Pick that person in *Person* and remove it. The pose runs on the boxes shown."
)


def _photo_source(payload: Any) -> str | io.BytesIO | None:
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


def example_photos() -> list[str]:
    """ultralytics' bus.jpg and zidane.jpg (from the installed package) and assets/examples/*."""
    paths = []
    # Located without importing ultralytics (slow, and it patches PIL.Image.open when imported).
    spec = importlib.util.find_spec("ultralytics")
    if spec is not None and spec.submodule_search_locations:
        assets = Path(spec.submodule_search_locations[0]) / "assets"
        paths += [str(assets / n) for n in ("bus.jpg", "zidane.jpg") if (assets / n).is_file()]
    if EXAMPLES_DIR.is_dir():
        paths += sorted(
            str(p) for p in EXAMPLES_DIR.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        )
    return paths


def _empty_outputs(message: str) -> tuple:
    """The photo outputs when there is no photo: no session, empty choices, table and figure."""
    empty = gr.Dropdown(choices=[], value=None)
    return (
        None,
        empty,
        empty,
        None,
        pd.DataFrame(columns=TABLE_COLUMNS),
        joint_figure(None, "", 1.0),
        message,
        "",
        "",
        "",
        None,
    )


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


def _comparison(session: PhotoSession, decoded: Decoded, person: int, beta: float, shown: list) -> np.ndarray:
    """The selected person at the model's trained beta beside the same person at ``beta``."""
    trained = trained_beta(session)
    at_trained = decoded if trained == beta else decode(session, trained)
    schema = session.model.model.schema
    return compare_panels(
        session.photo.image,
        session.shown,
        (at_trained, decoded),
        (trained, beta),
        schema.skeleton,
        shown,
        person,
    )


def _timing_text(session: PhotoSession, beta: float, ms: float) -> str:
    n, k = session.num_people, session.predictor.num_keypoints
    return (
        f"Re-decoded {n} {'person' if n == 1 else 'people'} × {k} joints with 3 decoders at "
        f"β = {float(beta):g} and redrew in {ms:.1f} ms (the network did not run)."
    )


class PhotoTab:
    """Builds and serves Tab 1. Handlers are methods; per-visitor data lives only in ``gr.State``.

    Args:
        store: the shared models.
        detector: the shared person detector.
    """

    def __init__(self, store: ModelStore, detector: PersonDetector):
        self.store, self.detector = store, detector
        self.default_model, self.model_message = self._load_default()

    def _load_default(self) -> tuple[LoadedModel | None, str]:
        try:
            loaded = self.store.load_default()
        except CheckpointError as err:
            return None, f"⚠️ The default model could not be loaded: {err}"
        if loaded is None:
            return None, (
                f"⚠️ **No pose model loaded**: {self.store.default_reason} Until then this tab shows the "
                "person boxes only; the *Bias lab* and *Training analysis* tabs need no model."
            )
        return loaded, f"**Model:** {loaded.label} — {self.store.default_reason}."

    def build(self) -> None:
        """Create the tab's components in the current Blocks context and wire their events."""
        # Which model runs (or that none does, and why) stays in sight at the top of the tab.
        model_md = gr.Markdown(self.model_message, elem_id="model-status")
        choice = gr.Radio(MODEL_CHOICES, value=DEFAULT_CHOICE, label="Model", elem_id="model-choice")
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                photo = gr.Image(
                    type="filepath",
                    image_mode=None,
                    sources=["upload", "webcam", "clipboard"],
                    height=280,
                    label="Your photo (upload, webcam or paste)",
                    elem_id="photo-input",
                )
                gr.Examples(example_photos(), inputs=photo, label="Examples (click one)", examples_per_page=8)
                beta = gr.Slider(
                    0.5,
                    50,
                    value=DEFAULT_BETA,
                    step=0.5,
                    label="β (softmax sharpness)",
                    info="Re-decodes the cached logits: the network does not run again.",
                    elem_id="beta-slider",
                )
                beta_md = gr.Markdown(elem_id="beta-note")  # what beta does, for the model loaded
                shown = gr.CheckboxGroup(list(OVERLAY_CHOICES), value=DEFAULT_OVERLAYS, label="Overlays")
                person = gr.Dropdown([], label="Person", interactive=True)
                compare = gr.Image(
                    type="numpy", format="jpeg", interactive=False, label=COMPARE_LABEL, elem_id="compare"
                )
                status = gr.Markdown(elem_id="photo-status")
            with gr.Column(scale=3):
                overlay = gr.Image(
                    type="numpy",
                    format="jpeg",
                    interactive=False,
                    height=620,
                    label="Keypoints on your photo",
                    elem_id="overlay",
                )
                timing = gr.Markdown(elem_id="decode-timing")
                gr.Markdown(BOX_HELP)
                with gr.Row():
                    box_text = gr.Textbox(
                        label="Person box x1, y1, x2, y2 (photo pixels)",
                        placeholder="e.g. 100, 40, 260, 420",
                        scale=3,
                        elem_id="box-text",
                    )
                    add_btn = gr.Button("Add box", scale=1, elem_id="add-box")
                    remove_btn = gr.Button("Remove the selected person", scale=1, elem_id="remove-box")
        with gr.Row():
            table = gr.Dataframe(
                headers=TABLE_COLUMNS,
                label=TABLE_LABEL,
                max_height=560,
                interactive=False,
                elem_id="joint-table",
                column_widths=["21%", "11%", "11%", "11%", "11%", "18%", "17%"],
            )
            with gr.Column():
                with gr.Row():
                    joint = gr.Dropdown([], label="Joint in the heatmap view", interactive=True)
                    view = gr.Radio([SOFTMAX_VIEW, LOGITS_VIEW], value=SOFTMAX_VIEW, label="Show")
                heatmap = gr.Plot(label="Heatmap of the joint (zoom with the mouse)", elem_id="joint-heatmap")
                map_md = gr.Markdown(elem_id="map-note")  # Omega_1..4 and the map's background level
        with gr.Accordion("Model picker: another checkpoint", open=self.default_model is None):
            local = self.store.allow_local
            with gr.Row():
                model_text = gr.Textbox(
                    label="Hub repo id or local checkpoint folder" if local else "Hugging Face Hub repo id",
                    placeholder="owner/name" + (" or /path/to/checkpoint" if local else ""),
                    scale=3,
                )
                load_btn = gr.Button("Load model", scale=1)
                default_btn = gr.Button("Default model", scale=1)
        model = gr.State(None)  # the session's LoadedModel; None means the default (shared, never copied)
        # The session's PhotoSession (photo + logits, a few MB): dropped 30 minutes after its last use.
        session = gr.State(None, time_to_live=1800)

        # The teaching outputs (beta note, map note, comparison) come last, after those of render's first 4.
        teaching = [beta_md, map_md, compare]
        photo_outputs = [session, person, joint, overlay, table, heatmap, status, timing, *teaching]
        self._photo_outputs = photo_outputs
        render_inputs = [session, person, joint, beta, shown, view]
        render_outputs = [overlay, table, heatmap, timing, *teaching]
        # preprocess=False: the photo arrives as Gradio's raw file record (see _photo_source).
        photo.change(
            self.on_photo,
            [photo, model, beta, shown, view],
            photo_outputs,
            api_name="analyse",
            concurrency_limit=2,
            preprocess=False,
        )
        beta.change(
            self.render,
            render_inputs,
            render_outputs,
            api_name="redecode",
            trigger_mode="always_last",
            show_progress="hidden",
            concurrency_limit=4,
        )
        for control in (shown, view, person, joint):
            control.input(
                self.render,
                render_inputs,
                render_outputs,
                api_visibility="undocumented",
                trigger_mode="always_last",
                show_progress="hidden",
                concurrency_limit=4,
            )
        self._wire_boxes(overlay, box_text, add_btn, remove_btn, [session, person, joint, beta, shown, view])
        model_inputs = [photo, model, beta, shown, view]
        load_btn.click(
            self.on_load_model,
            [model_text, *model_inputs],
            [model, model_md, *photo_outputs],
            api_name="load_model",
            concurrency_limit=1,
            preprocess=False,
        )
        default_btn.click(
            self.on_default_model,
            model_inputs,
            [model, model_md, *photo_outputs],
            api_name="default_model",
            concurrency_limit=1,
            preprocess=False,
        )
        choice.input(
            self.on_pick_model,
            [choice, *model_inputs],
            [model, model_md, *photo_outputs],
            api_name="pick_model",
            concurrency_limit=1,
            preprocess=False,
        )

    def _wire_boxes(self, overlay, box_text, add_btn, remove_btn, inputs: list) -> None:
        """Clicks on the overlay, the Add and Remove buttons: edit the session's boxes, rerun the pose."""
        session, person, joint, beta, shown, view = inputs
        edit = {"concurrency_limit": 2, "trigger_mode": "once"}
        # A click carries gr.SelectData, which API clients cannot send: they use /add_box instead.
        overlay.select(
            self.on_click,
            inputs,
            self._photo_outputs,
            api_visibility="private",
            **edit,
        )
        add_btn.click(
            self.on_add_box,
            [session, box_text, joint, beta, shown, view],
            self._photo_outputs,
            api_name="add_box",
            **edit,
        )
        remove_btn.click(self.on_remove_box, inputs, self._photo_outputs, api_name="remove_box", **edit)

    def on_photo(self, payload: Any, model: LoadedModel | None, beta: float, shown: list[str], view: str):
        """Read the photo, find people, run the network once; returns every photo output."""
        source = _photo_source(payload)
        if source is None:
            return _empty_outputs("")
        try:
            photo = read_photo(source)
        except PhotoError as err:
            raise gr.Error(str(err), title="This photo cannot be used") from None
        session = analyse(photo, self.detector, model or self.default_model, float(beta))
        decoded = decode(session, float(beta))
        joint = 0
        if decoded is not None:  # open the heatmap view on the joint the compensation moves most
            shift = np.linalg.norm(decoded.debiased.keypoints[0] - decoded.integral.keypoints[0], axis=1)
            joint = int(np.argmax(shift))
        return self._session_outputs(session, 0, joint, beta, shown, view)

    def _session_outputs(self, session: PhotoSession, person: int, joint: Any, beta, shown, view) -> tuple:
        """Every photo output for ``session``, showing ``person`` (index) and ``joint``."""
        people = _person_choices(session)
        names = session.model.model.schema.names if session.model is not None else ()
        joint = int(joint) if isinstance(joint, int | float) and names else 0
        outputs = self.render(session, person, joint, beta, shown, view)
        return (
            session,
            gr.Dropdown(choices=people, value=person if people else None),
            gr.Dropdown(choices=[(n, k) for k, n in enumerate(names)], value=joint if names else None),
            *outputs[:3],
            status_text(session),
            *outputs[3:],
        )

    def _edited(self, edit, session: PhotoSession | None, *args) -> PhotoSession:
        """``edit(session, *args)``, or an error shown to the visitor (boxes unchanged) if it cannot be."""
        if session is None:
            raise gr.Error("Upload a photo or pick an example first.", title="No photo yet")
        try:
            return edit(session, *args)
        except BoxError as err:
            raise gr.Error(str(err), title="Box not changed") from None

    def on_click(
        self, session: PhotoSession | None, person: Any, joint: Any, beta, shown, view, evt: gr.SelectData
    ):
        """A click on the overlay: the first marks a corner, the second adds the box and reruns the pose."""
        if not isinstance(evt.index, list | tuple) or len(evt.index) != 2:
            return tuple(gr.skip() for _ in self._photo_outputs)
        edited = self._edited(click, session, tuple(evt.index), float(beta))
        if edited.corner is None:  # the box was added: show its person
            person = edited.num_boxes - 1
        elif not (isinstance(person, int | float) and 0 <= person < edited.num_boxes):
            person = 0
        return self._session_outputs(edited, int(person), joint, beta, shown, view)

    def on_add_box(self, session: PhotoSession | None, text: str, joint: Any, beta, shown, view):
        """Add the typed box ``x1, y1, x2, y2`` (original photo pixels) as a person; rerun the pose."""
        scale = session.photo.scale if session is not None else 1.0

        def typed(s: PhotoSession, text: str, beta: float) -> PhotoSession:
            return add_box(s, hand_box(s, *parse_box(text, scale)), beta)

        edited = self._edited(typed, session, text, float(beta))
        return self._session_outputs(edited, edited.num_boxes - 1, joint, beta, shown, view)

    def on_remove_box(self, session: PhotoSession | None, person: Any, joint: Any, beta, shown, view):
        """Remove the selected person's box; rerun the pose on the others."""
        if not isinstance(person, int | float):
            raise gr.Error("Pick the person whose box to remove first.", title="Box not changed")
        edited = self._edited(remove_box, session, int(person), float(beta))
        return self._session_outputs(edited, 0, joint, beta, shown, view)

    def render(
        self, session: PhotoSession | None, person: Any, joint: Any, beta: float, shown: list, view: str
    ):
        """Re-decode the cached logits at ``beta`` and redraw; never runs the network."""
        if session is None:
            return _empty_outputs("")[3:6] + _empty_outputs("")[7:]
        start = time.perf_counter()
        person = int(person) if isinstance(person, int | float) and 0 <= person < session.num_boxes else 0
        joint = int(joint) if isinstance(joint, int | float) else 0
        decoded = decode(session, float(beta))
        schema = session.model.model.schema if session.model is not None else None
        image = draw_overlay(
            session.photo.image,
            session.shown,
            decoded,
            schema.skeleton if schema else (),
            shown or [],
            person,
        )
        if session.corner is not None:
            image = _mark_corner(image, session.corner)
        image = overlay_file(image)  # written once, whole: see overlay_file
        table = keypoint_table(decoded, person, schema.names if schema else (), session.photo.scale)
        if decoded is None:
            title = "no pose model loaded" if session.model is None else "no person box"
            return image, table, joint_figure(None, title, beta), "", "", "", None
        joint = min(max(joint, 0), len(schema.names) - 1)
        data = joint_map(session, decoded, person, joint, float(beta), view != LOGITS_VIEW)
        figure = joint_figure(data, f"person {person + 1}, {schema.names[joint]}", beta)
        compare = overlay_file(_comparison(session, decoded, person, float(beta), shown or []))  # as above
        timing = _timing_text(session, beta, (time.perf_counter() - start) * 1e3)
        notes = (
            beta_note(session, decoded, person, float(beta)),
            map_note(session, person, joint, float(beta)),
        )
        return image, table, figure, timing, *notes, compare

    def on_pick_model(self, choice: str, path: Any, model: LoadedModel | None, beta, shown, view):
        """The *Model* choice: the default model or BlazePose; the photo is analysed again with it."""
        if choice != BLAZEPOSE:
            return self.on_default_model(path, model, beta, shown, view)
        try:
            loaded = self.store.load_builtin(BLAZEPOSE)
        except CheckpointError as err:
            gr.Warning(f"BlazePose not loaded: {err}")
            return (gr.skip(), f"⚠️ **BlazePose not loaded** — {err}", *[gr.skip()] * len(self._photo_outputs))
        return (loaded, f"**Model:** {loaded.label}.", *self.on_photo(path, loaded, beta, shown, view))

    def on_load_model(self, text: str, path: Any, model: LoadedModel | None, beta, shown, view):
        """Load a visitor-named model; on failure keep the previous one and say why."""
        try:
            loaded = self.store.load_user(text)
        except CheckpointError as err:
            kept = (model or self.default_model).label if (model or self.default_model) else "no model"
            gr.Warning(f"Model not loaded: {err}")
            skipped = [gr.skip()] * len(self._photo_outputs)
            return (gr.skip(), f"⚠️ **Not loaded** — {err}\n\nStill using: {kept}.", *skipped)
        return (
            loaded,
            f"**Model:** {loaded.label} — loaded on request.",
            *self.on_photo(path, loaded, beta, shown, view),
        )

    def on_default_model(self, path: Any, model: LoadedModel | None, beta, shown, view):
        """Go back to the default model."""
        return (None, self.model_message, *self.on_photo(path, None, beta, shown, view))
