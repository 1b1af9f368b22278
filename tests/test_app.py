"""The Gradio app, driven through gradio_client against a server launched on loopback in the test, with a
tiny PoseModel built here; plus its pieces (photo reading, model store, results file, app.py startup).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch
import yaml
from PIL import Image

import app.model
from app.analysis import (
    HOW_TO,
    ResultsError,
    final_table,
    load_results,
    metric_figure,
    setup_text,
    splits_table,
)
from app.detection import PersonDetector
from app.images import MAX_SIDE, PhotoError, overlay_file, read_photo
from app.model import ModelRefused, ModelStore, local_folders_allowed
from app.photo import FLIP_TEST
from app.photo_events import on_click
from app.photo_models import DEFAULT_CHOICE, PhotoModels
from app.photo_tab import example_photos
from app.plots import add_partition, arrow_magnification
from app.ui import build_demo, launch_kwargs
from pose.decode import partition
from pose.inference import Predictor
from pose.keypoints import COCO_17
from pose.models import CheckpointError, PoseModel
from tests.fixtures import save_tiny_pose_model
from training.compare import GROUPS, RUNS

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OFFLINE_ENV = {"YOLO_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
OVERLAYS = ["J_r (integral)", "J_o (debiased)", "argmax", "skeleton", "person boxes"]
SOFTMAX = "softmax at β"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bus_photo() -> str:
    return next(p for p in example_photos() if p.endswith("bus.jpg"))


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory) -> Path:
    return save_tiny_pose_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="module")
def server(tiny_model_dir):
    """The app on a free loopback port; yields (url, forward-call counter, store)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE_ENV.items():
            mp.setenv(key, value)
        mp.setenv("COMPARE_RESULTS", str(tiny_model_dir / "no_results.json"))
        store = ModelStore(default=str(tiny_model_dir))
        forwards = []
        store.load_default().model.register_forward_hook(lambda *_: forwards.append(1))
        # Weights that cannot exist: the offline ONNX detector runs whatever this machine has cached.
        detector = PersonDetector(yolo_model="no_such_yolo_weights_for_tests.pt")
        demo = build_demo(store=store, detector=detector)
        port = free_port()
        demo.queue(default_concurrency_limit=2).launch(
            server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs()
        )
        try:
            yield f"http://127.0.0.1:{port}/", forwards, store
        finally:
            demo.close()


@pytest.fixture
def client(server) -> Client:
    return Client(server[0], verbose=False)  # a new session per test


def analyse(client: Client, path: str, beta: float = 10.0) -> tuple:
    return client.predict(handle_file(path), beta, OVERLAYS, SOFTMAX, api_name="/analyse")


def table_rows(table: dict) -> np.ndarray:
    """The numeric columns (J_r x, J_r y, J_o x, J_o y, shift, score) as a (K, 6) array."""
    return np.array([row[1:] for row in table["data"]], dtype=float)


def test_photo_returns_overlay_table_and_heatmap(client):
    people, joints, overlay, table, heatmap, status, timing, *_ = analyse(client, bus_photo())
    assert len(people["choices"]) >= 1 and "SSDLite" in status and "Found" in status
    assert [name for name, _ in joints["choices"]] == list(COCO_17.names)
    drawn, photo = np.asarray(Image.open(overlay)), read_photo(bus_photo()).image
    assert drawn.shape == photo.shape and np.abs(drawn.astype(int) - photo).mean() > 0.5  # overlays drawn
    assert table["headers"][0] == "joint" and len(table["data"]) == COCO_17.num_keypoints
    assert np.isfinite(table_rows(table)).all()
    assert json.loads(heatmap["plot"])["data"][0]["type"] == "heatmap"
    assert "did not run" in timing


def test_beta_change_redecodes_without_running_the_network(server, client):
    _, forwards, _ = server
    first = analyse(client, bus_photo(), beta=10.0)
    calls = len(forwards)
    overlay, table, heatmap, timing, *_ = client.predict(0, 3, 2.0, OVERLAYS, SOFTMAX, api_name="/redecode")
    assert len(forwards) == calls, "a beta change must not run the network"
    assert not np.allclose(table_rows(table)[:, :2], table_rows(first[3])[:, :2])  # J_r moved with beta
    assert not np.array_equal(np.asarray(Image.open(overlay)), np.asarray(Image.open(first[2])))
    assert "β=2" in heatmap["plot"] and "β = 2" in timing


@pytest.mark.parametrize(
    "size, x, y, sigma, beta",
    [
        ("64×48", 20.3, 30.7, 2.5, 10.0),
        ("64×48", 12.25, 40.6, 3.0, 2.0),
        ("96×72", 30.4, 20.9, 3.0, 5.0),
        ("16×12", 5.3, 6.6, 1.2, 1.0),
    ],
)
def test_bias_lab_debiased_recovers_the_mode(client, size, x, y, sigma, beta):
    assert sigma >= 0.7 * beta**0.5  # well sampled: the grid resolves exp(beta * H)
    figure, estimates, eq8, field, curve = client.predict(
        size, x, y, sigma, beta, False, api_name="/bias_lab"
    )
    errors = {row[0]: row[3] for row in estimates["data"]}
    assert errors["J_o (debiased)"] < 0.01
    assert errors["J_r (integral)"] > 0.01  # the bias the lab is about
    assert "Eq. 8" in eq8 and all("plot" in f for f in (figure, field, curve))


@pytest.mark.parametrize(
    "name, content, message",
    [("notes.txt", b"this is not an image", "not an image"), ("truncated.jpg", None, "damaged")],
)
def test_bad_uploads_give_readable_errors(client, tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:  # a real JPEG cut in half
        path.write_bytes(Path(bus_photo()).read_bytes()[:20000])
    else:
        path.write_bytes(content)
    with pytest.raises(AppError, match=message):
        analyse(client, str(path))


def test_photo_without_people_says_so(client):
    landscape = ROOT / "assets" / "examples" / "landscape_no_person.jpg"
    people, _, overlay, table, _, status, *_ = analyse(client, str(landscape))
    assert "No person found" in status and people["choices"] == [] and table["data"] in ([], [[]])
    assert overlay is not None


def test_grey_16_bit_photo_is_analysed(client, tmp_path):
    grey = np.asarray(Image.open(bus_photo()).convert("L"), dtype=np.uint16) * 257
    path = tmp_path / "grey16.png"
    Image.fromarray(grey).save(path)
    assert Image.open(path).mode.startswith("I")
    people, *_, status, _, _, _, _ = analyse(client, str(path))
    assert "16-bit" in status and len(people["choices"]) >= 1


def test_model_picker_errors_keep_the_previous_model(server, client, hub_offline):
    _, forwards, _ = server
    analyse(client, bus_photo())
    for name, message in (("someone/no-such-model", "offline"), ("/etc", "not a Hub repo id"), ("", "enter")):
        result = client.predict(
            name, handle_file(bus_photo()), 10.0, OVERLAYS, SOFTMAX, api_name="/load_model"
        )
        assert "Not loaded" in result[0] and message in result[0]
    calls = len(forwards)
    _, _, _, timing, *_ = client.predict(0, 0, 5.0, OVERLAYS, SOFTMAX, api_name="/redecode")
    assert "17 joints" in timing and len(forwards) == calls  # the session's photo and model are intact


def test_picker_switches_to_blazepose_and_back_without_a_restart(server, client):
    _, forwards, _ = server
    first = analyse(client, bus_photo())
    calls = len(forwards)
    md, people, joints, overlay, table, heatmap, status, timing, beta_md, map_md, compare = client.predict(
        "blazepose-full", handle_file(bus_photo()), 10.0, OVERLAYS, SOFTMAX, api_name="/pick_model"
    )
    assert "BlazePose" in md and "sigmoid" in md and len(forwards) == calls  # the tiny model did not run
    assert [name for name, _ in joints["choices"]] == list(COCO_17.names)
    rows = table_rows(table)
    assert np.isfinite(rows).all() and not np.allclose(rows[:, :4], table_rows(first[3])[:, :4])
    assert "BlazePose was never trained with a softmax" in beta_md and "heatmap value (a sigmoid)" in map_md
    # The same session re-decodes BlazePose's cached maps at another beta, still without the tiny model.
    _, low, *_ = client.predict(0, 0, 2.0, OVERLAYS, SOFTMAX, api_name="/redecode")
    assert np.isfinite(table_rows(low)).all() and len(forwards) == calls
    md, *_, table, _, _, _, _, _, _ = client.predict(
        "default", handle_file(bus_photo()), 10.0, OVERLAYS, SOFTMAX, api_name="/pick_model"
    )
    assert "BlazePose" not in md and len(forwards) > calls
    np.testing.assert_allclose(table_rows(table), table_rows(first[3]), atol=1e-3)


def test_the_model_radio_shows_the_session_model(tiny_model_dir):
    """After every model switch the radio shows the session's model: the default (also when loaded by its
    name), BlazePose, or a model loaded by name, as a third choice (the browser test clicks through it)."""
    store = ModelStore(default=str(tiny_model_dir))
    models = PhotoModels(store, PersonDetector(yolo_model="no_such_yolo_weights_for_tests.pt"))

    def radio(model) -> tuple:
        shown = models.model_choice(model)
        return shown.value, [value for _, value in shown.choices]

    builtin = [DEFAULT_CHOICE, app.model.BLAZEPOSE]
    assert radio(None) == (DEFAULT_CHOICE, builtin)
    assert radio(models.default_model) == (DEFAULT_CHOICE, builtin)  # the default, loaded by its name
    blazepose = app.model.LoadedModel(torch.nn.Identity(), app.model.BLAZEPOSE, "BlazePose")
    assert radio(blazepose) == (app.model.BLAZEPOSE, builtin)
    hub = app.model.LoadedModel(torch.nn.Identity(), "someone/other-model", "another model")
    value, choices = radio(hub)
    assert value == "someone/other-model" and choices == [*builtin, "someone/other-model"]
    label = models.model_choice(hub).choices[-1][0]
    assert label == "someone/other-model (loaded with the Model picker below)"


def test_photo_tab_teaches_at_the_trained_and_a_low_beta(client):
    analyse(client, bus_photo())
    trained = client.predict(0, 0, 10.0, OVERLAYS, SOFTMAX, api_name="/redecode")
    low = client.predict(0, 0, 2.0, OVERLAYS, SOFTMAX, api_name="/redecode")
    for *_, beta_md, map_md, compare in (trained, low):
        assert "trained at **β = 10**" in beta_md and "should stay put" in beta_md
        assert "Ω1" in map_md and "Background of this map" in map_md and "median logit" in map_md
        panels = np.asarray(Image.open(compare))
        assert panels.ndim == 3 and panels.shape[1] > panels.shape[0] // 2  # two panels side by side
    assert "at β = 10:" in trained[4] and "at β = 2:" in low[4]
    labels = [a["text"] for a in json.loads(trained[2]["plot"])["layout"]["annotations"]]
    assert set(labels) <= {"Ω1", "Ω2", "Ω3", "Ω4"} and len(labels) == len(set(labels))


def test_eight_simultaneous_requests_succeed(server):
    # Eight sessions made one after another (each fetches the app's config), then eight requests at once.
    clients = [Client(server[0], verbose=False, httpx_kwargs={"timeout": 60}) for _ in range(8)]
    jobs = [
        # Distinct betas and both tabs; identical requests are the next test's.
        c.submit(handle_file(bus_photo()), 10.0 + i, OVERLAYS, SOFTMAX, api_name="/analyse")
        if i % 2
        else c.submit("64×48", 10.0 + i, 20.0, 2.5, 10.0, False, api_name="/bias_lab")
        for i, c in enumerate(clients)
    ]
    results = [job.result(timeout=120) for job in jobs]
    assert all(len(r) in (5, 10) for r in results)
    assert all("Found" in r[5] for r in results if len(r) == 10)


def test_overlay_file_is_written_once_and_whole(monkeypatch, tmp_path):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    image = read_photo(bus_photo()).image
    first = Path(overlay_file(image))
    inode = first.stat().st_ino
    again = Path(overlay_file(image.copy()))
    assert again == first and again.stat().st_ino == inode  # not rewritten: a streaming reader is safe
    assert first.parent.parent == tmp_path and [p.name for p in first.parent.iterdir()] == ["overlay.jpg"]
    decoded = np.asarray(Image.open(first))
    assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).mean() < 3  # JPEG q90


def test_identical_simultaneous_requests_all_download_whole_files(server):
    # Visitors clicking the same example get byte-identical overlays; Gradio names its cached copy by the
    # content, so a rewrite of that one file while another response streams it cut downloads short.
    clients = [Client(server[0], verbose=False, httpx_kwargs={"timeout": 120}) for _ in range(8)]
    jobs = [
        c.submit(handle_file(bus_photo()), 10.0, OVERLAYS, SOFTMAX, api_name="/analyse") for c in clients * 8
    ]
    results = [job.result(timeout=300) for job in jobs]
    assert len(results) == 64 and all("Found" in r[5] for r in results)
    overlays = [Path(r[2]).read_bytes() for r in results]
    assert all(Image.open(Path(r[2])).size == Image.open(bus_photo()).size for r in results)
    assert len(set(overlays)) == 1  # same photo, same beta: the same picture, whole every time


# --- The pieces, without a server ---------------------------------------------------------------------


@pytest.fixture
def photo_file(tmp_path):
    def write(array: np.ndarray, name: str = "x.png", **save) -> Path:
        path = tmp_path / name
        Image.fromarray(array).save(path, **save)
        return path

    return write


def test_read_photo_modes_and_rotation(photo_file):
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 200  # red, half transparent on the left
    rgba[:, :30, 3], rgba[:, 30:, 3] = 0, 255
    photo = read_photo(photo_file(rgba))
    assert photo.image.shape == (40, 60, 3) and (photo.image[:, :30] == 255).all()  # shown on white
    assert (photo.image[:, 30:] == [200, 0, 0]).all()
    grey = read_photo(photo_file(np.full((10, 20), 77, np.uint8)))
    assert grey.image.shape == (10, 20, 3) and (grey.image == 77).all()
    # EXIF orientation 6: the stored 40x60 image is shown rotated, 60 wide becomes 60 high.
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = read_photo(photo_file(np.zeros((40, 60, 3), np.uint8), "r.jpg", exif=exif))
    assert rotated.image.shape == (60, 40, 3) and any("EXIF" in n for n in rotated.notes)


def test_read_photo_downscales_huge_images_and_keeps_the_scale(photo_file):
    big = np.zeros((3000, 4000, 3), np.uint8)
    photo = read_photo(photo_file(big, "big.jpg"))
    assert max(photo.image.shape[:2]) == MAX_SIDE and photo.original_size == (4000, 3000)
    assert photo.scale == pytest.approx(MAX_SIDE / 4000) and any("downscaled" in n for n in photo.notes)


def test_read_photo_refuses_non_images(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_text("hello")
    with pytest.raises(PhotoError, match="not an image"):
        read_photo(path)


@pytest.fixture
def hub_offline(monkeypatch):
    """huggingface_hub reads HF_HUB_OFFLINE on import: set its constant too, or a lookup waits on the net."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def test_model_store_refuses_local_paths_for_visitors(tiny_model_dir, monkeypatch, hub_offline):
    public = ModelStore(allow_local=False, default=str(tiny_model_dir))
    with pytest.raises(ModelRefused, match="--local"):
        public.load_user(str(tiny_model_dir))
    with pytest.raises(CheckpointError, match="offline"):
        public.load_user("someone/no-such-model")
    local = ModelStore(allow_local=True, default=str(tiny_model_dir))
    assert local.load_user(str(tiny_model_dir)).model is local.load_default().model  # cached, shared
    monkeypatch.setenv("SPACE_ID", "user/space")
    assert not local_folders_allowed(True)
    monkeypatch.delenv("SPACE_ID")
    assert local_folders_allowed(True) and not local_folders_allowed(False)


def test_model_line_states_the_exported_held_out_scores(tiny_model_dir, tmp_path):
    from app.model import describe

    model = PoseModel.from_pretrained(str(tiny_model_dir))
    assert "Held-out" not in describe(model, str(tiny_model_dir))  # a folder without evaluation.json
    folder = tmp_path / "exported"
    model.save_pretrained(folder)
    decoders = {"argmax": {"pck@0.2": 0.61}, "debiased": {"pck@0.2": 0.644}, "integral": {"pck@0.2": 0.2}}
    (folder / "evaluation.json").write_text(json.dumps({"decoders": decoders, "n_images": 900}))
    line = describe(model, str(folder))
    assert "Held-out PCK@0.2 on 900 images: argmax 0.61, debiased 0.64, integral 0.20" in line
    (folder / "evaluation.json").write_text("{not json")
    assert "Held-out" not in describe(model, str(folder))


def test_without_a_model_the_photo_tab_says_so_and_shows_boxes(monkeypatch, tmp_path):
    monkeypatch.delenv("POSE_MODEL", raising=False)
    monkeypatch.setattr(app.model, "BUNDLED_MODEL_DIR", tmp_path / "no_model_here")
    models = PhotoModels(ModelStore(), PersonDetector(yolo_model="no_such_yolo_weights_for_tests.pt"))
    assert models.default_model is None and "No pose model loaded" in models.model_message
    shown = models.on_photo({"path": bus_photo()}, None, 10.0, OVERLAYS, SOFTMAX)
    session = shown.session
    assert "No pose model is loaded" in shown.status and len(session.detections) >= 1
    assert shown.drawn.table.empty
    drawn = np.asarray(Image.open(shown.drawn.overlay))  # a JPEG in Gradio's cache (app.images.overlay_file)
    assert drawn.shape == session.photo.image.shape
    assert np.abs(drawn.astype(int) - session.photo.image).mean() > 0.5  # the boxes are drawn


def compare_json(path: Path) -> Path:
    """A small results file in the layout ``python -m training.compare`` writes (its run and group names)."""
    bins = [
        {"label": f"bin {i}", "range": [i, i + 1], "n": 3, "n_joints": 30, "epe": 4.0 + i} for i in range(3)
    ]

    def epoch(e: int) -> dict:
        validated = {"val_pck@0.2": 0.1 * e, "val_epe": 9.0 - e, "val_ap": None, "val_normalisation": "torso"}
        return {"epoch": e, "loss": 1 / (e + 1), "lr": 1e-3, **(validated if e % 2 else {})}

    splits = {"box_size": {"bins": bins, "n_excluded": 0}, "occlusion": None}
    runs = {
        name: {"label": label, "epochs": [epoch(e) for e in range(4)], "final": epoch(3), "splits": splits}
        for name, (label, _) in RUNS.items()
    }
    path.write_text(
        json.dumps({"base_config": {"arch": "lite0", "epochs": 4}, "groups": GROUPS, "runs": runs})
    )
    return path


def test_results_file_is_read_into_curves_and_tables(tmp_path):
    assert load_results(tmp_path / "missing.json") is None and "python -m training.compare" in HOW_TO
    results = load_results(compare_json(tmp_path / "compare.json"))
    assert list(results.groups) == list(GROUPS) and results.metrics()[:2] == ["val_pck@0.2", "val_epe"]
    figure = metric_figure(results, "methods", "val_pck@0.2")
    assert len(figure.data) == 3 and list(figure.data[0].x) == [2, 4]  # validated epochs only, 1-based
    final = final_table(results, "ablation")
    assert len(final) == len(GROUPS["ablation"]) and final["PCK@0.2"].tolist() == [0.3] * len(final)
    assert splits_table(results).shape == (3, 4) and "arch = lite0" in setup_text(results)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ResultsError, match="not readable JSON"):
        load_results(tmp_path / "bad.json")


def test_analysis_tab_shows_results_or_how_to_make_them(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPARE_RESULTS", str(tmp_path / "none.json"))
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    store, detector = ModelStore(default=None), PersonDetector(yolo_model="no_such_yolo_weights_for_tests.pt")
    texts = [getattr(b, "value", "") for b in build_demo(store, detector).blocks.values()]
    assert any("python -m training.compare" in str(t) for t in texts)
    monkeypatch.setenv("COMPARE_RESULTS", str(compare_json(tmp_path / "compare.json")))
    labels = [getattr(b, "label", "") for b in build_demo(store, detector).blocks.values()]
    assert "Final validation metrics" in labels and "EPE (px) by difficulty, paper Table 1" in labels


def test_the_shipped_comparison_is_the_committed_config_and_loads():
    """assets/results: training.compare on lspet_lite0_compare.yaml, as the analysis tab reads it."""
    results = load_results(ROOT / "assets" / "results" / "compare.json")
    recipe = yaml.safe_load((ROOT / "training" / "configs" / "lspet_lite0_compare.yaml").read_text())
    assert all(results.base_config[k] == v for k, v in recipe.items())
    assert results.groups == {
        "methods": ["detection", "ipr", "debiased"],
        "beta": ["debiased_beta1", "debiased", "debiased_beta20"],
        "ablation": ["ipr", "ipr_lde", "ipr_laug", "debiased_no_laug", "debiased"],
    }
    assert all([e["epoch"] for e in run["epochs"]] == list(range(15)) for run in results.runs.values())
    table = final_table(results, "methods")
    assert table["PCK@0.2"].between(0.2, 1).all() and splits_table(results) is not None
    for seed in (1, 2):  # the seed repeats: the three methods only, same recipe otherwise
        repeat = load_results(ROOT / "assets" / "results" / f"compare_seed{seed}.json")
        setup = {k: v for k, v in repeat.base_config.items() if k != "init_from"}  # a key added between runs
        assert setup == {**results.base_config, "seed": seed}
        assert repeat.groups == {"methods": results.groups["methods"]}
    html = (ROOT / "assets" / "results" / "compare.html").read_text()
    assert "plotly" in html.lower() and "debiased + L_aug" in html


def test_python_app_py_starts_offline_and_serves(tiny_model_dir):
    port = free_port()
    env = {**os.environ, **OFFLINE_ENV, "POSE_MODEL": str(tiny_model_dir), "GRADIO_SERVER_PORT": str(port)}
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        # A deadline for "it serves at all", not a speed goal (those live in benchmarks/): generous, so
        # that a loaded machine (training beside the tests) does not fail it.
        while time.perf_counter() - start < 120:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).status == 200:
                    break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                time.sleep(0.3)
        else:
            pytest.fail("python app.py did not serve within 120 s")
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- Person boxes drawn by hand, removed by hand -------------------------------------------------------

BUS_MISSED = "0, 550, 65, 875"  # the man cut by bus.jpg's left edge, whom the offline detector misses


def person_labels(people: dict) -> list[str]:
    return [label for label, _ in people["choices"]]


def test_a_typed_box_adds_a_person_and_the_pose_runs_on_it(server, client):
    _, forwards, store = server
    people, *_ = analyse(client, bus_photo())
    found = len(people["choices"])
    calls = len(forwards)
    people, _, overlay, table, _, status, *_ = client.predict(
        BUS_MISSED, 0, 10.0, OVERLAYS, SOFTMAX, api_name="/add_box"
    )
    assert len(forwards) > calls, "the network must run on the new box"
    labels = person_labels(people)
    assert len(labels) == found + 1 and labels[-1] == f"Person {found + 1} (drawn by hand)"
    assert people["value"] == found  # the new person is shown
    assert "1 drawn by hand" in status and f"Pose on {found + 1} people" in status
    # The table shows the new person: J_o as the model finds it in that box alone.
    photo, box = read_photo(bus_photo()), np.array([[0, 550, 65, 875]], np.float32)
    expected = Predictor(store.load_default().model, flip=FLIP_TEST).predict(
        photo.image, box * photo.scale, "debiased", 10.0
    )
    np.testing.assert_allclose(
        table_rows(table)[:, 2:4], expected.keypoints[0] / photo.scale, atol=0.06
    )  # rounded to 0.1 px
    redrawn, *_ = client.predict(found, 0, 10.0, OVERLAYS, SOFTMAX, api_name="/redecode")
    assert np.asarray(Image.open(redrawn)).shape == np.asarray(Image.open(overlay)).shape


def test_removing_a_box_drops_that_person(client):
    people, *_ = analyse(client, bus_photo())
    labels = person_labels(people)
    people, _, _, table, _, status, *_ = client.predict(0, 0, 10.0, OVERLAYS, SOFTMAX, api_name="/remove_box")
    assert person_labels(people) == [f"Person {i}{label[8:]}" for i, label in enumerate(labels[1:], 1)]
    assert "1 of the detector's removed" in status
    for _ in labels[1:]:  # remove every box: no person left, an empty table and a plain message
        people, _, _, table, _, status, *_ = client.predict(
            0, 0, 10.0, OVERLAYS, SOFTMAX, api_name="/remove_box"
        )
    assert people["choices"] == [] and table["data"] in ([], [[]])
    assert f"{len(labels)} of the detector's removed" in status


@pytest.mark.parametrize(
    ("text", "message"),
    [("1, 2, 3", "four numbers"), ("a, b, c, d", "four numbers"), ("10, 10, 14, 400", "at least 8 px")],
)
def test_unusable_typed_boxes_are_refused_clearly(client, text, message):
    analyse(client, bus_photo())
    with pytest.raises(AppError, match=message):
        client.predict(text, 0, 10.0, OVERLAYS, SOFTMAX, api_name="/add_box")


def test_box_edits_before_a_photo_say_to_upload_one(client):
    with pytest.raises(AppError, match="Upload a photo"):
        client.predict(BUS_MISSED, None, 10.0, OVERLAYS, SOFTMAX, api_name="/add_box")


def test_two_clicks_on_the_photo_draw_a_box(tiny_model_dir):
    """The overlay's select handler (what a browser click sends): corner, then the opposite corner."""
    import gradio as gr

    models = PhotoModels(ModelStore(default=str(tiny_model_dir)), PersonDetector(yolo_model="no_such.pt"))
    session = models.on_photo({"path": bus_photo()}, None, 10.0, OVERLAYS, SOFTMAX).session
    found = session.num_boxes
    first = on_click(
        session, 1, 0, 10.0, OVERLAYS, SOFTMAX, gr.SelectData(None, {"index": [65, 875], "value": None})
    )
    assert first.session.corner == (65.0, 875.0) and first.session.num_boxes == found
    assert "First corner at (65, 875)" in first.status and first.people.value == 1  # person 2 stays selected

    def yellow(image):  # the cross-hair's colour (255, 230, 0), within JPEG's error, around the corner
        patch = np.asarray(image, dtype=int)[866:885, 56:75]
        return int(((patch[..., 0] > 190) & (patch[..., 1] > 170) & (patch[..., 2] < 120)).sum())

    marked = Image.open(first.drawn.overlay).convert("RGB")  # a file written once (overlay_file)
    assert yellow(marked) >= 10 and yellow(session.photo.image) == 0
    second = on_click(
        first.session, 1, 0, 10.0, OVERLAYS, SOFTMAX, gr.SelectData(None, {"index": [0, 550], "value": None})
    )
    added = second.session
    assert second.people.value == found  # the new person is shown
    assert added.corner is None and added.num_boxes == found + 1 and added.num_people == found + 1
    np.testing.assert_array_equal(added.boxes[-1], [0, 550, 65, 875])
    assert np.isnan(added.scores[-1]) and "1 drawn by hand" in second.status
    not_a_point = gr.SelectData(None, {"index": 3, "value": None})
    assert on_click(added, 0, 0, 10.0, OVERLAYS, SOFTMAX, not_a_point) is None  # nothing changes


@pytest.mark.parametrize(
    "median_shift, r, expected", [(0.03, 6, 500), (0.5, 6, 20), (40.0, 6, 1), (0.0, 6, 1)]
)
def test_arrow_magnification_is_a_readable_round_number(median_shift, r, expected):
    j_r = np.zeros((1, 3, 2))
    j_o = j_r + [median_shift, 0.0]
    assert arrow_magnification(j_r, j_o, r, magnify=True) == expected
    assert arrow_magnification(j_r, j_o, r, magnify=False) == 1


@pytest.mark.parametrize("estimate", [(1.0, 1.0), (31.5, 23.5), (60.2, 3.1), (12.7, 40.0), (0.0, 47.0)])
def test_omega_labels_sit_inside_their_parts_and_never_overlap(estimate):
    rects = partition(torch.tensor(estimate), (48, 64)).numpy()
    fig = go.Figure()
    add_partition(fig, rects, "white")
    labels = fig.layout.annotations
    boxes = []
    for label in labels:
        k = int(label.text[-1]) - 1
        x0, y0, x1, y1 = rects[k]
        assert x1 - x0 >= 4 and y1 - y0 >= 3  # big enough to hold its label
        assert x0 <= label.x <= x1 and y0 <= label.y <= y1  # inside its own part, so inside the map
        boxes.append(k)
    assert len(boxes) == len(set(boxes))  # one label per part: parts are disjoint, so labels are apart
