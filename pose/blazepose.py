"""BlazePose (Google MediaPipe, Apache-2.0) as a PoseModel-like network: its 64×64 heatmaps of the COCO-17
joints, so that ``pose.Predictor`` and ``pose.decode``'s three decoders read it like one of our models.

The heatmap is the sigmoid of the landmark model's ``Identity_3`` logits: a probability map with a
background of ~0 and a peak of up to ~1, the zero-background setting of the paper's Fig. 1 (Eq. 8 is exact
there). Heatmap pixel i is crop pixel ``4 i + 1.5``, which is this project's edge-to-edge map from a 256-px
input to a 64-px heatmap (``pose.geometry``), so ``Predictor``'s image <-> heatmap maps need no adapter.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pose.keypoints import COCO_17

INPUT_SIZE = (256, 256)  # (height, width) of the landmark model's RGB input, values in [0, 1]
HEATMAP_SIZE = (64, 64)  # (height, width) of Identity_3
# Crop side / longer side of the person box: the square crop on which the LSPET numbers were measured.
CROP_PADDING = 1.5
# COCO-17 joint k -> BlazePose landmark; "left"/"right" are the person's own sides in both schemas.
# Eyes: BlazePose has inner / centre / outer landmarks per eye; COCO's eye is the centre one (2, 5).
COCO_TO_BLAZEPOSE = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)


class BlazePoseError(RuntimeError):
    """The .tflite file or its runtime (ai-edge-litert) cannot be used; the message is one line."""


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise, without ``exp`` overflow for large negative logits."""
    return 0.5 * (1 + np.tanh(x / 2))


def landmark_interpreter(model_file: str | Path, threads: int) -> tuple[Any, int, dict[str, int]]:
    """A ready ``ai_edge_litert`` interpreter of a BlazePose landmark model (lite, full or heavy), its
    input tensor index and its output indices by name (``Identity`` landmarks, ``Identity_1`` pose flag,
    ``Identity_3`` heatmap logits, ...); :class:`BlazePoseError` with one line when that cannot be."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # imported here: no work at import time
    except ImportError as err:
        raise BlazePoseError(
            f"BlazePose needs the ai-edge-litert package (pip install ai-edge-litert): {err}"
        ) from None
    if not Path(model_file).is_file():
        raise BlazePoseError(f"BlazePose model file not found: {model_file}")
    try:
        net = Interpreter(model_path=str(model_file), num_threads=threads)
        net.allocate_tensors()
        outputs = {d["name"]: d["index"] for d in net.get_output_details()}
        if not {"Identity", "Identity_1", "Identity_3"} <= set(outputs):
            raise KeyError(f"outputs {sorted(outputs)}")
    except (ValueError, RuntimeError, KeyError) as err:
        raise BlazePoseError(f"{model_file} is not a BlazePose landmark model: {err}") from None
    return net, net.get_input_details()[0]["index"], outputs


class BlazePoseHeatmaps(nn.Module):
    """BlazePose's landmark network as ``forward(images (B, 3, 256, 256) in [0, 1]) -> (B, 17, 64, 64)``.

    The output is the sigmoid of the heatmap logits of the COCO-17 joints (probabilities in [0, 1], background
    ~0), not raw logits: decoded at a softmax sharpness beta, they show the bias that Eq. 8 removes. It
    has the attributes ``pose.Predictor`` reads (``schema``, ``input_size``, ``heatmap_size``, ``decoder``,
    ``beta``, ``mean``, ``std``, ``crop_padding``) and runs on the CPU only, one crop at a time (the
    .tflite graph has batch 1); a lock makes it safe to share between threads.

    Args:
        model_file: ``pose_landmark_full.tflite`` (or lite / heavy) from MediaPipe.
        threads: CPU threads of the interpreter.
        beta: the default softmax sharpness. BlazePose was not trained with a softmax; 10 is where
            the LSPET numbers show the bias (integral far below argmax) and debiased recovers most of it.
    """

    arch = "BlazePose GHUM 3D Full (MediaPipe)"
    schema = COCO_17
    input_size = INPUT_SIZE
    heatmap_size = HEATMAP_SIZE
    decoder = "debiased"
    mean = (0.0, 0.0, 0.0)  # Predictor computes (pixel - 255 mean) / (255 std): here pixel / 255
    std = (1.0, 1.0, 1.0)
    crop_padding = CROP_PADDING
    sigmoid_heatmaps = True  # the maps are probabilities, not logits (the app says so)
    trained_with_softmax = False  # its beta is a setting here, not the one it was trained at
    num_keypoints = COCO_17.num_keypoints

    def __init__(self, model_file: str | Path, threads: int = 1, beta: float = 10.0) -> None:
        super().__init__()
        self.model_file = Path(model_file)
        self.beta = float(beta)
        self._net, self._input, outputs = landmark_interpreter(self.model_file, threads)
        self._heatmaps = outputs["Identity_3"]
        self._lock = threading.Lock()

    def crop_heatmaps(self, crop: np.ndarray) -> np.ndarray:
        """One ``(256, 256, 3)`` float32 RGB crop in [0, 1] -> ``(17, 64, 64)`` float32 probabilities."""
        with self._lock:  # one interpreter, one set of tensors: one crop at a time
            self._net.set_tensor(self._input, np.ascontiguousarray(crop[None], dtype=np.float32))
            self._net.invoke()
            logits = self._net.get_tensor(self._heatmaps)[0]  # (64, 64, 39): 33 landmarks + 6 auxiliary
        picked = logits[..., list(COCO_TO_BLAZEPOSE)].transpose(2, 0, 1)
        return sigmoid(picked.astype(np.float32))

    def forward(self, images: Tensor) -> Tensor:
        """``(B, 3, 256, 256)`` float RGB in [0, 1] -> ``(B, 17, 64, 64)`` float32 heatmaps (CPU)."""
        if tuple(images.shape[1:]) != (3, *INPUT_SIZE):
            raise ValueError(f"BlazePose takes (B, 3, 256, 256) images, got {tuple(images.shape)}")
        crops = images.detach().to("cpu", torch.float32).permute(0, 2, 3, 1).numpy()
        maps = [self.crop_heatmaps(crop) for crop in crops]
        return torch.from_numpy(np.stack(maps)) if maps else torch.zeros(0, 17, *HEATMAP_SIZE)
