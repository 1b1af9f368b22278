"""Recall of the offline person detector (assets/detector) on real photos with people at several sizes:
ultralytics' bus.jpg and zidane.jpg, Debian darknet's person.jpg and kite.jpg (boxes drawn by hand here),
and a fixed sample of LSPET photos (their annotated boxes). Prints found / people and false boxes per
photo for the detector as first shipped (whole photo at 300 x 300 once, threshold 0.3) and as it is now
(also tiles of large photos, the mirror image of small ones, threshold 0.25).

    python -m benchmarks.detector_recall [--lspet ../shared/data/lspet] [--every 20]

darknet's photos come from its Debian package, unpacked (not installed: it would pull in 136 packages):
``apt-get download darknet && dpkg-deb -x darknet_*.deb DIR`` (``.ci/run`` does this), found under
``/usr/share/darknet/data``, ``$DARKNET_DATA`` or ``~/.cache/darknet-data``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from app.detection import PersonDetector

MATCH_IOU = 0.5  # a person is found when a box overlaps theirs by this much (PASCAL VOC's criterion)
LSPET_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "lspet"

# People (x1, y1, x2, y2), px, drawn by hand on each photo at full size; "ignore" regions hold people too
# small or merged to count (neither found nor false): kite.jpg's kite-surfers, 10-25 px, half in the water.
HAND_BOXES: dict[str, dict] = {
    "bus.jpg": {
        "people": [(50, 400, 245, 905), (220, 405, 345, 860), (670, 390, 810, 880), (0, 550, 65, 875)],
    },
    "zidane.jpg": {"people": [(150, 200, 700, 720), (720, 40, 1130, 720)]},
    "person.jpg": {"people": [(190, 100, 273, 375)]},
    "kite.jpg": {
        "people": [
            (114, 613, 164, 762),  # the two children in front, 150 px high
            (217, 699, 269, 852),
            (22, 531, 38, 557),  # five people on the beach, 26-58 px high
            (39, 510, 53, 560),
            (83, 508, 102, 566),
            (95, 537, 108, 567),
            (177, 541, 192, 573),
        ],
        "ignore": [(330, 440, 1352, 545)],
    },
}
KITE_CHILDREN = HAND_BOXES["kite.jpg"]["people"][:2]


def ious(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` intersection over union of boxes ``a (N, 4)`` and ``b (M, 4)`` (xyxy)."""
    a, b = np.asarray(a, float).reshape(-1, 4), np.asarray(b, float).reshape(-1, 4)
    lo, hi = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod((hi - lo).clip(0), axis=-1)
    area_a, area_b = np.prod(a[:, 2:] - a[:, :2], axis=-1), np.prod(b[:, 2:] - b[:, :2], axis=-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def matched(people, boxes: np.ndarray) -> np.ndarray:
    """``(P,)`` bool: which people a box finds (IoU >= MATCH_IOU; each box finds one person, best first)."""
    overlap = ious(people, boxes)
    found, used = np.zeros(len(overlap), bool), set()
    for person in range(len(overlap)):
        for box in np.argsort(-overlap[person], kind="stable"):
            if overlap[person, box] >= MATCH_IOU and box not in used:
                found[person] = True
                used.add(int(box))
                break
    return found


def false_boxes(people, boxes: np.ndarray, ignore=()) -> int:
    """Boxes on no person (IoU < MATCH_IOU with all) and not wholly inside an ignore region."""
    if len(boxes) == 0:
        return 0
    on_person = ious(people, boxes).max(axis=0) >= MATCH_IOU if len(people) else np.zeros(len(boxes), bool)
    ignored = np.zeros(len(boxes), bool)
    for x0, y0, x1, y1 in ignore:
        ignored |= (boxes[:, 0] >= x0) & (boxes[:, 1] >= y0) & (boxes[:, 2] <= x1) & (boxes[:, 3] <= y1)
    return int((~on_person & ~ignored).sum())


def darknet_data() -> Path | None:
    """The folder holding darknet's kite.jpg and person.jpg, or None."""
    candidates = [
        os.environ.get("DARKNET_DATA"),
        "/usr/share/darknet/data",
        Path.home() / ".cache/darknet-data",
    ]
    for folder in (Path(c) for c in candidates if c):
        if (folder / "kite.jpg").is_file() and (folder / "person.jpg").is_file():
            return folder
    return None


def hand_labelled_photos() -> dict[str, Path]:
    """Photo name -> path for every photo of HAND_BOXES on this machine."""
    import importlib.util

    paths = {}
    spec = importlib.util.find_spec("ultralytics")  # located without importing it (slow)
    if spec is not None and spec.submodule_search_locations:
        assets = Path(spec.submodule_search_locations[0]) / "assets"
        paths.update({n: assets / n for n in ("bus.jpg", "zidane.jpg") if (assets / n).is_file()})
    darknet = darknet_data()
    if darknet is not None:
        paths.update({n: darknet / n for n in ("person.jpg", "kite.jpg")})
    return paths


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return np.ascontiguousarray(image[:, :, ::-1])


def lspet_sample(folder: Path, every: int) -> list[tuple[Path, tuple[float, float, float, float]]]:
    """Every ``every``-th annotated LSPET person (by annotation order): image path and box xyxy."""
    data = json.loads((folder / "annotations.json").read_text())
    files = {image["id"]: image["file_name"] for image in data["images"]}
    sample = []
    for ann in data["annotations"][::every]:
        x, y, w, h = ann["bbox"]
        sample.append((folder / "images" / files[ann["image_id"]], (x, y, x + w, y + h)))
    return sample


@dataclass
class Score:
    found: int = 0
    people: int = 0
    false: int = 0
    ms: float = 0.0

    def __str__(self) -> str:
        return f"{self.found}/{self.people}, {self.false} false, {self.ms:.0f} ms"


def timed(detector: PersonDetector, image: np.ndarray) -> tuple[np.ndarray, float]:
    """The boxes found in ``image`` and the milliseconds it took."""
    start = time.perf_counter()
    boxes = detector(image).boxes
    return boxes, (time.perf_counter() - start) * 1e3


def detectors() -> dict[str, PersonDetector]:
    """The offline detector as first shipped ("before") and as it is now ("after")."""
    offline = "no_yolo_weights_for_the_benchmark.pt"  # YOLO never runs: this measures the offline detector
    return {
        "before": PersonDetector(yolo_model=offline, score_threshold=0.3, extra_passes=False, max_people=100),
        "after": PersonDetector(yolo_model=offline, max_people=100),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lspet", type=Path, default=LSPET_DIR, help="LSPET folder (annotations.json)")
    parser.add_argument("--every", type=int, default=20, help="use every N-th LSPET person")
    args = parser.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    runs = detectors()
    for detector in runs.values():
        detector.load()  # not timed: onnxruntime's session is made once per server
    photos = hand_labelled_photos()
    missing = sorted(set(HAND_BOXES) - set(photos))
    print(f"{'photo':<12} {'people':>6}  " + "  ".join(f"{name:<22}" for name in runs))
    for name, path in photos.items():
        image, truth = read_rgb(path), HAND_BOXES[name]
        cells = []
        for detector in runs.values():
            boxes, ms = timed(detector, image)
            score = Score(int(matched(truth["people"], boxes).sum()), len(truth["people"]), ms=ms)
            score.false = false_boxes(truth["people"], boxes, truth.get("ignore", ()))
            cells.append(f"{score!s:<22}")
        print(
            f"{name:<12} {len(truth['people']):>6}  "
            + "  ".join(cells)
            + f"  {image.shape[1]}x{image.shape[0]}"
        )
    if missing:
        print(f"(not on this machine: {', '.join(missing)}; see this module's docstring)")
    if (args.lspet / "annotations.json").is_file():
        sample = lspet_sample(args.lspet, args.every)
        scores = {name: Score(people=len(sample)) for name in runs}
        for path, box in sample:
            image = read_rgb(path)
            for name, detector in runs.items():
                boxes, ms = timed(detector, image)
                scores[name].found += int(matched([box], boxes).sum())
                scores[name].ms += ms / len(sample)
        row = "  ".join(
            f"{f'{s.found}/{s.people} ({s.found / s.people:.0%}), {s.ms:.0f} ms':<22}"
            for s in scores.values()
        )
        print(f"{'LSPET 1/' + str(args.every):<12} {len(sample):>6}  {row}")
    else:
        print(f"(LSPET not found at {args.lspet})")


if __name__ == "__main__":
    main()
