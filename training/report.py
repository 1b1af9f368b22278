"""The comparison report: metric-versus-epoch curves and tables of ``compare.json`` as one HTML file.

Self-contained (plotly.js inlined once), so it opens offline and can be shipped in assets/.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

METRICS = [("val_pck@0.2", "PCK@0.2"), ("val_epe", "EPE (px)"), ("val_ap", "AP")]
TITLES = {
    "methods": "Detection vs integral regression vs bias compensation (paper Fig. 4 / 6)",
    "beta": "beta ablation (debiased + L_aug)",
    "ablation": "Component ablation (paper Table 6)",
    "bias": "The bias alone: ipr vs debiased, neither with L_aug, at beta 1 and beta 10",
}


def curves(results: dict[str, Any], group: str, key: str, label: str) -> go.Figure:
    """Validation ``key`` per epoch for each run of ``group``."""
    fig = go.Figure()
    for name in results["groups"][group]:
        run = results["runs"][name]
        points = [(e["epoch"] + 1, e[key]) for e in run["epochs"] if e.get(key) is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines+markers", name=run["label"]))
    fig.update_layout(
        title=f"{TITLES.get(group, group)}: {label}", xaxis_title="epoch", yaxis_title=label, height=380
    )
    return fig


def table(results: dict[str, Any], group: str) -> str:
    """Final metrics of each run of ``group`` as an HTML table (mean ± sd over seeds where repeated)."""
    head = "".join(f"<th>{label}</th>" for _, label in METRICS)
    rows = []
    for name in results["groups"][group]:
        run = results["runs"][name]
        sd = run.get("final_sd") or {}
        cells = "".join(f"<td>{_fmt(run['final'].get(key), sd.get(key))}</td>" for key, _ in METRICS)
        rows.append(f"<tr><td>{html.escape(run['label'])}</td>{cells}</tr>")
    return f"<table><tr><th>run</th>{head}</tr>{''.join(rows)}</table>"


def splits_table(results: dict[str, Any]) -> str:
    """EPE per difficulty bin (paper Table 1) for the runs of the methods group."""
    parts = []
    for name in results["groups"].get("methods", []):
        run_splits = results["runs"][name].get("splits") or {}
        cells = []
        for factor, split in run_splits.items():
            if split is None:
                continue
            cells += [
                f"<td>{html.escape(factor)} {html.escape(b['label'])}: {_fmt(b['epe'])}</td>"
                for b in split["bins"]
            ]
        parts.append(f"<tr><td>{html.escape(results['runs'][name]['label'])}</td>{''.join(cells)}</tr>")
    return f"<table>{''.join(parts)}</table>"


def write_report(results: dict[str, Any], path: Path) -> None:
    """Write the whole report to ``path``."""
    sections, first = [], True
    for group in results["groups"]:
        sections.append(f"<h2>{html.escape(TITLES.get(group, group))}</h2>{table(results, group)}")
        for key, label in METRICS:
            fig = curves(results, group, key, label)
            if fig.data:
                sections.append(fig.to_html(full_html=False, include_plotlyjs="inline" if first else False))
                first = False
    if "methods" in results["groups"]:
        sections.append(f"<h2>EPE by difficulty (paper Table 1)</h2>{splits_table(results)}")
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "td,th{padding:4px 10px;border-bottom:1px solid #ddd}"
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>debias-pose comparison</title>"
        f"<style>{style}</style></head><body><h1>debias-pose: the paper's comparisons</h1>"
        f"{''.join(sections)}</body></html>"
    )
    Path(path).write_text(page, encoding="utf-8")


def _fmt(value: Any, sd: float | None = None) -> str:
    """A metric to 4 decimals, with its sd over seeds where the run was repeated."""
    if value is None:
        return "–"
    return f"{value:.4f}" if sd is None else f"{value:.4f} ± {sd:.4f}"
