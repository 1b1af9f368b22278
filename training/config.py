"""Run configuration: a dataclass of defaults, then a YAML file, then ``key=value`` overrides.

Unknown keys and values of the wrong type fail with an error that names the key. ``method`` picks the
paper's setup (detection, ipr, debiased); ``coord_loss``, ``heatmap_epochs`` and ``decoder`` override its
parts, which is how the ablation rows of the paper's Table 6 are expressed.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# What each method means (paper §3, §4.3): coordinate loss, epochs of heatmap MSE (-1 = all), decoder.
OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("step", "cosine")
METHODS: dict[str, tuple[str, int | None, str]] = {
    "detection": ("none", -1, "argmax"),
    "ipr": ("integral", 0, "integral"),
    "debiased": ("debiased", None, "debiased"),  # None: heatmap loss for the first aug_epochs epochs
}


class ConfigError(ValueError):
    """A config key that does not exist, or a value that does not fit its key."""


@dataclass
class TrainConfig:
    """Every setting of a training run. Sizes are ``[height, width]`` in pixels."""

    # Model
    arch: str = "lite0"
    pretrained: str | None = None  # None | "timm" | "package" (lite0) | path to backbone weights
    init_from: str = ""  # a PoseModel folder or Hub repo id whose weights start the run (fine-tuning)
    input_size: list[int] = field(default_factory=lambda: [192, 144])
    beta: float = 10.0
    # Method (paper names) and the switches it sets; None = the method's default
    method: str = "debiased"
    coord_loss: str | None = None  # "none" | "integral" | "debiased"
    heatmap_epochs: int | None = None  # epochs with the heatmap MSE; -1 = all, 0 = none
    aug_epochs: int = 10  # L_aug length for the debiased method
    heatmap_weight: float = 1000.0  # scales the pixel-mean MSE to the size of an L1 in heatmap px
    decoder: str | None = None  # for validation and the saved checkpoint
    sigma: float = 2.0  # Gaussian target width, heatmap px
    # Data (COCO format)
    train_annotations: str = ""
    train_images: str = ""
    val_annotations: str = ""  # empty: hold out val_fraction of the training images
    val_images: str = ""
    val_fraction: float = 0.1
    max_train_images: int = 0  # 0 = all; a cap for quick runs
    flip_prob: float = 0.5
    scale_factor: float = 0.35
    rotation_factor: float = 45.0
    half_body_prob: float = 0.3
    # Optimisation (SimpleBaseline: Adam, warm-up, step decay; or AdamW and a cosine decay)
    epochs: int = 140
    batch_size: int = 32
    optimizer: str = "adam"  # "adam" (weight decay as L2) | "adamw" (decoupled weight decay)
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 500
    lr_schedule: str = "step"  # "step": times lr_factor at each of lr_steps | "cosine": to 0 at the last step
    lr_steps: list[int] = field(default_factory=lambda: [90, 120])
    lr_factor: float = 0.1
    ema_decay: float = 0.0  # > 0: validate and save an exponential moving average of the weights
    amp: bool = True  # mixed precision on CUDA: float16 with loss scaling
    cpu_bf16: bool = False  # bfloat16 autocast on CPU: faster where it has AVX512-BF16/AMX, slow elsewhere
    # Run
    out_dir: str = "runs/debug"
    device: str = "auto"
    num_workers: int = 2
    seed: int = 0
    val_every: int = 1
    max_steps_per_epoch: int = 0  # 0 = the whole epoch; a cap for quick runs and tests
    resume: bool = False
    hub_repo: str = ""

    def resolved(self) -> tuple[str, int, str]:
        """``(coord_loss, heatmap_epochs, decoder)`` after applying the method's defaults."""
        if self.method not in METHODS:
            raise ConfigError(f"method: unknown {self.method!r}; choose from {sorted(METHODS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer: unknown {self.optimizer!r}; choose from {list(OPTIMIZERS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"lr_schedule: unknown {self.lr_schedule!r}; choose from {list(LR_SCHEDULES)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay: expected 0 (off) or a decay in (0, 1), got {self.ema_decay}")
        coord, heatmap, decoder = METHODS[self.method]
        heatmap = self.aug_epochs if heatmap is None else heatmap
        return (
            self.coord_loss if self.coord_loss is not None else coord,
            self.heatmap_epochs if self.heatmap_epochs is not None else heatmap,
            self.decoder if self.decoder is not None else decoder,
        )


def load_config(path: str | Path | None, overrides: list[str] = (), cls: type = TrainConfig) -> Any:
    """Defaults of ``cls``, then the YAML file at ``path`` (if any), then ``key=value`` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, encoding="utf-8") as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of key: value, got {type(loaded).__name__}")
        values.update(loaded)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        values[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
    return build_config(values, cls)


def build_config(values: dict[str, Any], cls: type = TrainConfig) -> Any:
    """Instantiate ``cls`` from a mapping, checking each key exists and each value fits its type."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(sorted(known))}")
    return cls(**{key: coerce(key, value, hints[key]) for key, value in values.items()})


def coerce(key: str, value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation`` (bool, int, float, str, list[...], X | None) or ConfigError."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return coerce(key, value, inner[0]) if len(inner) == 1 else value
    if origin is list:
        if isinstance(value, str):  # "256,192" from a command line
            value = [v for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [coerce(f"{key}[{i}]", v, args[0]) for i, v in enumerate(value)]
    return _coerce_scalar(key, value, annotation)


def _coerce_scalar(key: str, value: Any, annotation: type) -> Any:
    wrong = ConfigError(f"{key}: expected {annotation.__name__}, got {value!r}")
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise wrong
    if isinstance(value, bool):  # bool is an int in Python; never accept it as a number
        raise wrong
    try:
        if annotation is int:
            if isinstance(value, float) and not value.is_integer():
                raise wrong
            return int(value)
        if annotation is float:
            return float(value)  # also "1e-3", which YAML 1.1 reads as a string
    except (TypeError, ValueError):
        raise wrong from None
    if annotation is str:
        if isinstance(value, dict | list):
            raise wrong
        return str(value)
    raise ConfigError(f"{key}: unsupported type {annotation!r}")


def save_config(config: Any, path: str | Path) -> None:
    """Write the resolved config as YAML, readable back by :func:`load_config`."""
    Path(path).write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False), encoding="utf-8")
