"""The debias-pose demo (also the Hugging Face Spaces entry point): `python app.py [--local]` serves it on
127.0.0.1:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override it, as on Spaces).
"""

import argparse
import os

import torch

from app.model import local_folders_allowed
from app.ui import build_demo, launch_kwargs

if __name__ == "__main__":
    # A server must not pip-install at runtime: ultralytics would, for a HEIF plugin, on a non-image upload.
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    # One intra-op thread per request unless OMP_NUM_THREADS says otherwise: requests run side by side, and
    # OpenMP threads competing for 2 busy cores made a forward 30x and a beta re-decode 10x slower.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))
    parser = argparse.ArgumentParser(description="Removing the bias of integral pose regression: the demo.")
    parser.add_argument(
        "--local",
        action="store_true",
        help="let the model picker load local checkpoint folders (also POSE_APP_LOCAL=1; never on a Space)",
    )
    demo = build_demo(allow_local=local_folders_allowed(parser.parse_args().local))
    demo.queue(default_concurrency_limit=2, max_size=64).launch(**launch_kwargs())
