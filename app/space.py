"""`python -m app.space DIR [--push OWNER/NAME]`: write the folder a Hugging Face Space runs, check it for
files the Hub would refuse or must keep in large-file storage, and optionally upload it.

The folder holds app.py, app/, pose/, the assets the app reads (model, BlazePose, offline detector, example
photos, comparison results, and their provenance and licences), requirements.txt, packages.txt and README.md
with the Space's front matter — no tests, training code, runs or training data.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# What a Space needs, relative to the repository root. Folders are copied whole (less caches).
SPACE_FILES = ("app.py", "README.md", "requirements.txt", "packages.txt")
SPACE_DIRS = ("app", "pose", "assets/model", "assets/detector", "assets/blazepose", "assets/examples")
SPACE_ASSETS = (  # provenance + licences; tab 3's data
    "assets/README.md",
    "assets/results/compare.json",
    "assets/results/bias.json",
)
SKIPPED_PARTS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
# The Hub keeps files over 10 MB only in large-file storage (LFS / Xet); a git push refuses them, and any
# binary file, unless .gitattributes tracks them. huggingface_hub's upload does this by itself.
LFS_THRESHOLD = 10 * 1000 * 1000
MAX_FILE_SIZE = 50 * 1000**3  # the Hub refuses any single file above 50 GB
LFS_LINE = "{path} filter=lfs diff=lfs merge=lfs -text"
_TEXT_CHECK_BYTES = 8000  # git's own binary test looks for a NUL byte in the first 8000 bytes


class SpaceError(RuntimeError):
    """A Space folder that cannot be written, checked or pushed; the message says why in one line."""


@dataclass(frozen=True)
class Finding:
    """One file of the folder that needs attention.

    Attributes:
        path: relative to the folder, with forward slashes.
        size: bytes.
        problem: ``"rejected"`` (the Hub will not take it) or ``"large-file storage"`` (it must be stored
            with LFS / Xet: larger than 10 MB, or binary).
        reason: the why, in words.
    """

    path: str
    size: int
    problem: str
    reason: str


def space_files(root: Path = ROOT) -> list[Path]:
    """Every file of the Space, relative to ``root``, sorted; missing required files raise SpaceError."""
    missing = [name for name in (*SPACE_FILES, *SPACE_DIRS, *SPACE_ASSETS) if not (root / name).exists()]
    if missing:
        raise SpaceError(f"the repository at {root} lacks {', '.join(missing)}")
    files = [Path(name) for name in (*SPACE_FILES, *SPACE_ASSETS)]
    for folder in SPACE_DIRS:
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root)
            skipped = SKIPPED_PARTS.intersection(relative.parts) or path.suffix in SKIPPED_SUFFIXES
            if (path.is_file() or path.is_symlink()) and not skipped:
                files.append(relative)
    return sorted(files)


def _prepare(folder: Path) -> None:
    """An empty ``folder`` to write into: new, empty, or a clone of the Space (its .git is kept)."""
    if folder.exists() and not folder.is_dir():
        raise SpaceError(f"{folder} is a file, not a folder")
    entries = [p for p in folder.iterdir()] if folder.exists() else []
    if entries and not (folder / ".git").is_dir():
        raise SpaceError(f"{folder} is not empty (and not a git clone of a Space); give a new folder")
    for entry in entries:  # a clone: its tracked files come back from this export, history stays in .git
        if entry.name == ".git":
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def write_space(folder: str | os.PathLike, root: Path = ROOT) -> list[Path]:
    """Write the Space into ``folder`` with a .gitattributes for its large files; returns the files written.

    Raises:
        SpaceError: ``folder`` is a non-empty folder other than a Space clone, or the repository lacks a file.
    """
    folder = Path(folder)
    files = space_files(root)
    _prepare(folder)
    for relative in files:
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target, follow_symlinks=False)
    lfs = sorted(f.path for f in check_space(folder) if f.problem == "large-file storage")
    (folder / ".gitattributes").write_text("".join(LFS_LINE.format(path=p) + "\n" for p in lfs))
    return [*files, Path(".gitattributes")]


def _is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(_TEXT_CHECK_BYTES)
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:  # a multi-byte character cut at the end of the sample is still text
        return err.start < len(head) - 3
    return False


def _finding(folder: Path, path: Path) -> Finding | None:
    relative = path.relative_to(folder).as_posix()
    if path.is_symlink():
        return Finding(relative, 0, "rejected", "a symbolic link: the Hub stores files only")
    size = path.stat().st_size
    if size > MAX_FILE_SIZE:
        return Finding(relative, size, "rejected", "over the Hub's 50 GB limit for one file")
    if size > LFS_THRESHOLD:
        return Finding(relative, size, "large-file storage", "over 10 MB")
    if _is_binary(path):
        return Finding(relative, size, "large-file storage", "binary (a git push refuses it outside LFS/Xet)")
    return None


def check_space(folder: str | os.PathLike) -> list[Finding]:
    """The files of ``folder`` the Hub would refuse or must keep in large-file storage, by path.

    Also checks that README.md opens with front matter that runs app.py with the Gradio SDK.

    Raises:
        SpaceError: the front matter is missing or does not configure a Gradio Space running app.py, or a
            file of the folder is not part of a Space (tests, training code, runs, data).
    """
    folder = Path(folder)
    _check_front_matter(folder / "README.md")
    allowed = {p.as_posix() for p in space_files(ROOT)} | {".gitattributes"}
    paths = sorted(p for p in folder.rglob("*") if ".git" not in p.relative_to(folder).parts[:1])
    extra = [p.relative_to(folder).as_posix() for p in paths if not p.is_dir()]
    extra = [p for p in extra if p not in allowed]
    if extra:
        raise SpaceError(f"{folder} holds files that are not part of the Space: {', '.join(extra[:5])}")
    findings = (_finding(folder, p) for p in paths if p.is_symlink() or p.is_file())
    return [f for f in findings if f is not None]


def _check_front_matter(readme: Path) -> dict:
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    head, sep, _ = text.removeprefix("---\n").partition("\n---\n")
    if not text.startswith("---\n") or not sep:
        raise SpaceError(f"{readme} must open with the Space's YAML front matter between '---' lines")
    meta = yaml.safe_load(head) or {}
    if meta.get("sdk") != "gradio" or meta.get("app_file") != "app.py":
        raise SpaceError(f"{readme}'s front matter must say sdk: gradio and app_file: app.py, got {meta}")
    return meta


def serves(
    folder: str | os.PathLike,
    python: str = sys.executable,
    timeout: float = 90.0,
    probe: Callable[[str], None] | None = None,
) -> float:
    """Start ``python app.py`` in ``folder`` offline on a free port; seconds until it answered HTTP 200.

    Args:
        folder: a folder written by :func:`write_space`.
        python: the interpreter (e.g. a virtual environment's).
        timeout: seconds to wait for the first answer.
        probe: called with the server's URL once it answers, before it is stopped (for more checks).

    Raises:
        SpaceError: it exited or did not answer within ``timeout`` seconds (its error output is quoted).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing from this repository's environment may leak in: the folder must run on its own.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "POSE_MODEL", "COMPARE_RESULTS")}
    env.update(YOLO_OFFLINE="1", HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False")
    env.update(GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1")
    url, start = f"http://127.0.0.1:{port}/", time.perf_counter()
    process = subprocess.Popen(
        [python, "app.py"], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        while time.perf_counter() - start < timeout:
            if process.poll() is not None:
                raise SpaceError(f"python app.py exited: {process.stderr.read().decode()[-2000:]}")
            try:
                if urllib.request.urlopen(url, timeout=2).status == 200:
                    seconds = time.perf_counter() - start
                    if probe is not None:
                        probe(url)
                    return seconds
            except OSError:
                time.sleep(0.5)
        raise SpaceError(f"python app.py in {folder} did not answer within {timeout:.0f} s")
    finally:
        process.terminate()
        process.wait(timeout=20)


def push_space(folder: str | os.PathLike, repo_id: str) -> str:
    """Upload ``folder`` to the Space ``repo_id`` (created if needed); returns the Space's URL.

    Raises:
        SpaceError: offline (HF_HUB_OFFLINE), not logged in, or the Hub refused: one line saying which.
    """
    import huggingface_hub
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise SpaceError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set (this machine is offline)")
    try:
        huggingface_hub.create_repo(repo_id, repo_type="space", space_sdk="gradio", exist_ok=True)
        huggingface_hub.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="space",
            commit_message="Update the Space from python -m app.space",
        )
    except Exception as err:  # network, login, permission: one line for the command's user
        first = (str(err).strip().splitlines() or [""])[0]
        raise SpaceError(f"cannot push to {repo_id}: {type(err).__name__}: {first}") from None
    return f"https://huggingface.co/spaces/{repo_id}"


def _report(findings: list[Finding]) -> str:
    lines = [f"  {f.path} ({f.size / 1e6:.1f} MB): {f.problem} — {f.reason}" for f in findings]
    return "\n".join(lines) if lines else "  (none)"


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit status (0 ok, 1 a rejected file, 2 an error)."""
    parser = argparse.ArgumentParser(prog="python -m app.space", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the Space (new, empty, or a Space clone)")
    parser.add_argument("--push", metavar="OWNER/NAME", help="then upload it to this Space (huggingface_hub)")
    parser.add_argument("--start", action="store_true", help="then start python app.py there and check it")
    args = parser.parse_args(argv)
    try:
        written = write_space(args.folder)
        findings = check_space(args.folder)
        size = sum((args.folder / p).stat().st_size for p in written)
        print(f"Wrote {len(written)} files ({size / 1e6:.1f} MB) to {args.folder}. Files to note:")
        print(_report(findings))
        if any(f.problem == "rejected" for f in findings):
            print("The Hub would refuse the files marked 'rejected'; nothing was pushed.", file=sys.stderr)
            return 1
        if args.start:
            print(f"python app.py answered after {serves(args.folder):.1f} s.")
        if args.push:
            print(f"Pushed: {push_space(args.folder, args.push)}")
    except SpaceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
