"""The photo tab's events that need the shared models: a new photo (detector + network), and the model
choice (the *Model* radio, the picker, going back to the default). Each returns a record of
:mod:`app.photo_events` (:class:`Analysed`, :class:`ModelSwitch`); no handler knows the layout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from app.detection import PersonDetector
from app.images import PhotoError, read_photo
from app.model import BLAZEPOSE, CheckpointError, LoadedModel, ModelStore
from app.photo import analyse, decode
from app.photo_events import Analysed, ModelSwitch, analysed, photo_source

DEFAULT_CHOICE = "default"
MODEL_CHOICES = [
    ("The default model (above)", DEFAULT_CHOICE),
    ("BlazePose Full (Google MediaPipe): a zero-background heatmap model", BLAZEPOSE),
]


class PhotoModels:
    """The events that need the shared models: a new photo, and the model choice (picker, buttons).

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

    def on_photo(
        self, payload: Any, model: LoadedModel | None, beta: float, shown: list, view: str
    ) -> Analysed:
        """Read the photo, find people, run the network once (``model``, None: the default)."""
        source = photo_source(payload)
        if source is None:
            return Analysed.empty()
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
        return analysed(session, 0, joint, beta, shown, view)

    def on_pick_model(
        self, choice: str, path: Any, model: LoadedModel | None, beta, shown, view
    ) -> ModelSwitch:
        """The *Model* choice: the default model or BlazePose; the photo is analysed again with it."""
        if choice != BLAZEPOSE:
            return self.on_default_model(path, model, beta, shown, view)
        try:
            loaded = self.store.load_builtin(BLAZEPOSE)
        except CheckpointError as err:
            gr.Warning(f"BlazePose not loaded: {err}")
            return ModelSwitch(f"⚠️ **BlazePose not loaded** — {err}")
        return ModelSwitch(
            f"**Model:** {loaded.label}.", loaded, self.on_photo(path, loaded, beta, shown, view)
        )

    def on_load_model(
        self, text: str, path: Any, model: LoadedModel | None, beta, shown, view
    ) -> ModelSwitch:
        """Load a visitor-named model; on failure keep the previous one and say why."""
        try:
            loaded = self.store.load_user(text)
        except CheckpointError as err:
            kept = (model or self.default_model).label if (model or self.default_model) else "no model"
            gr.Warning(f"Model not loaded: {err}")
            return ModelSwitch(f"⚠️ **Not loaded** — {err}\n\nStill using: {kept}.")
        message = f"**Model:** {loaded.label} — loaded on request."
        return ModelSwitch(message, loaded, self.on_photo(path, loaded, beta, shown, view))

    def on_default_model(self, path: Any, model: LoadedModel | None, beta, shown, view) -> ModelSwitch:
        """Go back to the default model."""
        return ModelSwitch(self.model_message, None, self.on_photo(path, None, beta, shown, view))

    def model_choice(self, model: LoadedModel | None) -> gr.Radio:
        """The *Model* radio showing the session's model (None: the default).

        A model loaded by name is neither choice: it becomes a third one while it is the session's model.
        """
        if model is None or model.source == self.store.default:
            return gr.Radio(choices=MODEL_CHOICES, value=DEFAULT_CHOICE)
        if model.source == BLAZEPOSE:
            return gr.Radio(choices=MODEL_CHOICES, value=BLAZEPOSE)
        name = Path(model.source).name if os.path.isdir(model.source) else model.source
        loaded = (f"{name} (loaded with the Model picker below)", model.source)
        return gr.Radio(choices=[*MODEL_CHOICES, loaded], value=model.source)
