"""Run configuration: a dataclass of defaults, then a YAML file, then ``key=value`` overrides.

Unknown keys and values of the wrong type fail with an error that names the key. ``method`` picks the
paper's setup (detection, ipr, debiased); ``coord_loss``, ``heatmap_epochs`` and ``decoder`` override its
parts, which is how the ablation rows of the paper's Table 6 are expressed. The augmentation is a nested
``pose.data.AugmentConfig``: ``augment: {rotation_factor: 30}`` in YAML, ``augment.rotation_factor=30`` on
the command line. The flat keys of configs written before it was nested (``flip_prob``, ``scale_factor``,
``rotation_factor``, ``half_body_prob``: ``LEGACY_KEYS``) still load, into ``augment``, so old runs resume.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pose.data.transforms import AugmentConfig

OPTIMIZERS = ("adam", "adamw")
LR_SCHEDULES = ("step", "cosine")
COORD_LOSSES = ("none", "integral", "debiased")
HEATMAP_LOSSES = ("always", "never", "aug_epochs")


@dataclass(frozen=True)
class Method:
    """What one of the paper's methods means (paper §3, §4.3).

    Attributes:
        coord_loss: the L1 on coordinates, one of ``COORD_LOSSES`` (``none``: no coordinate loss).
        heatmap_loss: when the heatmap MSE is added: ``always`` (L_de), ``never``, or ``aug_epochs``
            (L_aug, for the config's first ``aug_epochs`` epochs).
        decoder: the decoder that validates and ships, a key of ``pose.decode.DECODERS``.
    """

    coord_loss: str
    heatmap_loss: str
    decoder: str

    def heatmap_epochs(self, aug_epochs: int) -> int:
        """The trainer's count of heatmap-MSE epochs: -1 every epoch, 0 none, N the first N."""
        return {"always": -1, "never": 0, "aug_epochs": aug_epochs}[self.heatmap_loss]


METHODS: dict[str, Method] = {
    "detection": Method("none", "always", "argmax"),
    "ipr": Method("integral", "never", "integral"),
    "debiased": Method("debiased", "aug_epochs", "debiased"),
}
# Keys of configs from before the augmentation was nested (runs in progress, old YAML): key -> augment.key
LEGACY_KEYS: dict[str, str] = {
    key: f"augment.{key}" for key in ("flip_prob", "scale_factor", "rotation_factor", "half_body_prob")
}
# Backbones have stride 32: other input sizes give no exact (H/4, W/4) heatmap.
SIZE_MULTIPLE = 32


class ConfigError(ValueError):
    """A config key that does not exist, or a value that does not fit its key."""


def setting(default: Any, help: str) -> Any:
    """A dataclass field with its meaning attached (``metadata["help"]``), listed by ``--help``.

    Lists get a fresh copy per instance (``default_factory``), as dataclasses require.
    """
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Every setting of a training run. Sizes are ``[height, width]`` in pixels.

    The defaults are the paper's COCO setup (SimpleBaseline's 256x192 input and 140-epoch schedule) with
    the small Lite0 network; ``training/configs/`` holds the paper's and the CPU-scale runs.
    """

    # Model
    arch: str = setting("lite0", "network: lite0/1/2 | simplebaseline_resnet50/101/152 | hrnet_w32/w48")
    pretrained: str | None = setting(
        None,
        "backbone start: none (random) | timm (download) | package (lite0/1/2, offline) | a weights file",
    )
    init_from: str = setting("", "a PoseModel folder or Hub repo id whose weights start the run (fine-tune)")
    input_size: list[int] = setting(
        [256, 192], "[height, width] of the network input, px, both divisible by 32"
    )
    beta: float = setting(10.0, "softmax sharpness of the integral and debiased decoders and losses, > 0")
    extra_betas: list[float] = setting(
        [], "more betas for the L1 on coordinates (mean over beta and these): e.g. [3] keeps J_o right at 3"
    )
    # Method (paper names) and the switches it sets; None = the method's default
    method: str = setting("debiased", "detection | ipr | debiased: sets coord_loss, heatmap_epochs, decoder")
    coord_loss: str | None = setting(
        None, "override the method's L1 on coordinates: none | integral | debiased"
    )
    heatmap_epochs: int | None = setting(
        None, "override the method's epochs of heatmap MSE: -1 = every epoch, 0 = none, N = the first N"
    )
    aug_epochs: int = setting(10, "epochs of L_aug (heatmap MSE) at the start of the debiased method")
    heatmap_weight: float = setting(
        1000.0, "factor on the pixel-mean heatmap MSE (brings it to the size of an L1 in px)"
    )
    decoder: str | None = setting(
        None, "override the method's decoder (validation, saved model): argmax | integral | debiased"
    )
    sigma: float = setting(2.0, "width of the Gaussian heatmap targets, heatmap px, > 0")
    # Data (COCO format)
    train_annotations: str = setting("", "COCO keypoint JSON to train on (required)")
    train_images: str = setting("", "folder holding the training file's images (required)")
    val_annotations: str = setting("", "COCO keypoint JSON to validate on; empty: hold out val_fraction")
    val_images: str = setting("", "folder of the validation images; empty: train_images")
    val_fraction: float = setting(0.1, "share of the training images held out without val_annotations")
    max_train_images: int = setting(0, "use at most this many training images (quick runs); 0 = all")
    augment: AugmentConfig = field(
        default_factory=AugmentConfig,
        metadata={"help": "training augmentation (pose.data.AugmentConfig); its keys follow as augment.KEY"},
    )
    # Optimisation (SimpleBaseline: Adam, warm-up, step decay; or AdamW and a cosine decay)
    epochs: int = setting(140, "passes over the training set")
    batch_size: int = setting(32, "crops per step (per process under torchrun)")
    optimizer: str = setting("adam", "adam (weight decay as L2) | adamw (decoupled weight decay)")
    lr: float = setting(1e-3, "peak learning rate, > 0")
    weight_decay: float = setting(0.0, "weight decay, >= 0")
    warmup_steps: int = setting(500, "steps of linear learning-rate warm-up from 0")
    lr_schedule: str = setting("step", "step: times lr_factor at each of lr_steps | cosine: to 0 at the end")
    lr_steps: list[int] = setting([90, 120], "epochs at which the step schedule multiplies lr by lr_factor")
    lr_factor: float = setting(0.1, "the step schedule's factor, in (0, 1]")
    ema_decay: float = setting(0.0, "> 0: validate and save an exponential moving average of the weights")
    amp: bool = setting(True, "mixed precision on CUDA: float16 with loss scaling")
    cpu_bf16: bool = setting(False, "bfloat16 autocast on CPU: faster with AVX512-BF16/AMX, slow elsewhere")
    # Run
    out_dir: str = setting("runs/debug", "folder of the run: config, split, metrics, last.pt, best/, model/")
    device: str = setting("auto", "auto (CUDA if present) | cpu | cuda | cuda:N")
    num_workers: int = setting(2, "data-loading processes; 0 loads in the training process")
    seed: int = setting(0, "seeds the weights, the hold-out split and the augmentation")
    split_seed: int | None = setting(
        None, "seeds the hold-out split instead of seed (runs over seeds that share one hold-out)"
    )
    val_every: int = setting(1, "validate every N epochs (and after the last), >= 1")
    checkpoint_minutes: float = setting(
        10.0, "also save last.pt every N minutes inside an epoch (resume goes on from that step); 0 = off"
    )
    max_steps_per_epoch: int = setting(0, "cap on steps per epoch (quick runs, tests); 0 = the whole epoch")
    resume: bool = setting(False, "continue from out_dir/last.pt when it exists")
    hub_repo: str = setting("", "push the final model to this Hugging Face Hub repo id (user/name)")

    @property
    def held_out_seed(self) -> int:
        """The seed of the hold-out split: ``split_seed`` when set, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def resolved(self) -> tuple[str, int, str]:
        """``(coord_loss, heatmap_epochs, decoder)`` after applying the method's defaults."""
        self._check_choices()
        method = METHODS[self.method]
        heatmap_epochs = method.heatmap_epochs(self.aug_epochs)
        return (
            self.coord_loss if self.coord_loss is not None else method.coord_loss,
            self.heatmap_epochs if self.heatmap_epochs is not None else heatmap_epochs,
            self.decoder if self.decoder is not None else method.decoder,
        )

    def validate(self, check_paths: bool = True) -> None:
        """Check every setting before any work is done; ConfigError names the key and the fix.

        Args:
            check_paths: also check that the data files and folders exist (off for configs of finished
                runs read back elsewhere, whose data may have moved).
        """
        self._check_choices()
        self._check_numbers()
        if check_paths:
            self._check_paths()

    def _check_choices(self) -> None:
        """Keys that name one of a fixed set of things."""
        from pose.decode import DECODERS  # here, not at import: pose.models pulls in torch and timm
        from pose.models import MODELS

        choices = {
            "method": (self.method, sorted(METHODS)),
            "optimizer": (self.optimizer, list(OPTIMIZERS)),
            "lr_schedule": (self.lr_schedule, list(LR_SCHEDULES)),
            "arch": (self.arch, sorted(MODELS)),
            "coord_loss": (self.coord_loss, [None, *COORD_LOSSES]),
            "decoder": (self.decoder, [None, *sorted(DECODERS)]),
        }
        for key, (value, allowed) in choices.items():
            if value not in allowed:
                shown = [a for a in allowed if a is not None]
                raise ConfigError(f"{key}: unknown {value!r}; choose from {shown}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay: expected 0 (off) or a decay in (0, 1), got {self.ema_decay}")

    def _check_numbers(self) -> None:
        """Ranges of the numeric keys (what would otherwise fail late, e.g. val_every=0 after an epoch)."""
        size = self.input_size
        if len(size) != 2 or any(v <= 0 or v % SIZE_MULTIPLE for v in size):
            raise ConfigError(
                f"input_size: expected [height, width], both positive multiples of {SIZE_MULTIPLE} "
                f"(the backbones have stride 32), got {size}; e.g. input_size=256,192"
            )
        rules = [
            ("beta", self.beta > 0 and math.isfinite(self.beta), "a finite number > 0"),
            ("extra_betas", all(b > 0 and math.isfinite(b) for b in self.extra_betas), "finite numbers > 0"),
            ("sigma", self.sigma > 0, "> 0 heatmap px"),
            ("aug_epochs", self.aug_epochs >= 0, ">= 0"),
            ("heatmap_epochs", self.heatmap_epochs is None or self.heatmap_epochs >= -1, "-1, 0 or N > 0"),
            ("heatmap_weight", self.heatmap_weight >= 0, ">= 0"),
            ("val_fraction", 0 < self.val_fraction < 1 or bool(self.val_annotations), "in (0, 1)"),
            ("max_train_images", self.max_train_images >= 0, ">= 0 (0 = all)"),
            ("epochs", self.epochs >= 0, ">= 0"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("warmup_steps", self.warmup_steps >= 0, ">= 0"),
            ("lr_steps", all(e >= 0 for e in self.lr_steps), "epochs >= 0"),
            ("lr_factor", 0 < self.lr_factor <= 1, "in (0, 1]"),
            ("num_workers", self.num_workers >= 0, ">= 0"),
            ("val_every", self.val_every >= 1, ">= 1 (validate every N epochs; the last epoch always)"),
            ("checkpoint_minutes", self.checkpoint_minutes >= 0, ">= 0 (0 = at the end of each epoch only)"),
            ("max_steps_per_epoch", self.max_steps_per_epoch >= 0, ">= 0 (0 = the whole epoch)"),
        ]
        for key, ok, expected in rules:
            if not ok:
                raise ConfigError(f"{key}: expected {expected}, got {getattr(self, key)!r}")
        if self.device != "auto" and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")

    def _check_paths(self) -> None:
        """The data named by the config exists (a missing folder otherwise ends as an empty data set)."""
        files = [("train_annotations", self.train_annotations), ("val_annotations", self.val_annotations)]
        folders = [("train_images", self.train_images), ("val_images", self.val_images)]
        for key, value in files[:1] + folders[:1]:
            if not value:
                raise ConfigError(f"{key}: not set; pass {key}=PATH (or set it in the YAML file)")
        for key, value in files:
            if value and not Path(value).is_file():
                raise ConfigError(f"{key}: no such file {value!r}; set {key}= to a COCO keypoint JSON")
        for key, value in folders:
            if value and not Path(value).is_dir():
                raise ConfigError(
                    f"{key}: no such folder {value!r}; set {key}= to the folder holding the images"
                )
        if self.pretrained not in (None, "timm", "package") and not Path(self.pretrained).is_file():
            raise ConfigError(
                f"pretrained: {self.pretrained!r} is not a file; use none, timm, package or a weights file"
            )


def help_text(cls: type = TrainConfig) -> str:
    """Every key of ``cls`` with its default and meaning, one per line, for ``--help``; a nested config
    (``augment``) has a line of its own, then one per key as ``augment.KEY=default``."""
    rows = []
    for f in dataclasses.fields(cls):
        nested = _nested_class(f)
        rows.append((f"{f.name}={'(below)' if nested else _default_text(f)}", f.metadata.get("help", "")))
        for sub in dataclasses.fields(nested) if nested else ():
            rows.append((f"{f.name}.{sub.name}={_default_text(sub)}", sub.metadata.get("help", "")))
    width = max(len(default) for default, _ in rows)
    return "\n".join(f"  {default:<{width}}  {meaning}" for default, meaning in rows)


def _nested_class(f: dataclasses.Field) -> type | None:
    """The dataclass a field holds (a nested config such as ``augment``), else None."""
    if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
        return f.default_factory
    return None


def _default_text(f: dataclasses.Field) -> str:
    """The default as it would be typed on a command line: 256,192 / none / true / ""."""
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return "none" if value is None else '""' if value == "" else str(value)


def load_config(path: str | Path | None, overrides: list[str] = (), cls: type = TrainConfig) -> Any:
    """Defaults of ``cls``, then the YAML file at ``path`` (if any), then ``key=value`` overrides.

    ``augment.KEY=value`` sets one key of the nested augmentation; the flat keys of older configs
    (``LEGACY_KEYS``, e.g. ``rotation_factor``) are read as their ``augment.*`` key, in YAML and overrides.
    """
    values: dict[str, Any] = {}
    if path is not None:
        for key, value in _read_yaml(Path(path)).items():
            _assign(values, key, value)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "not a YAML value"
            raise ConfigError(f"{key.strip()}: cannot read {raw!r} ({problem}); quote it or fix it") from None
        _assign(values, key.strip(), value)
    return build_config(values, cls)


def _assign(values: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key`` in ``values``: a legacy flat key becomes its nested one, ``a.b`` sets ``values[a][b]``,
    and a mapping given for a nested config merges into what earlier sources set."""
    key = LEGACY_KEYS.get(key, key)
    group, dot, sub = key.partition(".")
    if dot:
        current = values.setdefault(group, {})
        if not isinstance(current, dict):
            raise ConfigError(f"{group}: expected a mapping of its keys, got {current!r}")
        current[sub] = value
    elif isinstance(value, dict) and isinstance(values.get(key), dict):
        values[key].update(value)
    else:
        values[key] = value


def _read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in the YAML file ``path``; ConfigError (one line: file, line, problem) otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; give the path of a YAML file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config file ({err})") from None
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(
            f"{path}: not valid YAML{where} ({problem}); write one 'key: value' per line"
        ) from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value, got {type(loaded).__name__}")
    return loaded


def build_config(values: dict[str, Any], cls: type = TrainConfig) -> Any:
    """Instantiate ``cls`` from a mapping, checking each key exists and each value fits its type; a nested
    dataclass (``augment``) is built the same way from its own mapping, its keys named ``augment.KEY``."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r}; known keys: {', '.join(sorted(fields))}")
    built = {}
    for key, value in values.items():
        nested = _nested_class(fields[key])
        built[key] = _build_nested(key, value, nested) if nested else coerce(key, value, hints[key])
    return cls(**built)


def _build_nested(name: str, value: Any, nested: type) -> Any:
    """The nested config ``name`` (e.g. ``augment``) from a mapping of its keys; ConfigError names the key."""
    if isinstance(value, nested):
        return value
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a mapping of its keys ({name}.KEY=value), got {value!r}")
    hints = typing.get_type_hints(nested)
    known = {f.name for f in dataclasses.fields(nested)}
    for key in value:
        if key not in known:
            raise ConfigError(f"unknown config key '{name}.{key}'; known keys: {', '.join(sorted(known))}")
    try:
        return nested(**{key: coerce(f"{name}.{key}", v, hints[key]) for key, v in value.items()})
    except ValueError as err:  # the class's own range checks (one check per concept), e.g. flip_prob > 1
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{name}: {err}") from None


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
