"""Strict, safetensors-only checkpoint loading (config.json + model.safetensors) from a folder or the Hub.

Every failure raises CheckpointError, whose message names the checkpoint and the cause.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HUB_KWARGS = ("force_download", "token", "cache_dir", "local_files_only", "revision")
# Weights in these formats are unpickled to load, which can run arbitrary code: never loaded here.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_DERIVED_KEYS = ("heatmap_size",)


class CheckpointError(RuntimeError):
    """A checkpoint could not be loaded; the message names the checkpoint and the cause."""


def load_checkpoint(
    cls: type[nn.Module],
    checkpoint: str,
    hub_kwargs: dict[str, Any],
    map_location: str | torch.device = "cpu",
    overrides: dict[str, Any] | None = None,
) -> Any:
    """Build ``cls`` from config.json and load model.safetensors into it with strict key and shape checks.

    Args:
        cls: ``PoseModel`` (passed in, so this module does not import it).
        checkpoint: A local folder or a Hub repo id.
        hub_kwargs: Passed to ``hf_hub_download`` (revision, cache_dir, token, ...).
        map_location: Device the model is moved to once loaded.
        overrides: ``__init__`` arguments replacing config.json's.

    Returns:
        The model in eval mode.

    Raises:
        CheckpointError: See the module docstring.
    """
    config_path, weights_path = _resolve_files(checkpoint, hub_kwargs)
    config = _read_config(cls, config_path, checkpoint)
    heatmap_size = config.pop("heatmap_size", None)  # derived: checked, not passed
    config.update(overrides or {})
    try:
        model = cls(**config)
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"checkpoint {checkpoint!r}: config.json has invalid fields: {err}") from err
    if heatmap_size is not None and heatmap_size != list(model.heatmap_size):
        raise CheckpointError(
            f"checkpoint {checkpoint!r}: {CONFIG_FILE} has heatmap_size {heatmap_size}, but input_size "
            f"{list(model.input_size)} gives {list(model.heatmap_size)}"
        )
    try:
        state = load_file(weights_path)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(
            f"checkpoint {checkpoint!r}: {WEIGHTS_FILE} is corrupt or unreadable ({err})"
        ) from err
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"checkpoint {checkpoint!r}: {WEIGHTS_FILE} does not match the architecture in {CONFIG_FILE} "
            f"({config.get('arch')!r}): {err}"
        ) from err
    return model.to(map_location).eval()


def _resolve_files(checkpoint: str, hub_kwargs: dict[str, Any]) -> tuple[Path, Path]:
    """Paths of config.json and model.safetensors, from a local folder or downloaded from the Hub."""
    if os.path.isdir(checkpoint):
        return _local_files(Path(checkpoint))
    try:
        validate_repo_id(checkpoint)
    except HFValidationError:
        what = "a file, not a folder" if os.path.exists(checkpoint) else "no such folder"
        raise CheckpointError(
            f"checkpoint {checkpoint!r}: {what} (and not a Hub repo id of the form 'owner/name')"
        ) from None
    return _download(checkpoint, CONFIG_FILE, hub_kwargs), _download(checkpoint, WEIGHTS_FILE, hub_kwargs)


def _local_files(folder: Path) -> tuple[Path, Path]:
    config, weights = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    if not config.is_file():
        raise CheckpointError(f"checkpoint {str(folder)!r}: the folder has no {CONFIG_FILE}")
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        found = f"; {', '.join(pickles)} is pickle, which is never loaded (unpickling can run code)"
        raise CheckpointError(
            f"checkpoint {str(folder)!r}: the folder has no {WEIGHTS_FILE}{found if pickles else ''}. "
            "Only safetensors weights are loaded: re-save with PoseModel.save_pretrained or "
            "safetensors.torch.save_file."
        )
    return config, weights


def _download(repo_id: str, filename: str, hub_kwargs: dict[str, Any]) -> Path:
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, **hub_kwargs))
    except Exception as err:  # network, HTTP and cache errors vary by version: name the cause, wrap all
        raise CheckpointError(
            f"checkpoint {repo_id!r}: is not a local folder, and {_hub_cause(err, filename)} "
            f"({type(err).__name__}: {err})"
        ) from err


def _hub_cause(err: Exception, filename: str) -> str:
    # LocalEntryNotFoundError subclasses EntryNotFoundError: test it first.
    if isinstance(err, LocalEntryNotFoundError):
        return (
            f"its {filename} could not be fetched from the Hub (offline: HF_HUB_OFFLINE is set or there is "
            "no connection) and is not in the local cache"
        )
    if isinstance(err, EntryNotFoundError):
        if filename == WEIGHTS_FILE:
            return (
                f"the Hub repo has no {WEIGHTS_FILE} (pickle weights, e.g. pytorch_model.bin, are not loaded)"
            )
        return f"the Hub repo has no {filename}"
    if isinstance(err, RevisionNotFoundError):
        return "the Hub repo has no such revision"
    if isinstance(err, RepositoryNotFoundError):
        return "no such Hub repo (or it is private or gated: log in or pass token=)"
    return f"downloading {filename} from the Hub failed"


def _read_config(cls: type[nn.Module], path: Path, checkpoint: str) -> dict[str, Any]:
    """config.json as ``__init__`` arguments (+ ``heatmap_size`` if present); ``format`` checked, removed."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint {checkpoint!r}: {CONFIG_FILE} is not valid JSON ({err})") from err
    if not isinstance(config, dict):
        raise CheckpointError(f"checkpoint {checkpoint!r}: {CONFIG_FILE} is not a JSON object")
    fmt = config.pop("format", cls.FORMAT)
    if fmt != cls.FORMAT:
        raise CheckpointError(
            f"checkpoint {checkpoint!r}: {CONFIG_FILE} has format {fmt!r}; this version reads {cls.FORMAT}"
        )
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self")
    unknown = sorted(set(config) - set(params) - set(_DERIVED_KEYS))
    missing = sorted(k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in config)
    if unknown or missing:
        raise CheckpointError(
            f"checkpoint {checkpoint!r}: {CONFIG_FILE} has unknown fields {unknown} / lacks fields {missing}"
        )
    return config
