"""The Gradio Blocks of the demo: Tab 1 "Your photo" (app.photo_tab), Tab 2 "Bias lab" and Tab 3 "Training
analysis", wired to app.lab / app.lab_plots / app.analysis. UI wiring only; the math lives in pose.decode.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from app.analysis import (
    FINAL_METRICS,
    GROUP_TITLES,
    HOW_TO,
    Results,
    ResultsError,
    final_table,
    load_results,
    metric_figure,
    notes_text,
    results_paths,
    setup_text,
    splits_table,
)
from app.detection import PersonDetector
from app.lab import MAP_SIZES, bias_curve, bias_field, eq8_text, estimate, estimate_table
from app.lab_plots import curve_figure, field_figure, map_figure
from app.model import ModelStore
from app.photo_tab import create_photo_tab

TITLE = "Removing the bias of integral pose regression"
INTRO = f"""# {TITLE}
Integral pose regression (IPR) reads a joint position off a heatmap as the softmax-weighted mean of the pixel
positions. The softmax gives the *background* a weight too, which pulls the estimate **J_r** toward the centre
of the heatmap. The paper of Gu, Yang and Yao (ICCV 2021) removes that pull exactly: **J_o**, the debiased
estimate. *Your photo* shows both on people in a photo; the *Bias lab* shows why on a synthetic heatmap.
"""
LAB_TEXT = """### What you see
The map is a Gaussian bump of height 1 on a background of exact zeros — what a pose network's heatmap should
look like. Integral regression takes the softmax of β·H and averages the pixel positions with those weights:
**J_r** = Σ p · softmax(βH)(p) (Eq. 3–4). But the softmax gives every background pixel the weight e⁰ = 1, not
0; thousands of them together hold a share **ρ = hw / C** of the weight (C = Σ exp(βH), hw pixels) and pull
J_r toward the grid centre c:

**J_r = (1 − ρ) · J_o + ρ · c** (Eq. 8)

The debiased estimate undoes that mix, **J_o = (C · J_r − hw · c) / (C − hw)**: the mean position under the
weights exp(βH) − 1, which are 0 on the background. Move the mode to a corner, lower β or narrow the bump:
ρ grows and J_r slides toward the centre, while J_o stays on the mode. Two errors are not bias: near the
border part of the bump is cut off (no decoder sees it), and for bumps narrower than about 0.7·√β px the grid
samples exp(βH) too coarsely (up to a few tenths of a pixel). Tick *log scale* to see the flat background.
"""
FIELD_TEXT = """**Bias over every mode position** (the paper's Fig. 1): a bump with the same σ and β is placed
at each point of an even grid; the colour is the distance from the mode to the estimate, the arrows go from
the mode toward the estimate (lengthened as the title says when the bias is under a pixel). J_r points at the
centre everywhere; J_o errs only where the map's border cuts the bump off."""
CSS = """
#overlay img { object-fit: contain; }
.gradio-container { max-width: 1500px !important; }
"""


def launch_kwargs() -> dict[str, Any]:
    """Arguments of ``Blocks.launch`` that style the app (Gradio 6 takes theme and css at launch)."""
    # Each session keeps a photo and its logits (up to ~6 MB): bound how many sessions are held.
    return {"theme": gr.themes.Soft(), "css": CSS, "show_error": True, "state_session_capacity": 256}


def build_demo(
    store: ModelStore | None = None, detector: PersonDetector | None = None, allow_local: bool = False
) -> gr.Blocks:
    """The whole app, not yet launched.

    Args:
        store: shared models; default: a ModelStore with the bundled / ``POSE_MODEL`` default.
        detector: shared person detector; default: YOLO, else offline SSDLite, else the whole image
            (decided in a background thread, so that startup does not wait on it), using as many threads
            as torch.
        allow_local: let visitors load local checkpoint folders (``--local``; never on a Space).
    """
    store = store or ModelStore(allow_local=allow_local)
    detector = detector or PersonDetector(num_threads=torch.get_num_threads())
    threading.Thread(target=detector.load, daemon=True).start()
    with gr.Blocks(title=TITLE, delete_cache=(3600, 7200)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Your photo", id="photo"):
            create_photo_tab(store, detector)
        with gr.Tab("Bias lab", id="lab"):
            create_lab_tab()
        with gr.Tab("Training analysis", id="analysis"):
            create_analysis_tab()
    return demo


def bias_lab(size: str, x: float, y: float, sigma: float, beta: float, log_scale: bool) -> tuple:
    """Every output of the bias lab: map, estimates table, Eq. 8 text, bias field, bias-versus-beta curve."""
    heatmap_size = MAP_SIZES.get(size, MAP_SIZES["64×48"])
    height, width = heatmap_size
    x, y = min(max(float(x), 0.0), width - 1.0), min(max(float(y), 0.0), height - 1.0)
    sigma, beta = max(float(sigma), 0.1), max(float(beta), 0.05)
    est = estimate(x, y, sigma, heatmap_size, beta)
    field = bias_field(heatmap_size, round(sigma, 3), round(beta, 3))
    betas, err_r, err_o = bias_curve(round(x, 3), round(y, 3), round(sigma, 3), heatmap_size)
    return (
        map_figure(est, beta, bool(log_scale)),
        estimate_table(est),
        eq8_text(est),
        field_figure(field, est.mode, sigma),
        curve_figure(betas, err_r, err_o, beta),
    )


def _resize_lab(size: str, x: float, y: float, sigma: float, beta: float, log_scale: bool) -> tuple:
    """A new map size: the mode sliders get its range (the mode keeps its relative place), then redraw."""
    height, width = MAP_SIZES[size]
    x, y = min(float(x), width - 1.0), min(float(y), height - 1.0)
    return (
        gr.Slider(maximum=width - 1, value=x),
        gr.Slider(maximum=height - 1, value=y),
        *bias_lab(size, x, y, sigma, beta, log_scale),
    )


def create_lab_tab() -> None:
    """Tab 2 in the current Blocks context: the synthetic map's controls and plots, and their events."""
    start = dict(size="64×48", x=8.3, y=10.6, sigma=2.5, beta=10.0, log_scale=False)
    first_map, first_estimates, first_eq8, first_field, first_curve = bias_lab(**start)
    height, width = MAP_SIZES[start["size"]]
    with gr.Row():
        with gr.Column(scale=2, min_width=280):
            size = gr.Radio(list(MAP_SIZES), value=start["size"], label="Heatmap size (H×W)")
            x = gr.Slider(
                0, width - 1, value=start["x"], step=0.05, label="true mode x (px)", elem_id="lab-x"
            )
            y = gr.Slider(
                0, height - 1, value=start["y"], step=0.05, label="true mode y (px)", elem_id="lab-y"
            )
            sigma = gr.Slider(0.5, 8, value=start["sigma"], step=0.1, label="σ of the bump (px)")
            beta = gr.Slider(0.5, 50, value=start["beta"], step=0.5, label="β (softmax sharpness)")
            log_scale = gr.Checkbox(value=False, label="log scale")
            estimates = gr.Dataframe(first_estimates, label="Estimates (heatmap pixels)", interactive=False)
            eq8 = gr.Markdown(first_eq8)
        with gr.Column(scale=3):
            map_plot = gr.Plot(first_map, label="Softmax map", elem_id="lab-map")
    gr.Markdown(LAB_TEXT)
    gr.Markdown(FIELD_TEXT)
    with gr.Row():
        field_plot = gr.Plot(first_field, label="Bias field", elem_id="lab-field")
    with gr.Row():
        curve_plot = gr.Plot(first_curve, label="Bias versus β", elem_id="lab-curve")
    inputs = [size, x, y, sigma, beta, log_scale]
    outputs = [map_plot, estimates, eq8, field_plot, curve_plot]
    x.input(
        bias_lab, inputs, outputs, api_name="bias_lab", trigger_mode="always_last", show_progress="hidden"
    )
    for control in (y, sigma, beta, log_scale):
        control.input(
            bias_lab,
            inputs,
            outputs,
            api_visibility="undocumented",
            trigger_mode="always_last",
            show_progress="hidden",
        )
    size.input(_resize_lab, inputs, [x, y, *outputs], api_visibility="undocumented", show_progress="hidden")


def _shown_path(path: Path) -> str:
    """The path relative to the repository when inside it: visitors need not see the server's layout."""
    try:
        return str(path.resolve().relative_to(Path(__file__).resolve().parent.parent))
    except ValueError:
        return path.name


def create_analysis_tab() -> None:
    """Tab 3 in the current Blocks context: one view per results file that exists (a sub-tab each when
    there are several), else how to make them."""
    paths = results_paths()
    shown = [path for path in paths if path.is_file()]
    if not shown:
        gr.Markdown(HOW_TO.format(path=_shown_path(paths[0])), elem_id="analysis-howto")
        return
    loaded = [(path, _read_results(path)) for path in shown]  # each file read once, at startup
    if len(loaded) == 1:
        _results_view(*loaded[0], "metric_curve")
        return
    for index, (path, results) in enumerate(loaded):
        with gr.Tab(results.title() if isinstance(results, Results) else path.name):
            _results_view(path, results, "metric_curve" if index == 0 else f"metric_curve_{path.stem}")


def _read_results(path: Path) -> Results | ResultsError:
    """The file's results, or the error that says why they cannot be read (shown in its view)."""
    try:
        return load_results(path)
    except ResultsError as err:
        return err


def _results_view(path: Path, results: Results | ResultsError, api_name: str) -> None:
    """The curves, final metrics and difficulty splits of one ``compare.json``."""
    if isinstance(results, ResultsError):
        gr.Markdown(f"⚠️ The comparison results could not be read: {results}")
        return
    groups, metrics = list(results.groups), results.metrics()
    gr.Markdown(f"Runs of `python -m training.compare` ({_shown_path(path)}). {setup_text(results)}")
    if notes_text(results):
        gr.Markdown(notes_text(results))
    with gr.Row():
        group = gr.Radio([(GROUP_TITLES.get(g, g), g) for g in groups], value=groups[0], label="Comparison")
        names = [(FINAL_METRICS.get(m, m), m) for m in metrics]
        metric = gr.Dropdown(names, value=metrics[0] if metrics else None, label="Metric")
    plot = gr.Plot(
        metric_figure(results, groups[0], metrics[0]) if metrics else None, label="Metric per epoch"
    )
    final = gr.Dataframe(final_table(results, groups[0]), label="Final validation metrics", interactive=False)
    group.change(
        lambda g, m: (metric_figure(results, g, m), final_table(results, g)), [group, metric], [plot, final]
    )
    metric.change(lambda g, m: metric_figure(results, g, m), [group, metric], plot, api_name=api_name)
    splits = splits_table(results)
    if splits is not None:
        gr.Dataframe(splits, label="EPE (px) by difficulty, paper Table 1", interactive=False)
