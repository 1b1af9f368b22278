"""Tab 1, "Your photo": its layout (upload / webcam / examples, the overlay, people found or boxes drawn by
hand, the per-joint table, one joint's heatmap, the beta slider, the model picker) and the wiring of its
events to :mod:`app.photo_events`, whose records are addressed here to the components they update.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from app import photo_events as events
from app.detection import PersonDetector
from app.model import ModelStore
from app.photo import TABLE_COLUMNS
from app.photo_events import LOGITS_VIEW, SOFTMAX_VIEW, Analysed, Drawn, ModelSwitch
from app.photo_models import DEFAULT_CHOICE, MODEL_CHOICES, PhotoModels
from app.plots import DEFAULT_OVERLAYS, OVERLAY_CHOICES

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
DEFAULT_BETA = 10.0
TABLE_LABEL = "Per joint, in the original photo's pixels (shift = |J_o − J_r|, score = J_o's confidence)"
COMPARE_LABEL = "The selected person at the model's trained β (left) and at the slider's β (right)"
BOX_HELP = (
    "**Someone missing?** Click two opposite corners of their box on the image above (or type the box "
    "below). **A wrong box?** Pick that person in *Person* and remove it. The pose runs on the boxes shown."
)
# Redraws follow the slider and the view controls: only the last of a burst of moves counts.
REDRAW = {"trigger_mode": "always_last", "show_progress": "hidden", "concurrency_limit": 4}
# Box edits rerun the network: one at a time per click, and no queue of repeated clicks.
EDIT = {"concurrency_limit": 2, "trigger_mode": "once"}
# Model switches load weights (shared by every session) and rerun the network; preprocess=False: the photo
# arrives as Gradio's raw file record (see app.photo_events.photo_source).
SWITCH = {"concurrency_limit": 1, "preprocess": False}


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


@dataclass(frozen=True)
class PhotoUI:
    """The tab's components, by what they show; the ``*_outputs`` lists fix each endpoint's API order."""

    model_md: gr.Markdown  # which model runs (or that none does, and why)
    choice: gr.Radio  # the Model radio: the default, BlazePose, or a model loaded by name
    photo: gr.Image
    beta: gr.Slider
    beta_md: gr.Markdown  # what beta does, for the model loaded
    overlays: gr.CheckboxGroup  # which estimates and boxes are drawn
    person: gr.Dropdown
    compare: gr.Image  # the person at the trained beta beside the slider's beta
    status: gr.Markdown
    overlay: gr.Image
    timing: gr.Markdown
    box_text: gr.Textbox
    add_btn: gr.Button
    remove_btn: gr.Button
    table: gr.Dataframe
    joint: gr.Dropdown
    view: gr.Radio  # softmax at beta, or the logits
    heatmap: gr.Plot
    map_md: gr.Markdown  # Omega_1..4 and the map's background level
    model_text: gr.Textbox
    load_btn: gr.Button
    default_btn: gr.Button
    model: gr.State  # the session's LoadedModel; None means the default (shared, never copied)
    session: gr.State  # the session's PhotoSession (photo + logits, a few MB)

    @property
    def drawn_outputs(self) -> list[gr.components.Component]:
        """What a redraw updates, in the order of the /redecode endpoint's result."""
        return [self.overlay, self.table, self.heatmap, self.timing, self.beta_md, self.map_md, self.compare]

    @property
    def photo_outputs(self) -> list[gr.components.Component]:
        """What a new photo or a box edit updates, in the order of the /analyse, /add_box and /remove_box
        endpoints' results (the teaching outputs, beta note, map note and comparison, last)."""
        return [
            *(self.session, self.person, self.joint, self.overlay, self.table, self.heatmap),
            *(self.status, self.timing, self.beta_md, self.map_md, self.compare),
        ]

    @property
    def model_outputs(self) -> list[gr.components.Component]:
        """What a model switch updates: the session's model, the model line, and the photo outputs."""
        return [self.model, self.model_md, *self.photo_outputs]

    @property
    def photo_inputs(self) -> list[gr.components.Component]:
        """What analysing the photo reads: the photo, the session's model, beta and the view controls."""
        return [self.photo, self.model, self.beta, self.overlays, self.view]

    @property
    def render_inputs(self) -> list[gr.components.Component]:
        """What a redraw (and a click or a removal) reads: the session, the selection and the view."""
        return [self.session, self.person, self.joint, self.beta, self.overlays, self.view]

    def drawn(self, drawn: Drawn) -> dict[gr.components.Component, Any]:
        """A redraw, addressed to its components."""
        return {
            self.overlay: drawn.overlay,
            self.table: drawn.table,
            self.heatmap: drawn.heatmap,
            self.timing: drawn.timing,
            self.beta_md: drawn.beta_note,
            self.map_md: drawn.map_note,
            self.compare: drawn.compare,
        }

    def analysed(self, analysed: Analysed | None) -> dict[gr.components.Component, Any]:
        """Every photo output of ``analysed``; None changes nothing."""
        if analysed is None:
            return {self.session: gr.skip()}
        chosen = {self.session: analysed.session, self.person: analysed.people, self.joint: analysed.joints}
        return {**chosen, self.status: analysed.status, **self.drawn(analysed.drawn)}

    def switched(self, switch: ModelSwitch) -> dict[gr.components.Component, Any]:
        """A model switch; one that failed updates the model line only."""
        if switch.analysed is None:
            return {self.model_md: switch.message}
        return {self.model: switch.model, self.model_md: switch.message, **self.analysed(switch.analysed)}


def create_photo_tab(store: ModelStore, detector: PersonDetector) -> PhotoUI:
    """Tab 1 in the current Blocks context: its layout, then its events.

    Args:
        store: the shared models.
        detector: the shared person detector.

    Returns:
        The tab's components.
    """
    models = PhotoModels(store, detector)
    ui = _layout(models.model_message, store.allow_local, picker_open=models.default_model is None)
    _wire_photo(ui, models)
    _wire_boxes(ui)
    _wire_models(ui, models)
    return ui


# --- Layout ---------------------------------------------------------------------------------------------


def _layout(model_message: str, allow_local: bool, picker_open: bool) -> PhotoUI:
    """Every component, in page order; which model runs stays in sight at the top."""
    model_md = gr.Markdown(model_message, elem_id="model-status")
    choice = gr.Radio(MODEL_CHOICES, value=DEFAULT_CHOICE, label="Model", elem_id="model-choice")
    with gr.Row():
        with gr.Column(scale=2, min_width=300):
            left = _photo_column()
        with gr.Column(scale=3):
            right = _overlay_column()
    with gr.Row():
        below = _joint_row()
    with gr.Accordion("Model picker: another checkpoint", open=picker_open):
        picker = _model_picker(allow_local)
    model = gr.State(None)
    # The session's PhotoSession (photo + logits, a few MB): dropped 30 minutes after its last use.
    session = gr.State(None, time_to_live=1800)
    parts = {**left, **right, **below, **picker}
    return PhotoUI(model_md=model_md, choice=choice, model=model, session=session, **parts)


def _photo_column() -> dict[str, Any]:
    """The photo input and its examples, beta, the overlays, the person, the comparison and the status."""
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
    beta_md = gr.Markdown(elem_id="beta-note")
    overlays = gr.CheckboxGroup(list(OVERLAY_CHOICES), value=DEFAULT_OVERLAYS, label="Overlays")
    person = gr.Dropdown([], label="Person", interactive=True)
    compare = gr.Image(type="numpy", format="jpeg", interactive=False, label=COMPARE_LABEL, elem_id="compare")
    status = gr.Markdown(elem_id="photo-status")
    return dict(
        photo=photo,
        beta=beta,
        beta_md=beta_md,
        overlays=overlays,
        person=person,
        compare=compare,
        status=status,
    )


def _overlay_column() -> dict[str, Any]:
    """The keypoints on the photo (click it to draw a box), the re-decode timing and the box controls."""
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
    return dict(overlay=overlay, timing=timing, box_text=box_text, add_btn=add_btn, remove_btn=remove_btn)


def _joint_row() -> dict[str, Any]:
    """The per-joint table beside the heatmap of one joint, with its notes."""
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
        map_md = gr.Markdown(elem_id="map-note")
    return dict(table=table, joint=joint, view=view, heatmap=heatmap, map_md=map_md)


def _model_picker(allow_local: bool) -> dict[str, Any]:
    """A Hub repo id (or, with ``allow_local``, a folder) to load, and the way back to the default."""
    with gr.Row():
        model_text = gr.Textbox(
            label="Hub repo id or local checkpoint folder" if allow_local else "Hugging Face Hub repo id",
            placeholder="owner/name" + (" or /path/to/checkpoint" if allow_local else ""),
            scale=3,
        )
        load_btn = gr.Button("Load model", scale=1)
        default_btn = gr.Button("Default model", scale=1)
    return dict(model_text=model_text, load_btn=load_btn, default_btn=default_btn)


# --- Wiring ---------------------------------------------------------------------------------------------


def _addressed(handler: Callable[..., Any], address: Callable[[Any], dict]) -> Callable[..., dict]:
    """``handler`` as an event function: the record it returns, addressed to components by ``address``.

    functools.wraps keeps the handler's signature and type hints, from which Gradio reads what to pass
    (e.g. the ``gr.SelectData`` of a click) and names the endpoint.
    """

    @functools.wraps(handler)
    def event(*args: Any) -> dict:
        return address(handler(*args))

    return event


def _wire_photo(ui: PhotoUI, models: PhotoModels) -> None:
    """A new photo runs the network; the slider and the view controls only re-decode and redraw."""
    ui.photo.change(
        _addressed(models.on_photo, ui.analysed),
        ui.photo_inputs,
        ui.photo_outputs,
        api_name="analyse",
        concurrency_limit=2,
        preprocess=False,  # the photo arrives as Gradio's raw file record (see photo_source)
    )
    render = _addressed(events.render, ui.drawn)
    ui.beta.change(render, ui.render_inputs, ui.drawn_outputs, api_name="redecode", **REDRAW)
    for control in (ui.overlays, ui.view, ui.person, ui.joint):
        control.input(render, ui.render_inputs, ui.drawn_outputs, api_visibility="undocumented", **REDRAW)


def _wire_boxes(ui: PhotoUI) -> None:
    """Clicks on the overlay, the Add and Remove buttons: edit the session's boxes, rerun the pose."""
    inputs = ui.render_inputs
    # A click carries gr.SelectData, which API clients cannot send: they use /add_box instead.
    on_click = _addressed(events.on_click, ui.analysed)
    ui.overlay.select(on_click, inputs, ui.photo_outputs, api_visibility="private", **EDIT)
    typed = [ui.session, ui.box_text, ui.joint, ui.beta, ui.overlays, ui.view]
    on_add = _addressed(events.on_add_box, ui.analysed)
    ui.add_btn.click(on_add, typed, ui.photo_outputs, api_name="add_box", **EDIT)
    on_remove = _addressed(events.on_remove_box, ui.analysed)
    ui.remove_btn.click(on_remove, inputs, ui.photo_outputs, api_name="remove_box", **EDIT)


def _wire_models(ui: PhotoUI, models: PhotoModels) -> None:
    """The Load and Default buttons and the Model radio: analyse the photo again with the model chosen;
    then the radio shows the session's model (also after a model that failed to load)."""
    photo = ui.photo_inputs
    switches = (
        (ui.load_btn.click, models.on_load_model, [ui.model_text, *photo], "load_model"),
        (ui.default_btn.click, models.on_default_model, photo, "default_model"),
        (ui.choice.input, models.on_pick_model, [ui.choice, *photo], "pick_model"),
    )
    for trigger, handler, inputs, api_name in switches:
        event = trigger(
            _addressed(handler, ui.switched), inputs, ui.model_outputs, api_name=api_name, **SWITCH
        )
        event.then(models.model_choice, ui.model, ui.choice, api_visibility="private", show_progress="hidden")
