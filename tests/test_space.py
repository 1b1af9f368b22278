"""app.space: the Hugging Face Space folder (what it holds, the files the Hub would refuse or store as large
files), that it starts on its own from a clean virtual environment, and that pushing offline fails at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from app import space
from app.space import SpaceError, check_space, serves, write_space

ROOT = Path(__file__).resolve().parents[1]
OFFLINE_ENV = {"YOLO_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
LARGE = {"assets/model/model.safetensors", "assets/detector/ssdlite_mobilenet_v2_person.onnx"}


@pytest.fixture(scope="module")
def space_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("space") / "debias-pose"
    write_space(folder)
    return folder


def files_in(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_the_folder_holds_the_app_and_nothing_for_training_or_tests(space_dir):
    files = files_in(space_dir)
    for needed in (
        "app.py",
        "README.md",
        "requirements.txt",
        "packages.txt",
        ".gitattributes",
        "app/ui.py",
        "app/photo_tab.py",
        "pose/decode.py",
        "pose/models/pose_model.py",
        "assets/README.md",  # the detector's licence and the model's data note travel with them
        "assets/model/config.json",
        "assets/model/README.md",
        "assets/examples/landscape_no_person.jpg",
        "assets/results/compare.json",
        "assets/results/bias.json",  # the analysis tab's second study
        *LARGE,
    ):
        assert needed in files, needed
    tops = {f.split("/")[0] for f in files}
    assert tops == {
        "app.py",
        "README.md",
        "requirements.txt",
        "packages.txt",
        ".gitattributes",
        "app",
        "pose",
        "assets",
    }
    assert not any("__pycache__" in f or f.endswith(".pyc") for f in files)
    assert not (space_dir / "assets" / "results" / "compare.html").exists()  # 4.9 MB the app never reads
    assert (space_dir / "README.md").read_text() == (ROOT / "README.md").read_text()


def test_check_names_the_files_that_need_large_file_storage(space_dir):
    findings = {f.path: f for f in check_space(space_dir)}
    assert LARGE <= set(findings) and all(findings[p].reason == "over 10 MB" for p in LARGE)
    assert findings["assets/examples/landscape_no_person.jpg"].reason.startswith("binary")
    assert all(f.problem == "large-file storage" for f in findings.values())
    assert not any(p.endswith((".py", ".json", ".md", ".txt")) for p in findings)
    tracked = (space_dir / ".gitattributes").read_text().splitlines()
    assert sorted(line.split()[0] for line in tracked) == sorted(findings)  # a git push with LFS works
    assert all(line.endswith("filter=lfs diff=lfs merge=lfs -text") for line in tracked)


def test_check_rejects_links_strangers_and_a_readme_without_front_matter(tmp_path):
    folder = tmp_path / "space"
    write_space(folder)
    (folder / "app" / "__init__.py").unlink()
    (folder / "app" / "__init__.py").symlink_to(ROOT / "app" / "__init__.py")
    rejected = [f for f in check_space(folder) if f.problem == "rejected"]
    assert [f.path for f in rejected] == ["app/__init__.py"] and "symbolic link" in rejected[0].reason
    (folder / "tests").mkdir()
    (folder / "tests" / "test_x.py").write_text("")
    with pytest.raises(SpaceError, match="not part of the Space: tests/test_x.py"):
        check_space(folder)
    (folder / "tests" / "test_x.py").unlink()
    (folder / "README.md").write_text("# no front matter\n")
    with pytest.raises(SpaceError, match="front matter"):
        check_space(folder)


def test_a_non_empty_folder_is_refused_and_a_space_clone_refreshed(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SpaceError, match="not empty"):
        write_space(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    clone = tmp_path / "clone"
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (clone / "old_file.py").write_text("")
    write_space(clone)
    assert (clone / ".git" / "HEAD").is_file() and not (clone / "old_file.py").exists()
    assert (clone / "app.py").is_file()


def test_the_folder_starts_from_a_clean_virtual_environment(space_dir, tmp_path):
    """A venv made with ``--system-site-packages`` (a plain one downloads ~2 GB and takes minutes here):
    ``pip install -r requirements.txt`` in it must be satisfied, ``app`` and ``pose`` must come from the
    folder, and ``python app.py`` there must serve the page and list bus.jpg and zidane.jpg as examples."""
    venv.EnvBuilder(system_site_packages=True, with_pip=True).create(tmp_path / "venv")
    python = str(tmp_path / "venv" / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | OFFLINE_ENV
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", "-r", "requirements.txt"],
        cwd=space_dir,
        env=env,
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    where = subprocess.run(
        [python, "-c", "import app, pose; print(app.__file__); print(pose.__file__)"],
        cwd=space_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert all(Path(line).is_relative_to(space_dir) for line in where.stdout.split())

    def examples_listed(url: str) -> None:
        config = urllib.request.urlopen(f"{url}config", timeout=10).read().decode()
        assert "bus.jpg" in config and "zidane.jpg" in config and json.loads(config)

    assert serves(space_dir, python, timeout=120, probe=examples_listed) < 120


def test_push_offline_fails_at_once_with_one_line(tmp_path):
    env = {**os.environ, **OFFLINE_ENV}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "app.space", str(tmp_path / "s"), "--push", "someone/debias-pose"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and time.perf_counter() - start < 60
    assert result.stderr.strip().splitlines() == [
        "error: cannot push to someone/debias-pose: HF_HUB_OFFLINE is set (this machine is offline)"
    ]
    assert (tmp_path / "s" / "app.py").is_file()  # the folder was written before the push was tried


def test_push_reports_hub_failures_in_one_line(tmp_path, monkeypatch):
    """Online but refused (the Hub's client raising, as without a login): one line, no traceback."""
    import huggingface_hub
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)

    def refuse(*args, **kwargs):
        raise PermissionError("401 Client Error: Unauthorized\nInvalid credentials in Authorization header")

    monkeypatch.setattr(huggingface_hub, "create_repo", refuse)
    with pytest.raises(SpaceError) as err:
        space.push_space(tmp_path, "someone/debias-pose")
    assert (
        str(err.value)
        == "cannot push to someone/debias-pose: PermissionError: 401 Client Error: Unauthorized"
    )
