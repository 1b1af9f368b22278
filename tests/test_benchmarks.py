"""benchmarks/app_photo.py runs the app's own path (speed goals are printed there, never asserted here)."""

from __future__ import annotations

import pytest

from app.detection import PersonDetector
from app.model import LoadedModel
from benchmarks import app_photo
from pose.keypoints import LSP_14
from pose.models import build_pose_model


def test_app_photo_times_each_stage_of_the_apps_path(capsys):
    model = build_pose_model("lite0", LSP_14, pretrained=None, input_size=(64, 64)).eval()
    loaded = LoadedModel(model=model, source="tiny", label="tiny")
    detector = PersonDetector(yolo_model="no_such_yolo_weights_for_tests.pt")  # the offline detector
    t = app_photo.time_photo(app_photo.example_photos()["zidane.jpg"], detector, loaded, rounds=1)
    assert t["people"] == 2  # both players found: the pose network ran on two boxes
    stages = ["read", "detection", "pose network", "decode"]
    assert list(t)[:4] == stages and all(t[name] > 0 for name in stages)
    assert t["total"] == pytest.approx(sum(t[name] for name in stages))
