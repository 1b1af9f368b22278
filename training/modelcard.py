"""The model card (README.md) written beside a trained PoseModel: data, method, metrics, citation.

The cards' text lives in ``training/templates/`` (``string.Template``: ``${field}``); the functions here
compute the fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from string import Template
from typing import Any

from pose.models import tfjs
from training.config import load_config

CITATION = """@inproceedings{gu2021removing,
  title     = {Removing the Bias of Integral Pose Regression},
  author    = {Gu, Kerui and Yang, Linlin and Yao, Angela},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2021}
}"""

METHOD_TEXT = {
    "none": "heatmap detection: pixel-wise MSE against Gaussian targets, arg-max decoding",
    "integral": "integral pose regression: L1 on the soft-argmax J_r",
    "debiased": "bias-compensated integral regression: L1 on the debiased estimate J_o",
}


TEMPLATES = Path(__file__).resolve().parent / "templates"


def render(template: str, fields: dict[str, Any]) -> str:
    """The template file ``templates/<template>`` with its ``${field}`` placeholders filled in."""
    return Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(fields)


def _block(lines: list[str]) -> str:
    """Lines that follow a template line only when there are any: each starts on a new line."""
    return "".join("\n" + line for line in lines)


def method_line(method: str, coord_loss: str, heatmap_epochs: int) -> str:
    """The card's "- method:" bullet: the loss on coordinates and when the heatmap MSE (L_aug) applies."""
    when = {-1: "every epoch", 0: "never"}.get(heatmap_epochs, f"for the first {heatmap_epochs} epochs")
    return f"- method: `{method}` — {METHOD_TEXT[coord_loss]}; heatmap MSE (L_aug) {when}"


def write_model_card(
    folder: Path, config: dict[str, Any], resolved: tuple[str, int, str], metrics: dict
) -> Path:
    """Write ``folder/README.md`` for a model trained with ``config`` and return its path.

    Args:
        folder: the PoseModel directory.
        config: the run's resolved config as a dict.
        resolved: ``(coord_loss, heatmap_epochs, decoder)`` from ``TrainConfig.resolved()``.
        metrics: the last line of the run's metrics.jsonl.
    """
    coord_loss, heatmap_epochs, decoder = resolved
    shown = {k: v for k, v in metrics.items() if k.startswith("val_") and v is not None}
    keys = ("arch", "method", "beta", "train_annotations", "epochs", "batch_size", "lr")
    fields = {key: config[key] for key in keys} | {
        "method_line": method_line(config["method"], coord_loss, heatmap_epochs),
        "decoder": decoder,
        "input_size": tuple(config["input_size"]),
        "metrics": json.dumps(shown, indent=2),
        "citation": CITATION,
    }
    path = Path(folder) / "README.md"
    path.write_text(render("run_card.md", fields), encoding="utf-8")
    return path


def data_note(annotations: str | Path) -> str | None:
    """The README.md beside a dataset's annotation file (source, citation, licence), if there is one."""
    path = Path(annotations).parent / "README.md"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def stage_files(stage: int) -> tuple[str, str]:
    """The config and log file names of the ``stage``-th (1 = earliest) run an exported run descends from."""
    return f"stage{stage}_config.yaml", f"stage{stage}_log.jsonl"


def earlier_stages(evaluation: dict[str, Any], folder: Path) -> list[Any]:
    """The configs of the runs (earliest first) the exported run descends from through init_from, as
    export's ``--init-run`` shipped them into ``folder``."""
    count = len(evaluation.get("init_runs", []))
    return [load_config(Path(folder) / stage_files(k)[0]) for k in range(1, count + 1)]


def stage_summary(config: Any) -> str:
    """``"6 epochs at 288×224, `debiased` — ..."``: one earlier stage, for the card."""
    method = method_line(config.method, *config.resolved()[:2])[len("- method: ") :]
    return f"{config.epochs} epochs at {config.input_size[0]}×{config.input_size[1]}, {method}"


def provenance_lines(config: Any, evaluation: dict[str, Any], folder: Path) -> list[str]:
    """Card lines saying which epoch's weights ship and what the run started from."""
    if "checkpoint" not in evaluation:
        return []
    epoch, logged = evaluation["epoch"], evaluation["epochs_logged"]
    if evaluation["checkpoint"] == "best":
        line = (
            f"- checkpoint: `best`, epoch {epoch} of {config.epochs}: the highest validation score (COCO AP, "
            "else PCK@0.2) on the held-out images, so the held-out numbers below are a little optimistic"
        )
    else:
        line = f"- checkpoint: `{evaluation['checkpoint']}`, after epoch {epoch} of {config.epochs}"
    if logged < config.epochs:
        line += f"; the run stopped after epoch {logged}"
    lines = [line + "."]
    stages = earlier_stages(evaluation, folder)
    if stages:
        n = len(stages) + 1
        lines.append(
            f"- started from `{config.init_from}`, the model of stage {n - 1}: this run is stage {n} of {n}. "
            "Each earlier stage is a run of its own; its config and log ship as `stageK_config.yaml` and "
            "`stageK_log.jsonl`:"
        )
        lines += [f"  - stage {k}: {stage_summary(stage)}." for k, stage in enumerate(stages, 1)]
    origin = stages[0] if stages else config  # the run that started from pretrained weights, if any did
    if origin.arch == "movenet" and origin.pretrained and not origin.init_from:
        lines.append(
            f"- {'stage 1 ' if stages else ''}started from MoveNet SinglePose Thunder (Google, Apache-2.0; "
            f"{tfjs.SOURCE}), whose TF.js weights npm `{tfjs.NPM_PACKAGE}` {tfjs.NPM_VERSION} ships: its "
            "MobileNetV2 x1.75, feature pyramid and heatmap layers, sigmoid included (the maps are "
            "probabilities, not raw logits); each joint's last filter started from MoveNet's filter of the "
            "same or the nearest COCO joints. These weights derive from MoveNet's and keep its Apache-2.0 "
            "terms."
        )
    return lines


def metrics_lines(evaluation: dict[str, Any], annotations: str, shipped: str) -> list[str]:
    """The card's "Held-out metrics" section: what was scored, what PCK means here, a row per decoder."""
    first = next(iter(evaluation["decoders"].values()))
    rows = [
        f"| `{name}`{' (shipped)' if name == shipped else ''} | {m['pck@0.2']:.3f} | "
        f"{_number(m.get('pck@0.2_torso'), 3)} | {_number(m.get('pck@0.2_lr_tolerant'), 3)} | "
        f"{m['epe']:.2f} | {m['auc']:.3f} |"
        for name, m in evaluation["decoders"].items()
    ]
    return [
        f"## Held-out metrics ({evaluation['n_images']} images, {first['n_instances']} people; "
        "one network pass)",
        pck_text(first),
        "EPE in image pixels, AUC of PCK over thresholds 0-0.2 (same norms as PCK@0.2). Scored on "
        f"`{evaluation.get('scored_on', annotations)}`, the held-out ids of `split.json`.",
        "",
        "The left/right-tolerant column scores each person as labelled and with left and right swapped, "
        "keeping the better: the gap to PCK@0.2 is what left/right mix-ups (the labels' or the model's) "
        "cost.",
        "",
        "| decoder | PCK@0.2 | PCK@0.2, torso only | PCK@0.2, left/right tolerant | EPE (px) | AUC |",
        "|---|---|---|---|---|---|",
        *rows,
        *flip_lines(evaluation, shipped),
        *bias_lines(evaluation),
    ]


def flip_lines(evaluation: dict[str, Any], shipped: str) -> list[str]:
    """The held-out scores with the flip test the app runs, when export measured them (``--flip``)."""
    if "flip" not in evaluation:
        return []
    flip, low = evaluation["flip"]["decoders"], evaluation["flip"]["low_beta"]
    main = flip[shipped]
    torso, tolerant = _number(main.get("pck@0.2_torso"), 3), _number(main.get("pck@0.2_lr_tolerant"), 3)
    others = ", ".join(
        f"{name} {m['pck@0.2']:.3f} ({m['epe']:.2f} px)" for name, m in flip.items() if name != shipped
    )
    lows = ", ".join(f"{name} {low[name]['pck@0.2']:.3f}" for name in ("debiased", "integral"))
    return [
        "",
        "With the flip test (logits averaged with the mirrored crop's, as the app runs it; "
        f"`training.evaluate ... --flip`): {shipped} {main['pck@0.2']:.3f} (torso only {torso}, "
        f"left/right tolerant {tolerant}, EPE {main['epe']:.2f} px, AUC "
        f"{main['auc']:.3f}), {others}; at beta {low['beta']:g} {lows}.",
    ]


def bias_lines(evaluation: dict[str, Any]) -> list[str]:
    """The card's section on the bias: both integral decoders at a low beta, and the heatmaps' background."""
    if "low_beta" not in evaluation:  # an evaluation.json written before export measured it
        return []
    low, heat = evaluation["low_beta"], evaluation["heatmaps"]
    high = evaluation["decoders"]
    return [
        "",
        f"## The bias on these heatmaps (beta {low['beta']:g})",
        "The same heatmaps decoded at a low beta, where the uniform background pulls the soft-argmax J_r "
        "toward the crop centre and the compensated J_o should stay on the joint (paper Eq. 8):",
        "",
        "| decoder | PCK@0.2 at the shipped beta | PCK@0.2 at beta " + f"{low['beta']:g} | EPE (px) at beta "
        f"{low['beta']:g} |",
        "|---|---|---|---|",
        *(
            f"| `{name}` | {high[name]['pck@0.2']:.3f} | {low[name]['pck@0.2']:.3f} | "
            f"{low[name]['epe']:.2f} |"
            for name in ("debiased", "integral")
        ),
        "",
        f"Background (the map values more than 6 heatmap px from each labelled joint's peak): mean "
        f"{heat['background_mean']:+.4f}, median {heat['background_median']:+.4f}; the compensation is exact "
        f"when it is 0. Maps with a second mode (a local maximum > 6 px from the peak, at least half its "
        f"height above the median): {heat['second_mode_share']:.1%} of the labelled joints' maps; there the "
        "compensation removes the background's pull but not the second peak's.",
    ]


def teacher_lines(train_annotations: str) -> list[str]:
    """What ``training.teacher`` did to the training labels, read from the file's ``info`` (if anything)."""
    try:
        info = json.loads(Path(train_annotations).read_text(encoding="utf-8")).get("info", {})
    except (OSError, ValueError):
        return []
    teacher, cleaning = info.get("teacher"), info.get("cleaning")
    if not (teacher and cleaning):
        return []
    swapped = ", ".join(f"{group} {n}" for group, n in cleaning["swapped"].items())
    return [
        "",
        f"Training labels cleaned by `python -m training.teacher`: the teacher, BlazePose GHUM Heavy "
        f"(`{teacher.get('model')}` from npm `{teacher.get('package')}` {teacher.get('version')}, "
        f"{teacher.get('license')}, sha256 `{str(teacher.get('sha256'))[:12]}…`; weights not shipped), "
        f"swapped left/right limb labels back where they clearly fit it better swapped ({cleaning['rule']}): "
        f"{cleaning['people_touched']} of {cleaning['people_checked']} training people ({swapped}). "
        "Validation images were never shown to the teacher and keep their published labels.",
    ]


def pck_text(metrics: dict[str, Any]) -> str:
    """What the card's PCK@0.2 columns mean, with the people counts of ``metrics`` (one decoder's)."""
    n, n_fallback = metrics.get("pck_n_instances", metrics["n_instances"]), metrics.get("pck_n_fallback")
    if metrics.get("pck_norm") != "torso":
        return f"PCK@0.2 normalised by the ground-truth box's longer side, over {n} people."
    if n_fallback is None:  # an evaluation.json written before every person was scored
        return f"PCK@0.2 with torso normalisation, over the {n} people whose torso is labelled."
    return (
        f"PCK@0.2 scores all {n} people: normalised by the torso diagonal (right shoulder to left hip, "
        f"else left shoulder to right hip), and the {n_fallback} without a labelled diagonal by "
        f"{metrics['pck_fallback']}; the torso-only column leaves those {n_fallback} out. Figures on "
        "this data's own held-out split: not comparable with published PCK on other test sets (for "
        "LSPET: the LSP test set's figures in the literature)."
    )


def _number(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def quoted_note(annotations: str) -> str:
    """The data's note (``data_note``) as a Markdown quote, or a request to state source and licence."""
    note = data_note(annotations)
    if not note:
        return f"No data note was found beside `{annotations}`: state the data's source and licence here."
    return "\n".join("> " + line if line else ">" for line in note.splitlines())


def weights_text(precision: dict[str, Any], decoder: str) -> str:
    """The card's "- weights:" text: float32, or float16 with the largest decode shift it caused."""
    if precision["dtype"] != "float16":
        return "float32."
    worst = precision["decode_shift_px"][decoder]["max"]
    return (
        f"float16 (loaded into float32): the largest shift of a `{decoder}` keypoint against the "
        f"float32 weights, over every held-out joint, is {worst:.4f} image px "
        f"(tolerance {precision['tolerance_px']})."
    )


def recipe_notes(evaluation: dict[str, Any], notes: str | None) -> str:
    """The Recipe section's opening: ``notes`` (export's ``--notes`` file) and the run's logged time."""
    parts = [notes.strip()] if notes and notes.strip() else []
    if "minutes" in evaluation:
        logged, minutes = evaluation["epochs_logged"], evaluation["minutes"]
        finished = evaluation.get("finished")
        epochs = f"{logged} epoch{'s' * (logged != 1)}"
        ending = f", the last one ending {finished.replace('T', ' ')}" if finished else ""
        parts.append(
            f"This run's log: {epochs} in {minutes:.0f} minutes ({minutes / logged:.1f} minutes an epoch, "
            f"validation included){ending}."
        )
    return "".join(part + "\n\n" for part in parts)


def recipe_lines(config: Any, evaluation: dict[str, Any], folder: Path) -> list[str]:
    """The commands that train the shipped model again, a stage at a time: each earlier stage's model is
    exported to the folder the next stage's init_from names."""
    here, stages = Path(folder).as_posix(), earlier_stages(evaluation, folder)
    recipe = []
    for k, after in enumerate([*stages, config][1:], 1):  # stage k's model goes where stage k + 1 starts
        recipe.append(
            f"python -m training.run {here}/{stage_files(k)[0]} out_dir=runs/stage{k}  "
            f"# then: python -m training.export runs/stage{k} {after.init_from}"
        )
    recipe.append(f"python -m training.run {here}/training_config.yaml out_dir=runs/again")
    return recipe


def write_release_card(
    folder: Path, config: Any, evaluation: dict[str, Any], annotations: str, notes: str | None = None
) -> Path:
    """Write ``folder/README.md`` for a model exported by ``training.export``.

    Args:
        folder: the shipped PoseModel directory (holds training_config.yaml, split.json, training_log.jsonl).
        config: the run's ``TrainConfig``.
        evaluation: ``{"decoders": {name: metrics}, "n_images": int, "precision": {...}}``, held out.
        annotations: the annotation file the held-out images come from.
        notes: Markdown that opens the card's Recipe section (earlier stages, hardware), if any.
    """
    coord_loss, heatmap_epochs, decoder = config.resolved()
    teacher = teacher_lines(config.train_annotations)
    fields = {
        "arch": config.arch,
        "method": config.method,
        "height": config.input_size[0],
        "width": config.input_size[1],
        "method_line": method_line(config.method, coord_loss, heatmap_epochs),
        "decoder": decoder,
        "beta": config.beta,
        "input_size": tuple(config.input_size),
        "weights": weights_text(evaluation["precision"], decoder),
        "provenance": _block(provenance_lines(config, evaluation, folder)),
        "train_annotations": config.train_annotations,
        "quoted": quoted_note(annotations),
        "teacher": "\n".join(teacher) + "\n" if teacher else "",
        "val_fraction": f"{config.val_fraction:.0%}",
        "seed": config.held_out_seed,  # the split's seed, not the augmentation's
        "metrics": "\n".join(metrics_lines(evaluation, annotations, decoder)),
        "recipe_notes": recipe_notes(evaluation, notes),
        "recipe": "\n".join(recipe_lines(config, evaluation, folder)),
        "citation": CITATION,
    }
    path = Path(folder) / "README.md"
    path.write_text(render("release_card.md", fields), encoding="utf-8")
    return path
