"""Drawing for the photo tab: keypoint overlays on the photo (OpenCV, with a legend) and the zoomable
plotly heatmap of one joint with argmax, J_r, J_o and the partition Omega_1..4 around J_o.
"""

from __future__ import annotations

import cv2
import numpy as np
import plotly.graph_objects as go

from app.detection import Detections
from app.photo import Decoded, JointMap

# Overlay names as the UI's checkboxes show them, with their colours (RGB) and marker shapes.
OVERLAYS: dict[str, tuple[str, tuple[int, int, int], str]] = {
    "J_r (integral)": ("integral", (255, 150, 20), "circle"),
    "J_o (debiased)": ("debiased", (40, 210, 255), "diamond"),
    "argmax": ("argmax", (255, 60, 220), "cross"),
}
SKELETON = "skeleton"
BOXES = "person boxes"
OVERLAY_CHOICES = (*OVERLAYS, SKELETON, BOXES)
DEFAULT_OVERLAYS = ["J_r (integral)", "J_o (debiased)", SKELETON, BOXES]
_SHIFT = 4  # OpenCV fixed-point bits: markers land on sub-pixel positions (1/16 px)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def hex_colour(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(points) * (1 << _SHIFT)).astype(np.int32)


def _marker(canvas: np.ndarray, xy: np.ndarray, colour: tuple[int, int, int], shape: str, r: int) -> None:
    """One marker with a dark outline, so it reads on light and dark photos alike."""
    (x, y), s = _fixed(xy), r << _SHIFT
    if shape == "cross":
        for dx, dy in ((s, s), (s, -s)):
            for colour_, width in (((0, 0, 0), r // 2 + 3), (colour, r // 2 + 1)):
                cv2.line(canvas, (x - dx, y - dy), (x + dx, y + dy), colour_, width, cv2.LINE_AA, _SHIFT)
        return
    if shape == "diamond":
        pts = np.array([[x, y - s], [x + s, y], [x, y + s], [x - s, y]], dtype=np.int32)
        cv2.fillPoly(canvas, [pts], colour, cv2.LINE_AA, _SHIFT)
        cv2.polylines(canvas, [pts], True, (0, 0, 0), 1, cv2.LINE_AA, _SHIFT)
        return
    cv2.circle(canvas, (x, y), s, colour, -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(canvas, (x, y), s, (0, 0, 0), 1, cv2.LINE_AA, _SHIFT)


def draw_overlay(
    image: np.ndarray,
    detections: Detections,
    decoded: Decoded | None,
    skeleton: tuple[tuple[int, int], ...],
    shown: list[str],
    selected: int = 0,
) -> np.ndarray:
    """The photo with the chosen overlays and a legend of what is drawn.

    Args:
        image: ``(h, w, 3)`` uint8 RGB (not modified).
        detections: person boxes in ``image`` pixels.
        decoded: the decodes of every person, or None (boxes only).
        skeleton: edges ``(i, j)`` of the checkpoint's schema.
        shown: names from ``OVERLAY_CHOICES``.
        selected: the person whose box is highlighted.

    Returns:
        ``(h, w, 3)`` uint8 RGB.
    """
    canvas = image.copy()
    r = max(3, round(max(image.shape[:2]) / 220))  # marker radius: ~6 px on a 1280 px photo
    if BOXES in shown:
        for i, box in enumerate(detections.boxes):
            colour = (255, 255, 255) if i == selected else (170, 170, 170)
            p0, p1 = tuple(int(v) for v in box[:2]), tuple(int(v) for v in box[2:])
            cv2.rectangle(canvas, p0, p1, colour, 2 if i == selected else 1, cv2.LINE_AA)
            cv2.putText(
                canvas, str(i + 1), (p0[0] + 4, p0[1] + 6 + 5 * r), _FONT, r / 5, colour, 2, cv2.LINE_AA
            )
    drawn = [name for name in OVERLAYS if name in shown] if decoded is not None else []
    if decoded is not None:
        _draw_people(canvas, decoded, skeleton, drawn, SKELETON in shown, r)
    _legend(canvas, drawn + ([SKELETON] if decoded is not None and SKELETON in shown else []), r)
    return canvas


def _draw_people(
    canvas: np.ndarray, decoded: Decoded, skeleton: tuple, drawn: list[str], with_skeleton: bool, r: int
) -> None:
    # The skeleton joins the debiased points when shown (the app's answer), else whichever is shown.
    bones_from = next((OVERLAYS[n][0] for n in drawn), "debiased")
    if with_skeleton:
        for person in decoded[bones_from].keypoints:
            pts = _fixed(person)
            for i, j in skeleton:
                cv2.line(canvas, tuple(pts[i]), tuple(pts[j]), (0, 0, 0), r // 2 + 3, cv2.LINE_AA, _SHIFT)
                cv2.line(
                    canvas, tuple(pts[i]), tuple(pts[j]), (245, 245, 245), r // 2 + 1, cv2.LINE_AA, _SHIFT
                )
    if "J_r (integral)" in drawn and "J_o (debiased)" in drawn:
        # The shift the compensation makes, drawn as a thin line from J_r to J_o.
        for a, b in zip(
            _fixed(decoded.integral.keypoints.reshape(-1, 2)),
            _fixed(decoded.debiased.keypoints.reshape(-1, 2)),
            strict=True,
        ):
            cv2.line(canvas, tuple(a), tuple(b), OVERLAYS["J_o (debiased)"][1], 1, cv2.LINE_AA, _SHIFT)
    for name in drawn:
        decoder, colour, shape = OVERLAYS[name]
        for xy in decoded[decoder].keypoints.reshape(-1, 2):
            _marker(canvas, xy, colour, shape, r)


def _legend(canvas: np.ndarray, names: list[str], r: int) -> None:
    """A legend box in the bottom-left corner (the UI puts its label and buttons over the top corners)."""
    if not names:
        return
    scale = max(0.45, r / 7.5)
    line = int(28 * scale / 0.6)
    width = int(max(cv2.getTextSize(n, _FONT, scale, 1)[0][0] for n in names) + 3 * line)
    height = line * len(names) + line // 2
    top = max(0, canvas.shape[0] - height)
    box = canvas[top:, :width]
    box[:] = (box * 0.35).astype(np.uint8)  # darkened, so text and markers read on any photo
    for k, name in enumerate(names):
        y = top + line * (k + 1)
        centre = np.array([line * 0.8, y - line * 0.3])
        if name == SKELETON:
            p, q = _fixed(centre - [line * 0.5, 0]), _fixed(centre + [line * 0.5, 0])
            cv2.line(canvas, tuple(p), tuple(q), (245, 245, 245), 2, cv2.LINE_AA, _SHIFT)
        else:
            _marker(canvas, centre, OVERLAYS[name][1], OVERLAYS[name][2], max(3, r))
        cv2.putText(canvas, name, (int(line * 1.8), y), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)


def joint_figure(view: JointMap | None, title: str, beta: float) -> go.Figure:
    """The zoomable heatmap of one joint with its three estimates and Omega_1..4 around J_o.

    Args:
        view: from :func:`app.photo.joint_map`; None gives an empty figure with ``title`` as message.
        title: figure title (joint and person).
        beta: the current beta (named in the colour bar of the softmax view).
    """
    fig = go.Figure()
    layout = dict(
        title=dict(text=title, font=dict(size=14)),
        height=500,
        margin=dict(l=40, r=10, t=40, b=40),
        yaxis=dict(autorange="reversed", scaleanchor="x", constrain="domain", title="heatmap y (px)"),
        xaxis=dict(constrain="domain", title="heatmap x (px)"),
        legend=dict(orientation="h", y=-0.18),
        uirevision="joint",  # keep the visitor's zoom while beta moves
    )
    if view is None:  # a message instead of empty axes
        fig.add_annotation(
            text=title,
            showarrow=False,
            font=dict(size=15, color="grey"),
            x=0.5,
            y=0.5,
            xref="paper",
            yref="paper",
        )
        fig.update_layout(
            title=None,
            height=300,
            xaxis=dict(visible=False),
            yaxis=dict(visible=False),
            plot_bgcolor="rgba(0,0,0,0)",
        )
        return fig
    if view.softmax:
        colour = dict(colorscale="Viridis", colorbar=dict(title=f"softmax<br>β={beta:g}"))
    else:
        colour = dict(colorscale="RdBu_r", zmid=0.0, colorbar=dict(title="logit"))
    fig.add_trace(
        go.Heatmap(z=view.values, hovertemplate="x %{x}, y %{y}: %{z:.4g}<extra></extra>", **colour)
    )
    for name, (decoder, rgb, shape) in OVERLAYS.items():
        x, y = view.estimates[decoder]
        symbol = {"circle": "circle", "diamond": "diamond", "cross": "x"}[shape]
        fig.add_trace(point_marker(name, x, y, symbol, hex_colour(rgb), size=13, outline=2))
    # Dark outlines on the logits' white (zero) background, light ones on the dark softmax map.
    add_partition(fig, view.omegas, "white" if view.softmax else "#333333")
    fig.update_layout(**layout)
    return fig


def add_partition(fig: go.Figure, rects: np.ndarray, colour: str) -> None:
    """Omega_1..4 (around J_o) as dashed rectangles labelled in a corner; empty parts are skipped."""
    for k, (x0, y0, x1, y1) in enumerate(rects):
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            continue
        fig.add_shape(
            type="rect",
            x0=x0,
            y0=y0,
            x1=x1,
            y1=y1,
            line=dict(color=colour, width=1.5, dash="dash"),
            label=dict(text=f"Ω{k + 1}", font=dict(color=colour, size=14), textposition="top left"),
        )


def point_marker(
    name: str, x: float, y: float, symbol: str, colour: str, size: int, outline: float
) -> go.Scatter:
    """One labelled, black-outlined marker at ``(x, y)`` in heatmap px; the legend shows its coordinates."""
    marker = dict(symbol=symbol, size=size, color=colour, line=dict(color="black", width=outline))
    return go.Scatter(x=[x], y=[y], mode="markers", name=f"{name} ({x:.2f}, {y:.2f})", marker=marker)
