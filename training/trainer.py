"""The training loop for the paper's methods: losses per epoch, validation, atomic checkpoints, resume.

``Trainer(config).fit()`` runs on CPU or CUDA, on one process or under ``torchrun``
(DistributedDataParallel); everything it writes goes to ``config.out_dir``, from rank 0 only.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from pose.data import CropSpec, Selection, TopDownDataset, TrainSpec, make_loader, set_loader_epoch
from pose.decode import DECODERS
from pose.evaluation.predictions import DatasetPredictions, headline, predict_loader
from pose.losses import coord_l1_losses, heatmap_mse_losses, masked_mean
from pose.models import PoseModel, build_pose_model
from pose.models.growth import can_deepen, deepen
from training import distributed
from training.checks import check_image_folders, check_sizes, training_schema
from training.config import ConfigError, TrainConfig, load_config, save_config
from training.modelcard import write_model_card

STATE_FILE = "last.pt"  # model + optimizer + scheduler + scaler + epoch (+ step): what `resume=true` reads


class Trainer:
    """One run of ``config``: builds the model, data and optimiser, then ``fit()`` trains it."""

    def __init__(self, config: TrainConfig) -> None:
        config.validate()  # every key, before anything is built: a bad value must not cost an epoch
        self.config = config
        torch.manual_seed(config.seed)  # identical initial weights on every rank and in every rerun
        self.rank, self.world = distributed.setup()
        self.device = _device(config.device)
        self.out = Path(config.out_dir)
        self.coord_loss, self.heatmap_epochs, self.decoder = config.resolved()
        schema = training_schema(config)
        check_image_folders(config)
        self.model = build_pose_model(
            config.arch,
            schema,
            tuple(config.input_size),
            config.pretrained,
            decoder=self.decoder,
            beta=config.beta,
        ).to(self.device)
        if config.init_from:
            _load_start_weights(self.model, config.init_from)
        self.train_set, self.val_set = _datasets(config, self.model)
        check_sizes(self.train_set, self.val_set, config)
        sharded = self.world > 1
        self.train_loader = make_loader(
            self.train_set, config.batch_size, True, config.num_workers, config.seed, sharded, drop_last=True
        )
        self.val_loader = make_loader(self.val_set, config.batch_size, False, config.num_workers, 0, sharded)
        self.steps = _steps_per_epoch(len(self.train_loader), config)
        optimizer = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        self.optimizer = optimizer(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_schedule(config, self.steps))
        # The averaged copy (ema_decay > 0) is what validates and what is saved; BN statistics average too
        self.ema = _averaged(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=config.amp and self.device.type == "cuda")
        self.net = nn.parallel.DistributedDataParallel(self.model) if sharded else self.model
        self.epoch, self.best = 0, -math.inf
        self.pending: dict | None = None  # a trained epoch whose validation and log are still to do
        # A mid-epoch checkpoint's progress (items trained, loss sums, seconds), read back by a resume
        self.partial: dict | None = None
        self.epoch_started = 0.0

    def fit(self) -> Path:
        """Train to ``config.epochs`` (resuming when ``config.resume``); return the final model folder.

        After each epoch's steps the state is saved first (``last.pt``, with the epoch's record marked
        pending); validation, the metrics line and ``best/`` follow. An error in those loses no training:
        ``resume=true`` validates the pending epoch and goes on.
        """
        if self.config.resume and (self.out / STATE_FILE).exists():
            self._load_state()
            if self.rank == 0:
                self._record_changed_settings()
        elif self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.out / "config.yaml")
            self._write_split()
            (self.out / "metrics.jsonl").unlink(missing_ok=True)
        if self.pending is not None:
            self._finish_epoch(self.pending)
        while self.epoch < self.config.epochs:
            # a mid-epoch resume counts the time the epoch had taken before it
            self.epoch_started = time.monotonic() - (self.partial or {}).get("seconds", 0.0)
            record = {"epoch": self.epoch, **self.train_epoch(), "lr": self.optimizer.param_groups[0]["lr"]}
            record["seconds"] = time.monotonic() - self.epoch_started
            self.epoch += 1
            if self.rank == 0:
                self._save_state(pending=record)
            self._finish_epoch(record)
        final = self.out / "model"
        if self.rank == 0:
            self._save_final(final)
        distributed.cleanup()
        return final

    def _finish_epoch(self, record: dict) -> None:
        """Validate the epoch just trained (when due), log it, keep the best; then mark it done.

        ``record`` holds the epoch's training results; its ``seconds`` gain the validation time.
        """
        try:
            started, done = time.monotonic(), record["epoch"] + 1
            if done % self.config.val_every == 0 or done == self.config.epochs:
                record.update({f"val_{k}": v for k, v in self.validate().items() if k != "coco"})
            record["seconds"] = round(record["seconds"] + time.monotonic() - started, 1)
            if self.rank == 0:
                self._end_epoch(record)
                self._save_state(pending=None)
        except Exception:
            if self.rank == 0:
                print(
                    f"error after epoch {record['epoch'] + 1}: its training is saved in "
                    f"{self.out / STATE_FILE}; fix the cause below and rerun with resume=true to go on",
                    file=sys.stderr,
                )
            raise
        self.pending = None
        distributed.barrier()

    def uses_heatmap_loss(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based) adds the heatmap MSE: L_aug for the first ``heatmap_epochs``."""
        return self.heatmap_epochs < 0 or epoch < self.heatmap_epochs

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training loader (at most ``steps`` batches).

        After a mid-epoch resume it trains the epoch's remaining steps, on exactly the batches an
        uninterrupted run would have seen. Every ``config.checkpoint_minutes`` it saves ``last.pt`` with
        the steps done so far.

        Returns:
            Means over the steps and all ranks: ``loss`` and its parts ``loss_coord`` (L_re, px) and
            ``loss_heatmap`` (the weighted heatmap MSE; exactly 0 in epochs without it).
        """
        partial, self.partial = self.partial or {}, None
        first = partial.get("items", 0) // self.config.batch_size
        set_loader_epoch(self.train_loader, self.epoch, start_batch=first)
        self.net.train()
        use_heatmap = self.uses_heatmap_loss(self.epoch)
        sums = partial.get("sums", {"loss_coord": 0.0, "loss_heatmap": 0.0})
        count = partial.get("count", 0)
        desc = f"epoch {self.epoch + 1}/{self.config.epochs}"
        bar = tqdm(
            self.train_loader,
            total=self.steps,
            initial=first,
            desc=desc,
            disable=self.rank != 0,
            dynamic_ncols=True,
        )
        saved = time.monotonic()
        for step, batch in enumerate(bar, start=first):
            if step >= self.steps:
                break
            # channels_last lets oneDNN / cuDNN pick their fast convolutions; the weights keep their layout
            images = batch["image"].to(self.device, non_blocking=True, memory_format=torch.channels_last)
            with self._autocast():
                logits = self.net(images)
            parts = step_losses(logits.float(), batch, self.coord_loss, use_heatmap, self.config)
            loss = parts["loss_coord"] + parts["loss_heatmap"]
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at epoch {self.epoch}, step {step}; the last checkpoint in "
                    f"{self.out} is intact: lower lr and rerun with resume=true"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            sums = {k: sums[k] + v.item() for k, v in parts.items()}
            count += 1
            shown = (sums["loss_coord"] + sums["loss_heatmap"]) / count
            bar.set_postfix(loss=f"{shown:.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.1e}")
            saved = self._checkpoint_if_due(saved, step + 1, sums, count)
        means = {k: distributed.mean(v / max(count, 1)) for k, v in sums.items()}
        return {"loss": means["loss_coord"] + means["loss_heatmap"], **means}

    def _checkpoint_if_due(self, saved: float, done: int, sums: dict[str, float], count: int) -> float:
        """Save ``last.pt`` mid-epoch (``done`` steps trained, the loss sums so far) when
        ``checkpoint_minutes`` have passed since ``saved`` (a ``time.monotonic()``); return the new time."""
        minutes = self.config.checkpoint_minutes
        if not minutes or time.monotonic() - saved < 60 * minutes or done >= self.steps:
            return saved  # the epoch's end saves anyway
        if self.rank == 0:  # the weights are the same on every rank; each resumes from this file
            seconds = time.monotonic() - self.epoch_started
            items = done * self.config.batch_size
            self._save_state(None, {"items": items, "sums": sums, "count": count, "seconds": seconds})
        return time.monotonic()

    def _autocast(self) -> torch.autocast:
        """float16 on CUDA with ``amp``, bfloat16 on CPU with ``cpu_bf16``, else a no-op context."""
        if self.device.type == "cpu":
            return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.cpu_bf16)
        return torch.autocast(self.device.type, dtype=torch.float16, enabled=self.scaler.is_enabled())

    @property
    def eval_model(self) -> PoseModel:
        """The weights that validate and ship: the averaged copy when ``ema_decay`` > 0, else the model."""
        return self.ema.module if self.ema is not None else self.model

    @torch.no_grad()
    def validate(self, decoder: str | None = None) -> dict[str, Any]:
        """Decode the validation set (default: the run's decoder) and score it on all ranks together."""
        name = decoder or self.decoder
        quiet = self.rank != 0

        def bar(batches):
            return tqdm(batches, desc="validating", disable=quiet, leave=False, dynamic_ncols=True)

        shard = predict_loader(
            self.eval_model, self.val_loader, [name], self.config.beta, logit_stats=False, progress=bar
        )
        # Each rank decoded its shard; records keyed by annotation id merge them and drop the padding
        data = DatasetPredictions.from_annotations(distributed.merge_dicts(shard.by_annotation()))
        annotations = self.config.val_annotations or self.config.train_annotations
        return headline(data, name, self.val_set.schema, annotations)

    def _write_split(self) -> None:
        """Record which images trained and which validated (``split.json``), so the split can be stated."""
        train_ids, val_ids = _split_image_ids(self.config)
        split = {"train_annotations": self.config.train_annotations, "train_image_ids": train_ids}
        if self.config.val_annotations:
            split["val_annotations"] = self.config.val_annotations
        else:
            split["val_image_ids"] = val_ids  # held out of the training file
        (self.out / "split.json").write_text(json.dumps(split), encoding="utf-8")

    def _end_epoch(self, record: dict) -> None:
        """Append the metrics line, print it as one line, keep the best model."""
        record["time"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        tqdm.write(epoch_line(record, self.config.epochs))
        score = selection_score(record)
        if score is not None and score > self.best:
            self.best = score
            self.eval_model.save_pretrained(self.out / "best")

    def _save_state(self, pending: dict | None, partial: dict | None = None) -> None:
        """Write the resume state atomically; ``pending`` is a trained epoch not yet validated and logged,
        ``partial`` the progress of the epoch ``self.epoch`` when saved part-way through it."""
        payload = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "best": self.best,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "torch_rng": torch.get_rng_state(),  # nothing in the step draws from it today; kept for exactness
            "pending": json.dumps(pending) if pending is not None else None,  # JSON: weights_only loads it
            "partial": json.dumps(partial) if partial is not None else None,
        }
        tmp = self.out / (STATE_FILE + ".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.out / STATE_FILE)  # atomic: a kill leaves either the old or the new state

    def _load_state(self) -> None:
        path = self.out / STATE_FILE
        try:
            payload = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:  # truncated zip, not a torch file, foreign pickle: all "cannot resume"
            raise RuntimeError(
                f"cannot resume from {path}: {err}. Move it away to start over, or restore it from a backup"
            ) from err
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.scaler.load_state_dict(payload["scaler"])
        self.epoch, self.best = int(payload["epoch"]), float(payload["best"])
        if self.ema is not None and payload.get("ema") is not None:
            self.ema.load_state_dict(payload["ema"])
        elif self.ema is not None:  # a state from before ema_decay was set: average from the model onwards
            self.ema = _averaged(self.model, self.config.ema_decay)
        if "torch_rng" in payload:  # absent in states written before it was recorded; nothing draws from it
            torch.set_rng_state(payload["torch_rng"])
        if payload.get("pending"):  # absent in older states; None once the epoch was logged
            self.pending = json.loads(payload["pending"])
        if payload.get("partial"):  # absent in older states; None when saved at an epoch's end
            self.partial = json.loads(payload["partial"])
        if self.rank == 0:
            logged = self.epoch - (self.pending is not None)  # a pending epoch's line is written again
            _drop_metrics_after(self.out / "metrics.jsonl", logged)
            where = f"epoch {self.epoch + 1} of {self.config.epochs}"
            if self.partial:
                where += f", step {self.partial['items'] // self.config.batch_size + 1} of {self.steps}"
            print(f"resuming {self.out} at {where}")

    def _record_changed_settings(self) -> None:
        """Keep ``config.yaml`` what the run trains with: a resume with other settings (e.g. a shorter
        schedule) says what changed and rewrites it, so ``training.export`` ships the settings that ran on."""
        path = self.out / "config.yaml"
        try:
            before = asdict(load_config(path)) if path.exists() else {}
        except ConfigError:  # unreadable or from a newer version: the settings below are the record now
            before = {}
        now = asdict(self.config)
        changed = {k: (before.get(k), v) for k, v in now.items() if k != "resume" and before.get(k) != v}
        if changed:
            print(
                "resuming with changed settings: "
                + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items())
            )
            save_config(self.config, path)

    def _save_final(self, folder: Path) -> None:
        """The final PoseModel folder with its model card; pushed to the Hub when ``hub_repo`` is set."""
        self.eval_model.save_pretrained(folder)
        metrics = self.out / "metrics.jsonl"
        lines = metrics.read_text(encoding="utf-8").splitlines() if metrics.exists() else []  # epochs=0
        write_model_card(
            folder, asdict(self.config), self.config.resolved(), json.loads(lines[-1]) if lines else {}
        )
        print(f"saved the model to {folder}")
        if not self.config.hub_repo:
            return
        try:
            self.eval_model.push_to_hub(self.config.hub_repo)
            print(f"pushed to the Hugging Face Hub: {self.config.hub_repo}")
        except Exception as err:  # offline, no token, no rights: the local copy is what matters
            print(
                f"could not push to the Hub repo {self.config.hub_repo!r} ({type(err).__name__}: {err}). "
                f"The model is saved in {folder}; push it later with "
                f"PoseModel.from_pretrained('{folder}').push_to_hub('{self.config.hub_repo}')"
            )


def step_losses(
    logits: torch.Tensor, batch: dict, coord_loss: str, use_heatmap: bool, config
) -> dict[str, torch.Tensor]:
    """The two parts of the loss, masked: ``L_re`` (L1 on decoded coordinates, Eq. 5 / 10) and ``L_aug``
    (heatmap MSE, Eq. 2).

    Args:
        logits: ``(B, K, h, w)`` float32 network output.
        batch: holds ``coords`` ``(B, K, 2)``, ``heatmaps`` ``(B, K, h, w)``, ``weights`` ``(B, K)``.
        coord_loss: ``"none"``, ``"integral"`` or ``"debiased"``: the decoder the L1 goes through, at
            ``config.beta`` and each of ``config.extra_betas`` (the mean of those L1s).
        use_heatmap: include ``config.heatmap_weight`` times the heatmap MSE.

    Returns:
        ``loss_coord`` (heatmap px) and ``loss_heatmap`` (weighted), scalars; a part that is off is 0.
    """
    weights = batch["weights"].to(logits.device)
    parts = {"loss_coord": logits.new_zeros(()), "loss_heatmap": logits.new_zeros(())}
    if coord_loss != "none":
        # With extra_betas the same L1 at other betas too: J_o is right at every beta only where the
        # background is the zero the compensation assumes, so this trains the background as well
        betas = [config.beta, *config.extra_betas]
        targets = batch["coords"].to(logits.device)
        losses = [coord_l1_losses(DECODERS[coord_loss](logits, b)[0], targets) for b in betas]
        parts["loss_coord"] = masked_mean(torch.stack(losses).mean(0), weights)
    if use_heatmap:
        mse = heatmap_mse_losses(logits, batch["heatmaps"].to(logits.device))
        parts["loss_heatmap"] = config.heatmap_weight * masked_mean(mse, weights)
    return parts


def step_loss(logits: torch.Tensor, batch: dict, coord_loss: str, use_heatmap: bool, config) -> torch.Tensor:
    """``L_re + L_aug`` of :func:`step_losses`, one scalar."""
    parts = step_losses(logits, batch, coord_loss, use_heatmap, config)
    return parts["loss_coord"] + parts["loss_heatmap"]


def epoch_line(record: dict, epochs: int) -> str:
    """The one line printed per epoch: loss (and its parts), validation PCK/EPE, lr, time."""
    line = f"epoch {record['epoch'] + 1}/{epochs}: loss {record['loss']:.4f}"
    if "loss_coord" in record:
        line += f" (L_re {record['loss_coord']:.4f} + L_aug {record['loss_heatmap']:.4f})"
    pck, error = record.get("val_pck@0.2"), record.get("val_epe")
    if pck is not None or error is not None:
        show = [f"PCK@0.2 {pck:.3f}" if pck is not None else "", f"EPE {error:.2f} px" if error else ""]
        line += ", val " + " ".join(part for part in show if part)
    else:
        line += ", not validated"
    line += f", lr {record['lr']:.2e}"
    return line + (f", {record['seconds']:.0f} s" if "seconds" in record else "")


def _datasets(config: TrainConfig, model: PoseModel) -> tuple[TopDownDataset, TopDownDataset]:
    """Training and validation sets; without ``val_annotations``, a seeded split of the training images."""
    crop = CropSpec(input_size=tuple(config.input_size), sigma=config.sigma, mean=model.mean, std=model.std)
    train_ids, val_ids = _split_image_ids(config)
    train_set = TopDownDataset(
        config.train_annotations,
        config.train_images,
        crop,
        Selection(image_ids=train_ids),
        TrainSpec(config.augment, config.seed),
    )
    if config.val_annotations:
        val_set = TopDownDataset(config.val_annotations, config.val_images or config.train_images, crop)
    else:
        val_set = TopDownDataset(config.train_annotations, config.train_images, crop, Selection(val_ids))
    return train_set, val_set


def _load_start_weights(model: PoseModel, source: str) -> None:
    """Copy a saved PoseModel's weights into ``model``; the input size may differ (the nets are
    fully convolutional), the keypoints may not, and the architecture only to a deeper twin that starts
    out computing the same maps (lite0 -> lite1, ``pose.models.growth``)."""
    start = PoseModel.from_pretrained(source)  # CheckpointError names the folder and the cause
    try:
        if start.arch != model.arch and can_deepen(start.arch, model.arch):
            new = deepen(model, start.state_dict())
            print(
                f"init_from {source} ({start.arch}) grown to {model.arch}: {len(new)} new blocks start silent"
            )
        else:
            model.load_state_dict(start.state_dict())
    except (RuntimeError, ValueError) as err:
        raise ConfigError(f"init_from={source!r} does not fit this run's arch and keypoints: {err}") from err


def _split_image_ids(config: TrainConfig) -> tuple[list[int], list[int]]:
    """Seeded split of the training file's image ids -> (train, held out); none held out given a val file."""
    with open(config.train_annotations, encoding="utf-8") as f:
        ids = sorted(int(image["id"]) for image in json.load(f)["images"])
    order = np.random.default_rng(config.held_out_seed).permutation(len(ids))
    n_val = 0 if config.val_annotations else max(1, round(config.val_fraction * len(ids)))
    train = order[n_val:][: config.max_train_images or None]
    return [ids[i] for i in sorted(train)], [ids[i] for i in sorted(order[:n_val])]


def _steps_per_epoch(batches: int, config: TrainConfig) -> int:
    if batches == 0:  # check_sizes has said why already on one process; a shard can still be short
        raise ConfigError(
            f"a process's share of the training set is smaller than batch_size={config.batch_size}"
        )
    return min(batches, config.max_steps_per_epoch) if config.max_steps_per_epoch else batches


def _lr_schedule(config: TrainConfig, steps_per_epoch: int):
    """Linear warm-up over ``warmup_steps``, then either times ``lr_factor`` at each epoch listed in
    ``lr_steps`` (``step``) or a half cosine from 1 to 0 over the whole run (``cosine``)."""
    total = max(1, config.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / config.warmup_steps) if config.warmup_steps else 1.0
        if config.lr_schedule == "cosine":
            return warm * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))
        epoch = step // steps_per_epoch
        return warm * config.lr_factor ** sum(epoch >= e for e in config.lr_steps)

    return factor


def _averaged(model: PoseModel, decay: float) -> AveragedModel:
    """An exponential moving average of ``model``'s weights and buffers (BatchNorm statistics too),
    starting from a copy of them."""
    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def _device(name: str) -> torch.device:
    if name == "auto":
        name = f"cuda:{os.environ.get('LOCAL_RANK', 0)}" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def selection_score(record: dict) -> float | None:
    """The number that picks the best epoch: COCO AP where the schema has OKS sigmas, else PCK@0.2."""
    for key in ("val_ap", "val_pck@0.2"):
        if record.get(key) is not None:
            return float(record[key])
    return None


def _drop_metrics_after(path: Path, epochs_done: int) -> None:
    """Keep only the metrics lines of epochs the state file holds: a kill between appending an epoch's
    line and replacing ``last.pt`` would otherwise leave that epoch twice in the file after resuming."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["epoch"] < epochs_done]
    if len(kept) != len(lines):
        path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
