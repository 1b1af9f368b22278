"""python -m training.compare CONFIG [key=value ...]: the paper's comparisons as reproducible runs.

Trains, with one budget: detection vs ipr vs debiased (Fig. 4 / 6), the beta ablation (1, 10, 20) and
the component ablation (Table 6); scores the difficulty splits (Table 1); writes ``compare.json`` and a
self-contained plotly ``compare.html``. Each run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
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
}
GROUPS: dict[str, list[str]] = {
    "methods": ["detection", "ipr", "debiased"],
    "beta": ["debiased_beta1", "debiased", "debiased_beta20"],
    "ablation": ["ipr", "ipr_lde", "ipr_laug", "debiased_no_laug", "debiased"],
}


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.compare", description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", help="base YAML config (a training/configs file)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="overrides for every run")
    parser.add_argument(
        "--out", default="runs/compare", help="folder of the runs, compare.json and compare.html"
    )
    parser.add_argument(
        "--groups", default=",".join(GROUPS), help=f"comma-separated subset of {list(GROUPS)}"
    )
    args = parser.parse_args(argv)
    config_path, base = args.config, list(args.overrides)
    if config_path is not None and "=" in config_path:
        config_path, base = None, [config_path, *base]
    groups = {g: GROUPS[g] for g in args.groups.split(",") if g}
    names = list(dict.fromkeys(name for members in groups.values() for name in members))
    out = Path(args.out)
    try:
        base_config = load_config(config_path, base)
        base_config.validate()  # before the first of the runs, not an hour into them
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    runs = {}
    for name in names:
        print(f"== {name}: {RUNS[name][0]}", file=sys.stderr)
        result = run_one(config_path, run_overrides(name, base, out, base_config.aug_epochs))
        runs[name] = {"label": RUNS[name][0], "overrides": RUNS[name][1], **result}
    results = {"base_config": asdict(base_config), "groups": groups, "runs": runs}
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(results, indent=1, allow_nan=False), encoding="utf-8")
    write_report(results, out / "compare.html")
    print(f"wrote {out / 'compare.json'} and {out / 'compare.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
