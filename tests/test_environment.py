"""The installed environment: exactly one OpenCV wheel, the one requirements.txt names.

Every OpenCV wheel on PyPI installs the same ``cv2`` folder; with two of them (ultralytics pulls in
``opencv-python``, the project once listed ``opencv-python-headless``) the last one installed silently
overwrites the other's files, and uninstalling either breaks ``import cv2``.
"""

from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
OPENCV_WHEELS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)


def installed(name: str) -> bool:
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def required_names(path: Path) -> set[str]:
    """The package names a requirements file lists (comments, options and ``-r`` lines skipped)."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {Requirement(line).name.lower() for line in lines if line and not line.startswith("-")}


def test_exactly_one_opencv_wheel_is_installed():
    present = [name for name in OPENCV_WHEELS if installed(name)]
    assert len(present) == 1, (
        f"OpenCV wheels installed: {present}; keep exactly one (pip uninstall the others, then "
        "pip install --force-reinstall --no-deps opencv-python, since they share the cv2 folder)"
    )


def test_requirements_name_the_opencv_wheel_ultralytics_needs():
    runtime = required_names(ROOT / "requirements.txt")
    assert [name for name in OPENCV_WHEELS if name in runtime] == ["opencv-python"]
    assert "ultralytics" in runtime
    needed = {Requirement(r).name.lower() for r in metadata.requires("ultralytics") or [] if "extra" not in r}
    assert "opencv-python" in needed  # if ultralytics ever moves to the headless wheel, follow it
    assert "ultralytics" not in required_names(ROOT / "requirements-dev.txt")  # listed once, at runtime
