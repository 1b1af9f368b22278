"""python -m training.compare CONFIG [key=value ...]: the paper's comparisons as reproducible runs.

Trains, with one budget: detection vs ipr vs debiased (Fig. 4 / 6), the beta ablation (1, 10, 20) and
the component ablation (Table 6); scores the difficulty splits (Table 1); writes ``compare.json`` and a
self-contained plotly ``compare.html``. Each run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pose.evaluation.predictions import predict_dataset, splits
from training.config import ConfigError, load_config
from training.evaluate import progress_bar
from training.report import write_report
from training.trainer import Trainer

# name -> (label, overrides on top of the base config); groups say which runs each comparison shows.
RUNS: dict[str, tuple[str, list[str]]] = {
    "detection": ("detection (heatmap MSE, argmax)", ["method=detection"]),
    "ipr": ("ipr (L1 on J_r)", ["method=ipr"]),
    "debiased": ("debiased + L_aug (L1 on J_o)", ["method=debiased"]),
    "debiased_beta1": ("debiased + L_aug, beta 1", ["method=debiased", "beta=1"]),
    "debiased_beta20": ("debiased + L_aug, beta 20", ["method=debiased", "beta=20"]),
    "ipr_lde": ("ipr + L_de (heatmap MSE every epoch)", ["method=ipr", "heatmap_epochs=-1"]),
    "ipr_laug": ("ipr + L_aug (first aug_epochs)", ["method=ipr", "heatmap_epochs=-2"]),
    "debiased_no_laug": ("debias without L_aug", ["method=debiased", "heatmap_epochs=0"]),
    "ipr_beta1": ("ipr, beta 1", ["method=ipr", "beta=1"]),
    "debiased_no_laug_beta1": (
        "debias without L_aug, beta 1",
        ["method=debiased", "heatmap_epochs=0", "beta=1"],
    ),
}
GROUPS: dict[str, list[str]] = {
    "methods": ["detection", "ipr", "debiased"],
    "beta": ["debiased_beta1", "debiased", "debiased_beta20"],
    "ablation": ["ipr", "ipr_lde", "ipr_laug", "debiased_no_laug", "debiased"],
    # The bias alone (no L_aug on either side), where the paper says it matters most: a low beta.
    "bias": ["ipr_beta1", "debiased_no_laug_beta1", "ipr", "debiased_no_laug"],
}
DEFAULT_GROUPS = ("methods", "beta", "ablation")


def run_overrides(name: str, base: list[str], out: Path, aug_epochs: int) -> list[str]:
    """The key=value list of run ``name``: the base overrides, then the run's own, then its folder."""
    own = [o.replace("heatmap_epochs=-2", f"heatmap_epochs={aug_epochs}") for o in RUNS[name][1]]
    return [*base, *own, f"out_dir={out / name}", "resume=true"]


def run_one(config_path: str | None, overrides: list[str]) -> dict[str, Any]:
    """Train (or resume, or just reload) one run; return its per-epoch metrics and its splits."""
    config = load_config(config_path, overrides)
    trainer = Trainer(config)
    trainer.fit()
    epochs = [json.loads(line) for line in (Path(config.out_dir) / "metrics.jsonl").read_text().splitlines()]
    model, name, bar = trainer.model, trainer.decoder, progress_bar
    data = predict_dataset(model, trainer.val_set, [name], config.beta, config.batch_size, progress=bar)
    return {"epochs": epochs, "final": epochs[-1] if epochs else {}, "splits": splits(data, trainer.decoder)}


def run_over_seeds(
    config_path: str | None,
    name: str,
    base: list[str],
    out: Path,
    aug_epochs: int,
    seeds: list[int],
    split_seed: int,
) -> dict[str, Any]:
    """Run ``name`` once per seed on one hold-out (``out/seedS/name``); return the mean over seeds."""
    per_seed = {}
    for seed in seeds:
        print(f"== {name}, seed {seed}: {RUNS[name][0]}", file=sys.stderr)
        overrides = [*base, f"seed={seed}", f"split_seed={split_seed}"]
        per_seed[seed] = run_one(config_path, run_overrides(name, overrides, out / f"seed{seed}", aug_epochs))
    return mean_over_seeds(per_seed)


def mean_over_seeds(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """One run's entry from its seeds: per-epoch means (over the epochs every seed reached), the final
    metrics' mean and sample standard deviation (``final_sd``), and each seed's own entry."""
    runs = list(per_seed.values())
    n_epochs = min(len(run["epochs"]) for run in runs)
    epochs = [_mean_records([run["epochs"][i] for run in runs]) for i in range(n_epochs)]
    finals = [run["final"] for run in runs]
    return {
        "epochs": epochs,
        "final": _mean_records(finals),
        "final_sd": _sd_records(finals),
        "splits": {},
        "seeds": {str(seed): run for seed, run in per_seed.items()},
    }


def _numeric_keys(records: list[dict[str, Any]]) -> list[str]:
    """The keys whose value is a number in every record."""
    first = records[0] if records else {}
    return [k for k, v in first.items() if all(_is_number(r.get(k)) for r in records) and _is_number(v)]


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _mean_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    keys = _numeric_keys(records)
    return {k: records[0][k] if k == "epoch" else statistics.fmean(r[k] for r in records) for k in keys}


def _sd_records(records: list[dict[str, Any]]) -> dict[str, float]:
    if len(records) < 2:
        return {}
    return {k: statistics.stdev(r[k] for r in records) for k in _numeric_keys(records) if k != "epoch"}


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"--seeds needs distinct integers, got {text!r}")
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", help="base YAML config (a training/configs file)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for every run")
    parser.add_argument(
        "--out", default="runs/compare", help="folder of the runs, compare.json and compare.html"
    )
    parser.add_argument(
        "--groups", default=",".join(DEFAULT_GROUPS), help=f"comma-separated subset of {list(GROUPS)}"
    )
    parser.add_argument(
        "--seeds",
        type=_parse_seeds,
        default=None,
        help="comma-separated seeds: each run is trained once per seed, all on the hold-out of split_seed "
        "(default: seed), and compare.json holds the mean (curves, final metrics and their sd)",
    )
    args = parser.parse_args(argv)
    config_path, base = args.config, list(args.overrides)
    if config_path is not None and "=" in config_path:
        config_path, base = None, [config_path, *base]
    unknown = [g for g in args.groups.split(",") if g and g not in GROUPS]
    if unknown:
        parser.error(f"--groups: unknown {unknown}; choose from {list(GROUPS)}")
    groups = {g: GROUPS[g] for g in args.groups.split(",") if g}
    names = list(dict.fromkeys(name for members in groups.values() for name in members))
    out = Path(args.out)
    try:
        base_config = load_config(config_path, base)
        base_config.validate()  # before the first of the runs, not an hour into them
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    split_seed = base_config.held_out_seed
    runs = {}
    for name in names:
        if args.seeds is None:
            print(f"== {name}: {RUNS[name][0]}", file=sys.stderr)
            result = run_one(config_path, run_overrides(name, base, out, base_config.aug_epochs))
        else:
            result = run_over_seeds(
                config_path, name, base, out, base_config.aug_epochs, args.seeds, split_seed
            )
        runs[name] = {"label": RUNS[name][0], "overrides": RUNS[name][1], **result}
    results = {"base_config": asdict(base_config), "groups": groups, "runs": runs}
    if args.seeds is not None:
        results.update(seeds=args.seeds, split_seed=split_seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(results, indent=1, allow_nan=False), encoding="utf-8")
    write_report(results, out / "compare.html")
    print(f"wrote {out / 'compare.json'} and {out / 'compare.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
