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
ARROWS = "J_r → J_o arrows"
MAGNIFY = "magnify sub-pixel arrows"
OVERLAY_CHOICES = (*OVERLAYS, ARROWS, MAGNIFY, SKELETON, BOXES)
DEFAULT_OVERLAYS = ["J_r (integral)", "J_o (debiased)", ARROWS, MAGNIFY, SKELETON, BOXES]
ARROW_RGB = (255, 235, 0)
_ARROW_LEGEND = "J_r -> J_o"  # OpenCV's Hershey fonts draw ASCII only
_NICE = (1, 2, 5)  # magnifications are 1, 2, 5 times a power of ten, so the legend reads easily
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
    legend: bool = True,
) -> np.ndarray:
    """The photo with the chosen overlays and (``legend``) a legend of what is drawn.

    Args:
        image: ``(h, w, 3)`` uint8 RGB (not modified).
        detections: person boxes in ``image`` pixels.
        decoded: the decodes of every person, or None (boxes only).
        skeleton: edges ``(i, j)`` of the checkpoint's schema.
        shown: names from ``OVERLAY_CHOICES``.
        selected: the person whose box is highlighted.
        legend: draw the legend box (the side-by-side panels cut it off, so they go without).

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
    legend_names = drawn + ([SKELETON] if decoded is not None and SKELETON in shown else [])
    magnification = 0
    if decoded is not None and ARROWS in shown:
        j_r, j_o = decoded.integral.keypoints, decoded.debiased.keypoints
        magnification = arrow_magnification(j_r, j_o, r, MAGNIFY in shown)
        legend_names.append(_ARROW_LEGEND + ("" if magnification == 1 else f" (shift x{magnification})"))
    if decoded is not None:
        _draw_people(canvas, decoded, skeleton, drawn, SKELETON in shown, r, magnification)
    _legend(canvas, legend_names if legend else [], r)
    return canvas


def _draw_people(
    canvas: np.ndarray,
    decoded: Decoded,
    skeleton: tuple,
    drawn: list[str],
    with_skeleton: bool,
    r: int,
    magnification: int,
) -> None:
    """Skeleton, markers and (``magnification`` > 0) the J_r -> J_o arrows of every person."""
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
    for name in drawn:
        decoder, colour, shape = OVERLAYS[name]
        for xy in decoded[decoder].keypoints.reshape(-1, 2):
            _marker(canvas, xy, colour, shape, r)
    if magnification:  # over the markers: at the trained beta the shift is far smaller than a marker
        _arrows(canvas, decoded.integral.keypoints, decoded.debiased.keypoints, magnification, r)


def arrow_magnification(j_r: np.ndarray, j_o: np.ndarray, r: int, magnify: bool) -> int:
    """How much to lengthen the J_r -> J_o arrows: 1, or (``magnify``) the largest of 1, 2, 5, 10, 20, ...
    that makes the median shift at most about three marker radii ``r`` (px) long.

    Args:
        j_r, j_o: ``(N, K, 2)`` image pixels.
    """
    shifts = np.linalg.norm(np.asarray(j_o, np.float64) - j_r, axis=-1).ravel()
    median = float(np.median(shifts)) if shifts.size else 0.0
    if not magnify or median <= 0 or not np.isfinite(median):
        return 1
    target = 3.0 * r / median
    nice = [m * 10**e for e in range(7) for m in _NICE if m * 10**e <= target]
    return max(nice, default=1)


def _arrows(canvas: np.ndarray, j_r: np.ndarray, j_o: np.ndarray, magnification: int, r: int) -> None:
    """Arrows from each J_r toward its J_o, ``magnification`` times the shift long, outlined in black."""
    for a, b in zip(j_r.reshape(-1, 2), j_o.reshape(-1, 2), strict=True):
        tip = a + magnification * (b - a)
        length = float(np.linalg.norm(tip - a))
        if length < 1:  # nothing to point with
            continue
        head = min(0.5, 1.6 * r / length)  # arrow heads of about the marker's size
        p, q = tuple(_fixed(a)), tuple(_fixed(tip))
        cv2.arrowedLine(canvas, p, q, (0, 0, 0), max(2, r // 2 + 2), cv2.LINE_AA, _SHIFT, head)
        cv2.arrowedLine(canvas, p, q, ARROW_RGB, max(1, r // 2), cv2.LINE_AA, _SHIFT, head)


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
        elif name.startswith(_ARROW_LEGEND):
            p, q = _fixed(centre - [line * 0.5, 0]), _fixed(centre + [line * 0.5, 0])
            cv2.arrowedLine(canvas, tuple(p), tuple(q), ARROW_RGB, 2, cv2.LINE_AA, _SHIFT, 0.4)
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


# Smallest part (heatmap px, width x height) that gets a label inside it; thinner ones are outlined only,
# so that labels never overlap each other or spill out of their part (or the map).
_LABEL_MIN = (4.0, 3.0)


def add_partition(fig: go.Figure, rects: np.ndarray, colour: str) -> None:
    """Omega_1..4 (around J_o) as dashed rectangles, each labelled inside itself; empty parts are skipped.

    Omega_1's label sits in its top-left corner (its centre is J_o, under the markers); the others' at
    their centres. Parts under ``_LABEL_MIN`` are drawn without a label (the text beside the plot says so).

    Args:
        rects: ``(4, 4)`` rectangles ``(x0, y0, x1, y1)`` in heatmap px, from ``pose.decode.partition``.
    """
    for k, (x0, y0, x1, y1) in enumerate(np.asarray(rects, dtype=float)):
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            continue
        fig.add_shape(
            type="rect", x0=x0, y0=y0, x1=x1, y1=y1, line=dict(color=colour, width=1.5, dash="dash")
        )
        if x1 - x0 < _LABEL_MIN[0] or y1 - y0 < _LABEL_MIN[1]:
            continue
        corner = k == 0
        fig.add_annotation(
            x=x0 + 0.3 if corner else (x0 + x1) / 2,
            y=y0 + 0.3 if corner else (y0 + y1) / 2,
            text=f"Ω{k + 1}",
            showarrow=False,
            xanchor="left" if corner else "center",
            yanchor="top" if corner else "middle",  # y is reversed: "top" puts the text below y0
            font=dict(color=colour, size=13),
        )


def point_marker(
    name: str, x: float, y: float, symbol: str, colour: str, size: int, outline: float
) -> go.Scatter:
    """One labelled, black-outlined marker at ``(x, y)`` in heatmap px; the legend shows its coordinates."""
    marker = dict(symbol=symbol, size=size, color=colour, line=dict(color="black", width=outline))
    return go.Scatter(x=[x], y=[y], mode="markers", name=f"{name} ({x:.2f}, {y:.2f})", marker=marker)


COMPARE_HEIGHT = 420  # px of each panel of the side-by-side comparison


def compare_panels(
    image: np.ndarray,
    detections: Detections,
    decodes: tuple[Decoded, Decoded],
    betas: tuple[float, float],
    skeleton: tuple[tuple[int, int], ...],
    shown: list[str],
    person: int,
) -> np.ndarray:
    """The selected person side by side, decoded at two betas (the trained one, then the slider's).

    Args:
        image: ``(h, w, 3)`` uint8 RGB photo.
        detections: person boxes in ``image`` pixels.
        decodes: the decodes at ``betas[0]`` and ``betas[1]``.
        skeleton, shown: as :func:`draw_overlay`.
        person: index of the person (its box, 15 % larger, is cut out).

    Returns:
        ``(COMPARE_HEIGHT + caption, 2 * width, 3)`` uint8 RGB: each panel captioned with its beta and
        the arrows' magnification.
    """
    x1, y1, x2, y2 = np.asarray(detections.boxes[person], dtype=float)
    pad_x, pad_y = 0.15 * (x2 - x1), 0.15 * (y2 - y1)
    h, w = image.shape[:2]
    cols = slice(max(int(x1 - pad_x), 0), min(int(np.ceil(x2 + pad_x)), w))
    rows = slice(max(int(y1 - pad_y), 0), min(int(np.ceil(y2 + pad_y)), h))
    r = max(3, round(max(image.shape[:2]) / 220))  # as draw_overlay
    panels = []
    for decoded, beta, name in zip(decodes, betas, ("trained beta", "beta"), strict=True):
        cut = draw_overlay(image, detections, decoded, skeleton, shown, person, legend=False)[rows, cols]
        scale = COMPARE_HEIGHT / cut.shape[0]
        cut = cv2.resize(
            cut, (max(1, round(cut.shape[1] * scale)), COMPARE_HEIGHT), interpolation=cv2.INTER_AREA
        )
        times = arrow_magnification(
            decoded.integral.keypoints, decoded.debiased.keypoints, r, MAGNIFY in shown
        )
        if cut.shape[1] < 240:  # room for the caption beside a narrow person
            side = np.full((cut.shape[0], 240 - cut.shape[1], 3), 30, np.uint8)
            cut = np.hstack([cut, side])
        lines = [f"{name} = {beta:g}"] + ([f"arrows x{times}"] if ARROWS in shown and times > 1 else [])
        bar = np.full((52, cut.shape[1], 3), 30, np.uint8)
        for k, line in enumerate(lines):
            cv2.putText(bar, line, (6, 21 + 24 * k), _FONT, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(np.vstack([bar, cut]))
    gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
    return np.hstack([panels[0], gap, panels[1]])
