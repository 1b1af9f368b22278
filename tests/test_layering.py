"""The dependency direction app -> pose <- training: importing pose loads no app, training or gradio."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSE_MODULES = sorted(
    "pose." + ".".join(p.relative_to(ROOT / "pose").with_suffix("").parts).removesuffix(".__init__")
    for p in (ROOT / "pose").rglob("*.py")
    if p.name != "__init__.py" or p.parent != ROOT / "pose"
)


def test_pose_modules_exist():
    assert {"pose.keypoints", "pose.geometry", "pose.targets", "pose.decode", "pose.losses"} <= set(
        POSE_MODULES
    )


def test_importing_pose_loads_no_app_training_or_gradio():
    # One fresh interpreter imports every module of pose; none may pull in the layers above it.
    code = (
        f"import sys, importlib\nfor m in {POSE_MODULES!r}: importlib.import_module(m)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'app', 'training', 'gradio'})\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_headline_classes_from_the_package_root():
    import pose
    from pose.inference import Predictor
    from pose.models import PoseModel

    assert pose.PoseModel is PoseModel and pose.Predictor is Predictor
