"""The dependency direction app -> pose <- training: importing pose loads no app, training or gradio."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
POSE_MODULES = sorted(p.stem for p in (ROOT / "pose").glob("*.py") if p.stem != "__init__")


def test_pose_modules_exist():
    assert {"keypoints", "geometry", "targets", "decode", "losses"} <= set(POSE_MODULES)


@pytest.mark.parametrize("module", POSE_MODULES)
def test_importing_pose_loads_no_app_training_or_gradio(module):
    code = (
        f"import sys, pose.{module}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'app', 'training', 'gradio'})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
