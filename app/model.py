"""Pose model loading for the app: the bundled default, ``POSE_MODEL``, Hub repo ids and (with ``--local``)
local folders, safetensors only, cached and shared by every session.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from torch import nn

from pose.blazepose import BlazePoseError, BlazePoseHeatmaps
from pose.models import CheckpointError, PoseModel

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_MODEL_DIR = ASSETS / "model"
# The second model of the picker: MediaPipe's BlazePose Full, shipped in assets/ (see assets/README.md).
BLAZEPOSE = "blazepose-full"
BLAZEPOSE_FILE = ASSETS / "blazepose" / "pose_landmark_full.tflite"
BLAZEPOSE_LABEL = (
    "BlazePose GHUM 3D Full (Google MediaPipe, Apache-2.0), trained elsewhere, its 64×64 heatmaps of the "
    "17 COCO joints decoded here by our three decoders. Its heatmap is the **sigmoid** of the network's "
    "logits: background ≈ 0, peak up to ≈ 1, the zero-background setting the compensation assumes. It was "
    "never trained with a softmax, so no β is its own: β = 10 is where the bias shows (LSPET: integral "
    "PCK far below argmax, debiased recovers most of it)"
)
MODEL_ENV = "POSE_MODEL"
# Loaded models stay in memory for every session; visitors loading many Hub repos must not exhaust it.
MAX_CACHED_MODELS = 3


class ModelRefused(CheckpointError):
    """A source the app will not load here (a local path on a public Space, an empty name)."""


@dataclass(frozen=True)
class LoadedModel:
    """A model shared by all sessions, and where it came from.

    Attributes:
        model: the PoseModel (or ``pose.blazepose.BlazePoseHeatmaps``) in eval mode on the CPU (never
            modified after loading).
        source: the folder or Hub repo id it was loaded from (the cache key).
        label: short human-readable description for the UI.
    """

    model: nn.Module
    source: str
    label: str


def local_folders_allowed(flag: bool) -> bool:
    """Whether visitors may load local folders: asked for (``--local`` or ``POSE_APP_LOCAL=1``) and not on a
    Hugging Face Space (``SPACE_ID`` set), where a visitor must never make the server read its own disk."""
    return (bool(flag) or os.environ.get("POSE_APP_LOCAL") == "1") and not os.environ.get("SPACE_ID")


def default_source(bundled_dir: Path | None = None) -> tuple[str | None, str]:
    """The default checkpoint and a sentence saying why it is the default.

    ``POSE_MODEL`` (a folder or a Hub repo id) wins; else the bundled ``assets/model/`` if it exists;
    else None (the photo tab then says so; the other tabs need no model).
    """
    bundled_dir = BUNDLED_MODEL_DIR if bundled_dir is None else bundled_dir
    env = os.environ.get(MODEL_ENV, "").strip()
    if env:
        return env, f"set by the {MODEL_ENV} environment variable"
    if (bundled_dir / "config.json").is_file():
        return str(bundled_dir), "the bundled model (assets/model/)"
    return None, (
        "the bundled model (assets/model/) is not there yet and POSE_MODEL is not set. Load a checkpoint "
        "with the *Model picker* below, or start the app with POSE_MODEL=folder-or-hub-repo-id."
    )


def describe(model: PoseModel, source: str) -> str:
    """One line about a loaded model: where from, architecture, schema, input size, decoding defaults."""
    h, w = model.input_size
    name = Path(source).name if os.path.isdir(source) else source
    line = (
        f"`{name}`: {model.arch}, {model.schema.name} ({model.num_keypoints} joints), input {h}×{w}, "
        f"heatmap {model.heatmap_size[0]}×{model.heatmap_size[1]}, trained default β = {model.beta:g}"
    )
    scores = held_out_scores(Path(source)) if os.path.isdir(source) else None
    return f"{line}. {scores}" if scores else line


def held_out_scores(folder: Path) -> str | None:
    """What ``training.export`` measured (its evaluation.json), in one sentence; None without the file."""
    try:
        evaluation = json.loads((folder / "evaluation.json").read_text(encoding="utf-8"))
        parts = [f"{name} {m['pck@0.2']:.2f}" for name, m in evaluation["decoders"].items()]
        n = int(evaluation["n_images"])
    except (OSError, ValueError, KeyError, TypeError):  # absent or not ours: say nothing rather than guess
        return None
    return f"Held-out PCK@0.2 on {n} images: {', '.join(parts)} (data, licence and recipe: its README.md)"


class ModelStore:
    """Loads checkpoints once and shares them between sessions (a small LRU cache, thread-safe).

    Args:
        allow_local: whether user-entered sources may be local folders (``--local``); never on a Space,
            so visitors cannot probe the server's disk. The default source is trusted either way: it is
            chosen by whoever started the app.
        default: the default source; None picks :func:`default_source`.
    """

    def __init__(self, allow_local: bool = False, default: str | None = None):
        self.allow_local = bool(allow_local)
        if default is None:
            self.default, self.default_reason = default_source()
        else:
            self.default, self.default_reason = str(default), "given to the app"
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()  # guards the cache; loading a new source holds it (rare, ~1 s)

    def load_default(self) -> LoadedModel | None:
        """The default model, or None when there is none.

        Raises:
            CheckpointError: if the default source cannot be loaded (the message says why).
        """
        return None if self.default is None else self._get(self.default)

    def load_builtin(self, name: str) -> LoadedModel:
        """A model shipped with the app by name: only ``BLAZEPOSE`` for now.

        Raises:
            CheckpointError: an unknown name, or the .tflite file / ai-edge-litert cannot be used.
        """
        if name != BLAZEPOSE:
            raise ModelRefused(f"no built-in model {name!r}; the app ships {BLAZEPOSE!r}")
        return self._get(BLAZEPOSE)

    def load_user(self, text: str) -> LoadedModel:
        """A model named by a visitor: a Hub repo id, or (only with ``allow_local``) a local folder.

        Raises:
            CheckpointError: ModelRefused when the name is not allowed here; otherwise the loader's error
                (offline Hub, missing files, pickle weights, mismatched weights).
        """
        source = (text or "").strip()
        if not source:
            raise ModelRefused("enter a Hub repo id such as 'owner/name'" + self._local_hint())
        if not self.allow_local:
            self._check_hub_id(source)
        elif source.startswith("~"):
            source = os.path.expanduser(source)
        return self._get(source)

    def _local_hint(self) -> str:
        return " or a local checkpoint folder" if self.allow_local else ""

    def _check_hub_id(self, source: str) -> None:
        # The loader tries a local folder first; only accept names that are repo ids and no local path,
        # so that no user-entered string ever reads the server's disk.
        try:
            validate_repo_id(source)
        except HFValidationError:
            raise ModelRefused(
                f"{source!r} is not a Hub repo id ('owner/name'). Local folders can be loaded only when "
                "the app is started locally with `python app.py --local`."
            ) from None
        if os.path.exists(source) and source != self.default:
            raise ModelRefused(
                f"{source!r} names a path on the server, which this app does not load for visitors; "
                "start it locally with `python app.py --local` to load local folders."
            )

    def _get(self, source: str) -> LoadedModel:
        with self._lock:
            if source in self._models:
                self._models.move_to_end(source)
                return self._models[source]
            if source == BLAZEPOSE:
                try:
                    model = BlazePoseHeatmaps(BLAZEPOSE_FILE)
                except BlazePoseError as err:
                    raise CheckpointError(str(err)) from None
                loaded = LoadedModel(model=model, source=source, label=BLAZEPOSE_LABEL)
            else:  # CheckpointError on any failure, safetensors only
                model = PoseModel.from_pretrained(source)
                loaded = LoadedModel(model=model, source=source, label=describe(model, source))
            self._models[source] = loaded
            while len(self._models) > MAX_CACHED_MODELS:
                self._models.popitem(last=False)  # sessions still holding it keep it alive
            return loaded
