"""The analysis tab with results repeated over seeds (training.compare --seeds): mean curves with a band
over the seeds, final metrics with their sd, one sub-tab per results file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.analysis import final_table, load_results, metric_figure, notes_text, results_paths, setup_text
from app.detection import PersonDetector
from app.model import ModelStore
from app.ui import build_demo
from training.compare import GROUPS, RUNS, mean_over_seeds

ROOT = Path(__file__).resolve().parents[1]


def seeded_json(path: Path, seeds=(0, 1, 2)) -> Path:
    """A bias-group results file as ``compare --groups bias --seeds 0,1,2`` writes it (3 epochs a run)."""

    def run(offset: float) -> dict:
        epochs = [
            {"epoch": e, "val_pck@0.2": 0.2 * e + offset, "val_epe": 9.0 - e - offset} for e in range(3)
        ]
        return {"epochs": epochs, "final": epochs[-1], "splits": {}}

    runs = {
        name: {"label": RUNS[name][0], **mean_over_seeds({s: run(0.01 * s + i) for s in seeds})}
        for i, name in enumerate(GROUPS["bias"])
    }
    data = {"base_config": {"arch": "lite0", "epochs": 3}, "groups": {"bias": GROUPS["bias"]}, "runs": runs}
    path.write_text(json.dumps({**data, "seeds": list(seeds), "split_seed": 0}))
    return path


def test_a_seeded_study_has_bands_sds_and_says_so(tmp_path):
    results = load_results(seeded_json(tmp_path / "bias.json"))
    assert results.seeds == (0, 1, 2) and results.title().endswith("3 seeds")
    assert "seeds 0, 1, 2 on one hold-out" in setup_text(results) and "Eq. 8" in notes_text(results)
    figure = metric_figure(results, "bias", "val_pck@0.2")
    lines = [t for t in figure.data if t.mode == "lines+markers"]
    bands = [t for t in figure.data if t.fill == "toself"]
    assert len(lines) == len(bands) == 4
    # The band spans the seeds (0.00 .. 0.02 above the first run's mean curve at each epoch), in its colour.
    assert list(bands[0].y) == pytest.approx([0.02, 0.22, 0.42, 0.4, 0.2, 0.0])
    assert bands[0].fillcolor == lines[0].line.color and lines[0].line.color != lines[1].line.color
    table = final_table(results, "bias")
    assert list(table.columns[:3]) == ["run", "PCK@0.2", "PCK@0.2 sd"]
    assert table["PCK@0.2"].tolist() == pytest.approx([0.41, 1.41, 2.41, 3.41])
    assert table["PCK@0.2 sd"].tolist() == pytest.approx([0.01] * 4)


def test_one_seed_results_have_no_band_and_no_sd_columns(tmp_path):
    results = load_results(seeded_json(tmp_path / "one.json", seeds=(0,)))
    assert not [t for t in metric_figure(results, "bias", "val_epe").data if t.fill == "toself"]
    assert "PCK@0.2 sd" not in final_table(results, "bias").columns


def test_the_tab_shows_each_results_file_in_its_own_sub_tab(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    first = seeded_json(tmp_path / "a.json", seeds=(0,))
    second = seeded_json(tmp_path / "b.json")
    monkeypatch.setenv("COMPARE_RESULTS", f"{first}:{tmp_path / 'missing.json'}:{second}")
    assert results_paths() == [first, tmp_path / "missing.json", second]
    store, detector = ModelStore(default=None), PersonDetector(yolo_model="no_such_yolo_weights_for_tests.pt")
    demo = build_demo(store, detector)
    labels = [getattr(b, "label", None) for b in demo.blocks.values()]
    assert labels.count("Final validation metrics") == 2
    assert any(str(label).endswith("3 seeds") for label in labels)
    apis = demo.get_api_info()["named_endpoints"]
    assert "/metric_curve" in apis and "/metric_curve_b" in apis


def test_a_corrupt_results_file_gets_its_own_sub_tab_saying_why(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    good, corrupt = seeded_json(tmp_path / "a.json"), tmp_path / "broken.json"
    corrupt.write_text('{"runs": ')
    monkeypatch.setenv("COMPARE_RESULTS", f"{good}:{corrupt}")
    demo = build_demo(
        ModelStore(default=None), PersonDetector(yolo_model="no_such_yolo_weights_for_tests.pt")
    )
    labels = [getattr(b, "label", None) for b in demo.blocks.values()]
    assert "broken.json" in labels and labels.count("Final validation metrics") == 1
    texts = [str(getattr(b, "value", "")) for b in demo.blocks.values()]
    assert any("could not be read" in t and "broken.json" in t for t in texts)


def test_the_shipped_bias_study_is_its_config_over_three_seeds():
    """assets/results/bias.json: training.compare on lspet_lite0_bias.yaml, --groups bias --seeds 0,1,2."""
    import yaml

    results = load_results(ROOT / "assets" / "results" / "bias.json")
    recipe = yaml.safe_load((ROOT / "training" / "configs" / "lspet_lite0_bias.yaml").read_text())
    assert all(results.base_config[k] == v for k, v in recipe.items())
    assert results.groups == {"bias": GROUPS["bias"]} and results.seeds == (0, 1, 2)
    for run in results.runs.values():
        assert [e["epoch"] for e in run["epochs"]] == list(range(recipe["epochs"]))
        assert sorted(run["seeds"]) == ["0", "1", "2"] and 0.05 < run["final"]["val_pck@0.2"] < 1
    html = (ROOT / "assets" / "results" / "bias.html").read_text()
    assert "Plotly.newPlot" in html and "beta 1" in html
