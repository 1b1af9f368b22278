"""Plotly figures of the bias lab: the softmax map with the estimates and Omega_1..4, the bias field over
every mode position (the paper's Fig. 1) for J_r and J_o side by side, and the bias versus beta.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.lab import ARROW_EVERY, BiasField, LabEstimate
from app.plots import OVERLAYS, add_partition, hex_colour, point_marker

_J_R = hex_colour(OVERLAYS["J_r (integral)"][1])
_J_O = hex_colour(OVERLAYS["J_o (debiased)"][1])
_MODE = "#ffffff"


def _image_axes(fig: go.Figure, **where: int) -> None:
    fig.update_yaxes(
        autorange="reversed", scaleanchor="x" if not where else None, constrain="domain", **where
    )
    fig.update_xaxes(constrain="domain", **where)


def map_figure(est: LabEstimate, beta: float, log_scale: bool) -> go.Figure:
    """The softmax map (linear or log10) with the true mode, J_r, J_o, the grid centre c and Omega_1..4."""
    values = np.log10(np.maximum(est.probabilities, 1e-30)) if log_scale else est.probabilities
    zmin = max(float(values.min()), float(values.max()) - 12) if log_scale else None  # keep the background
    fig = go.Figure(
        go.Heatmap(
            z=values,
            zmin=zmin,
            colorscale="Viridis",
            colorbar=dict(title=f"{'log10 ' if log_scale else ''}softmax<br>β={beta:g}"),
            hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>",
        )
    )
    points = [
        ("true mode", est.mode, "star", _MODE),
        ("J_r (integral)", est.j_r, "circle", _J_R),
        ("J_o (debiased)", est.j_o, "diamond", _J_O),
        ("c (grid centre)", est.centre, "cross-thin", "#bbbbbb"),
    ]
    for name, (x, y), symbol, colour in points:
        fig.add_trace(point_marker(name, x, y, symbol, colour, size=14, outline=1.5))
    add_partition(fig, est.omegas, "white")
    fig.update_layout(
        title=dict(text="softmax(βH) of the synthetic heatmap", font=dict(size=14)),
        height=520,
        margin=dict(l=40, r=10, t=40, b=10),
        legend=dict(orientation="h", y=-0.08),
        uirevision="lab-map",
    )
    _image_axes(fig)
    return fig


def _arrows(field: BiasField, vectors: np.ndarray, colour: str, gain: float) -> go.Scatter:
    """Arrows from the mode toward the estimate, ``gain`` times their length, on a coarse subgrid.

    One trace of line segments (shaft, then a two-barb head drawn in data units: the axes have equal
    scales); a layout annotation per arrow would cost ~10 ms each in plotly's validation.
    """
    head = 0.2 * (field.xs[1] - field.xs[0]) * ARROW_EVERY  # barb length, a fifth of the arrow spacing
    turn = np.deg2rad(25)
    xs, ys = [], []
    for i in range(ARROW_EVERY // 2, len(field.ys), ARROW_EVERY):
        for j in range(ARROW_EVERY // 2, len(field.xs), ARROW_EVERY):
            step = vectors[i, j] * gain
            length = float(np.hypot(*step))
            if length < 0.3:  # shorter than a third of a pixel on screen: no arrow to draw
                continue
            start = np.array([field.xs[j], field.ys[i]])
            end, back = start + step, -step / length * min(head, 0.5 * length)
            barbs = [end + _rotate(back, a) for a in (turn, -turn)]
            for p, q in ((start, end), (barbs[0], end), (barbs[1], end)):
                xs += [p[0], q[0], None]
                ys += [p[1], q[1], None]
    return go.Scatter(
        x=xs, y=ys, mode="lines", line=dict(color=colour, width=1.5), hoverinfo="skip", showlegend=False
    )


def _rotate(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _interior(field: BiasField, sigma: float) -> np.ndarray:
    """``(ny, nx)`` mask of the modes at least 3 sigma from every border: no part of the bump is cut off."""
    width, height = field.xs[-1], field.ys[-1]
    inside_x = (field.xs >= 3 * sigma) & (field.xs <= width - 3 * sigma)
    inside_y = (field.ys >= 3 * sigma) & (field.ys <= height - 3 * sigma)
    return inside_y[:, None] & inside_x[None, :]


def _arrow_gain(field: BiasField, interior: np.ndarray) -> float:
    """1, 2, 5, 10, ... so that the longest interior J_r arrow spans most of the gap between arrows."""
    lengths = field.err_r[interior] if interior.any() else field.err_r
    gap = (field.xs[1] - field.xs[0]) * ARROW_EVERY
    wanted = 0.8 * gap / max(float(lengths.max()), 1e-9)
    if wanted <= 1:
        return 1.0
    decade = 10 ** np.floor(np.log10(wanted))
    return float(max(m * decade for m in (1, 2, 5) if m * decade <= wanted))


def field_figure(field: BiasField, mode: np.ndarray, sigma: float) -> go.Figure:
    """|J_r − mode| and |J_o − mode| over every mode position, on one colour scale, with arrows.

    The colour scale ends at the largest J_r error of the interior (modes 3 sigma from the border), so the
    bias is readable; the border band, where the bump is cut off, saturates.
    """
    err_r, err_o = field.err_r, field.err_o
    interior = _interior(field, sigma)
    zmax = max(float(err_r[interior].max() if interior.any() else err_r.max()), 1e-6)
    gain = _arrow_gain(field, interior)
    arrows = "" if gain == 1 else f", arrows ×{gain:g}"
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=(
            f"|J_r − mode| (integral), max {err_r.max():.2f} px{arrows}",
            f"|J_o − mode| (debiased), max {err_o.max():.3f} px{arrows}",
        ),
    )
    for col, (errors, vectors, colour) in enumerate(
        ((err_r, field.vec_r, _J_R), (err_o, field.vec_o, _J_O)), 1
    ):
        fig.add_trace(
            go.Heatmap(
                z=errors,
                x=field.xs,
                y=field.ys,
                zmin=0,
                zmax=zmax,
                colorscale="Magma",
                colorbar=dict(title="error<br>(px)"),
                showscale=col == 2,
                hovertemplate="mode (%{x:.1f}, %{y:.1f}): %{z:.3f} px<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.add_trace(_arrows(field, vectors, colour, gain), row=1, col=col)
        fig.add_trace(
            go.Scatter(
                x=[mode[0]],
                y=[mode[1]],
                mode="markers",
                showlegend=False,
                hoverinfo="skip",
                marker=dict(symbol="star", size=12, color=_MODE, line=dict(color="black", width=1)),
            ),
            row=1,
            col=col,
        )
        _image_axes(fig, row=1, col=col)
    fig.update_yaxes(scaleanchor="x", row=1, col=1)
    fig.update_yaxes(scaleanchor="x2", row=1, col=2)
    fig.update_layout(height=440, margin=dict(l=40, r=10, t=50, b=20), uirevision="lab-field")
    return fig


def curve_figure(betas: np.ndarray, err_r: np.ndarray, err_o: np.ndarray, beta: float) -> go.Figure:
    """Bias of J_r and J_o versus beta (log axes), with the current beta marked."""
    floor = 1e-5  # errors at float32 rounding level would sit at log(0): show them at the floor
    fig = go.Figure()
    for name, errors, colour in (("|J_r − mode|", err_r, _J_R), ("|J_o − mode|", err_o, _J_O)):
        fig.add_trace(
            go.Scatter(
                x=betas,
                y=np.maximum(errors, floor),
                mode="lines+markers",
                name=name,
                line=dict(color=colour, width=3),
                marker=dict(size=5),
                hovertemplate="β %{x:.2f}: %{y:.3g} px<extra></extra>",
            )
        )
    top = max(float(np.max(err_r)), floor * 10)
    fig.add_trace(
        go.Scatter(
            x=[beta, beta],
            y=[floor, top],
            mode="lines",
            name=f"β = {beta:g}",
            hoverinfo="skip",
            line=dict(color="grey", dash="dot", width=2),
        )
    )
    fig.update_layout(
        title=dict(text="error versus β for this bump", font=dict(size=14)),
        xaxis=dict(type="log", title="β", tickvals=[0.5, 1, 2, 5, 10, 20, 50]),
        yaxis=dict(type="log", title="error (px)", exponentformat="power"),
        height=360,
        margin=dict(l=50, r=10, t=40, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
    )
    return fig
