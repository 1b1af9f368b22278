"""The training-analysis tab's data: ``compare.json`` as ``python -m training.compare`` writes it, read
leniently into metric-versus-epoch curves and tables (final metrics per comparison, difficulty splits).

The layout read (see training/compare.py; unknown keys are ignored)::

    {"base_config": {"arch": ..., "input_size": [h, w], "epochs": ..., ...},
     "groups": {"methods": [run, ...], "beta": [run, ...], "ablation": [run, ...]},
     "runs": {run: {"label": "ipr (L1 on J_r)",
                    "epochs": [{"epoch": 0, "loss": ..., "val_pck@0.2": ..., "val_epe": ...}, ...],
                    "final": {same keys as an epoch},
                    "splits": {"box_size": {"bins": [{"label": "< 90 px", "epe": ..., "n": ...}]} | null}}}}
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

RESULTS_ENV = "COMPARE_RESULTS"
RESULTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "results"
# The studies the tab shows, each a compare.json: the paper's comparisons (seed 0), then the bias alone.
DEFAULT_RESULTS = (RESULTS_DIR / "compare.json", RESULTS_DIR / "bias.json")
GROUP_TITLES = {
    "methods": "detection vs ipr vs debiased (paper Fig. 4 / 6)",
    "beta": "β ablation (debiased + L_aug)",
    "ablation": "component ablation (paper Table 6)",
    "bias": "the bias alone: ipr vs debiased, no L_aug, β 1 and 10",
}
# What a comparison isolates, shown under its setup line.
GROUP_NOTES = {
    "bias": (
        "Both sides train the L1 on coordinates alone (no heatmap loss), so the bias is the only "
        "difference: `ipr` supervises J_r, the soft-argmax, which the softmax's background pulls toward the "
        "map centre; `debiased` supervises J_o, which removes that pull exactly (Eq. 8: "
        "J_r = (1 − ρ)·J_o + ρ·c). At β 1 the softmax is flattest and the pull strongest, where the paper "
        "says compensation matters most; at β 10 it is small."
    ),
}
FINAL_METRICS = {"val_pck@0.2": "PCK@0.2", "val_epe": "EPE (px)", "val_auc": "AUC", "val_ap": "AP"}
# plotly's default colour cycle, fixed here so that a curve and its seed band share a colour
DEFAULT_COLOURS = ("#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880")
SETUP_KEYS = ("arch", "input_size", "epochs", "batch_size", "beta", "aug_epochs", "max_train_images")
HOW_TO = (
    "No comparison results yet: `{path}` does not exist. They come from the paper's comparisons, which "
    "train `detection`, `ipr` and `debiased` (plus the β and component ablations) with one budget:\n\n"
    "```bash\npython -m training.compare training/configs/lspet_lite0_compare.yaml --out runs/lspet_compare\n"
    "cp runs/lspet_compare/compare.json assets/results/compare.json\n```\n\n"
    f"then restart the app (or point `{RESULTS_ENV}` at another compare.json)."
)


class ResultsError(ValueError):
    """The results file exists but cannot be used; the message names what is wrong."""


@dataclass(frozen=True)
class Results:
    """A parsed ``compare.json``.

    Attributes:
        groups: comparison name -> run names, in the file's order (only runs that exist).
        runs: run name -> its entry (``label``, ``epochs``, ``final``, ``splits``).
        base_config: the base training config (shown as the setup line).
    """

    groups: dict[str, list[str]]
    runs: dict[str, dict[str, Any]]
    base_config: dict[str, Any]
    seeds: tuple[int, ...] = ()

    def title(self) -> str:
        """A tab title: the paper's comparisons, or the one group's title (and its seeds)."""
        if len(self.groups) != 1:
            return "the paper's comparisons"
        title = GROUP_TITLES.get(next(iter(self.groups)), next(iter(self.groups)))
        return f"{title}, {len(self.seeds)} seeds" if self.seeds else title

    def metrics(self) -> list[str]:
        """Numeric per-epoch keys of any run, validation metrics first."""
        keys = dict.fromkeys(
            k
            for run in self.runs.values()
            for record in run["epochs"]
            for k, v in record.items()
            if k != "epoch" and _number(v) is not None
        )
        return sorted(keys, key=lambda k: (not k.startswith("val_"), list(keys).index(k)))

    def label(self, run: str) -> str:
        return str(self.runs[run].get("label") or run)


def results_paths() -> list[Path]:
    """The ``compare.json`` files to show: ``COMPARE_RESULTS`` (one path, or several joined by
    ``os.pathsep``) if set, else ``DEFAULT_RESULTS``."""
    value = os.environ.get(RESULTS_ENV)
    return [Path(p) for p in value.split(os.pathsep) if p] if value else list(DEFAULT_RESULTS)


def load_results(path: Path) -> Results | None:
    """The results at ``path``, or None when the file does not exist (yet).

    Raises:
        ResultsError: unreadable JSON, or no ``runs`` with per-epoch metrics.
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path.name} is not readable JSON ({err})") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    if not isinstance(runs, dict) or not runs:
        raise ResultsError(f"{path.name} has no 'runs' (expected the output of python -m training.compare)")
    for name, run in runs.items():
        if not isinstance(run, dict) or not isinstance(run.get("epochs"), list):
            raise ResultsError(f"{path.name}: run {name!r} has no 'epochs' list")
        run.setdefault("final", run["epochs"][-1] if run["epochs"] else {})
    raw_groups = data.get("groups") if isinstance(data.get("groups"), dict) else {"runs": list(runs)}
    groups = {str(g): [r for r in members if r in runs] for g, members in raw_groups.items()}
    base = data.get("base_config") if isinstance(data.get("base_config"), dict) else {}
    seeds = tuple(s for s in data.get("seeds") or () if isinstance(s, int))
    return Results({g: m for g, m in groups.items() if m}, runs, base, seeds)


def _number(value: object) -> float | None:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if number and math.isfinite(value) else None


def notes_text(results: Results) -> str:
    """Markdown: what each of the file's comparisons isolates (empty when none has a note)."""
    return "\n\n".join(GROUP_NOTES[g] for g in results.groups if g in GROUP_NOTES)


def setup_text(results: Results) -> str:
    """One Markdown line with the base config's main settings (and the seeds, where repeated)."""
    parts = [f"{k} = {results.base_config[k]}" for k in SETUP_KEYS if k in results.base_config]
    if results.seeds:
        seeds = ", ".join(map(str, results.seeds))
        parts.append(f"seeds {seeds} on one hold-out: each curve is their mean, its band spans them")
    return "**Setup:** " + ", ".join(parts) if parts else ""


def metric_figure(results: Results, group: str, metric: str) -> go.Figure:
    """``metric`` versus epoch (1-based) for each run of ``group``; epochs without it are skipped."""
    fig = go.Figure()
    for index, run in enumerate(results.groups.get(group, [])):
        colour = DEFAULT_COLOURS[index % len(DEFAULT_COLOURS)]
        points = [
            (int(r["epoch"]) + 1, _number(r.get(metric)))
            for r in results.runs[run]["epochs"]
            if "epoch" in r and _number(r.get(metric)) is not None
        ]
        if points:
            xs, ys = zip(*points, strict=True)
            label = results.label(run)
            fig.add_trace(
                go.Scatter(x=xs, y=ys, mode="lines+markers", name=label, line=dict(width=3, color=colour))
            )
            band = _seed_band(results.runs[run], metric)
            if band is not None:
                fig.add_trace(_band_trace(*band, colour, label))
    name = FINAL_METRICS.get(metric, metric)
    fig.update_layout(
        title=dict(text=f"{GROUP_TITLES.get(group, group)}: {name}", font=dict(size=14)),
        xaxis_title="epoch",
        yaxis_title=name,
        height=420,
        margin=dict(l=50, r=10, t=40, b=40),
        legend=dict(orientation="h", yanchor="top", y=-0.15, x=0),
    )
    return fig


def _seed_band(run: dict[str, Any], metric: str) -> tuple[list[int], list[float], list[float]] | None:
    """(epochs 1-based, min, max) of ``metric`` over a run's seeds; None for a run of one seed."""
    seeds = [s.get("epochs", []) for s in (run.get("seeds") or {}).values()]
    if len(seeds) < 2:
        return None
    by_epoch: dict[int, list[float]] = {}
    for epochs in seeds:
        for r in epochs:
            value = _number(r.get(metric))
            if "epoch" in r and value is not None:
                by_epoch.setdefault(int(r["epoch"]) + 1, []).append(value)
    xs = sorted(x for x, values in by_epoch.items() if len(values) == len(seeds))
    if not xs:
        return None
    return xs, [min(by_epoch[x]) for x in xs], [max(by_epoch[x]) for x in xs]


def _band_trace(xs: list[int], low: list[float], high: list[float], colour: str, label: str) -> go.Scatter:
    """A filled polygon from ``low`` up to ``high``, in the colour of the curve it belongs to."""
    return go.Scatter(
        x=[*xs, *xs[::-1]],
        y=[*high, *low[::-1]],
        fill="toself",
        fillcolor=colour,
        opacity=0.2,
        line=dict(width=0),
        hoverinfo="skip",
        showlegend=False,
        name=f"{label}: seed range",
    )


def final_table(results: Results, group: str) -> pd.DataFrame:
    """The final validation metrics of each run of ``group`` (empty cells where not measured); where
    the runs were repeated over seeds, each metric is their mean and is followed by their sd."""
    runs = results.groups.get(group, [])
    repeated = any(results.runs[run].get("final_sd") for run in runs)
    rows = []
    for run in runs:
        final, sd = results.runs[run]["final"], results.runs[run].get("final_sd") or {}
        row = {"run": results.label(run)}
        for key, name in FINAL_METRICS.items():
            row[name] = _rounded(final.get(key))
            if repeated:
                row[f"{name} sd"] = _rounded(sd.get(key))
        rows.append(row)
    columns = ["run", *(c for name in FINAL_METRICS.values() for c in (name, f"{name} sd")[: 1 + repeated])]
    return pd.DataFrame(rows, columns=columns)


def splits_table(results: Results, group: str = "methods") -> pd.DataFrame | None:
    """EPE (px) per difficulty bin (paper Table 1), one row per run of ``group``; None without splits."""
    rows, columns = [], {}
    for run in results.groups.get(group, []):
        row = {"run": results.label(run)}
        for factor, split in (results.runs[run].get("splits") or {}).items():
            for b in (split or {}).get("bins", []):
                column = f"{factor.replace('_', ' ')}: {b.get('label')}"
                columns[column] = None
                row[column] = _rounded(b.get("epe"))
        rows.append(row)
    if not columns:
        return None
    return pd.DataFrame(rows, columns=["run", *columns])


def _rounded(value: object) -> float | None:
    number = _number(value)
    return None if number is None else round(number, 4)
