"""training.shrink: a smaller copy of a COCO keypoint set whose labels still sit on the same image points."""

import json

import cv2
import numpy as np

from tests.fixtures import make_coco_dataset
from training.config import load_config
from training.shrink import main as shrink_main
from training.trainer import _split_image_ids


def blob_image(x0: float, y0: float, size=(120, 160), sigma=4.0) -> np.ndarray:
    yy, xx = np.mgrid[: size[0], : size[1]]
    blob = 250 * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(blob)[..., None], 3, axis=2).astype(np.uint8)


def centroid(image: np.ndarray) -> tuple[float, float]:
    w = image[..., 0].astype(float)
    yy, xx = np.mgrid[: w.shape[0], : w.shape[1]]
    return float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())


def test_a_shrunk_keypoint_stays_on_its_blob_to_a_hundredth_of_a_pixel(tmp_path):
    x0, y0 = 61.3, 47.8
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), blob_image(x0, y0))
    ann = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "keypoints": [x0, y0, 2, 0, 0, 0],
        "bbox": [9.5, 9.5, 100, 80],
    }
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "height": 120, "width": 160}],
        "annotations": [ann],
        "categories": [{"id": 1, "name": "p", "keypoints": ["a", "b"], "skeleton": []}],
    }
    (tmp_path / "a.json").write_text(json.dumps(coco))
    out = tmp_path / "small"
    args = [
        str(tmp_path / "a.json"),
        str(tmp_path / "images"),
        str(out),
        "--long-side",
        "64",
        "--quality",
        "101",
    ]
    assert shrink_main(args) == 0  # WebP quality > 100 is lossless: the centroid is the resize's alone
    small = json.loads((out / "annotations.json").read_text())
    image = cv2.imread(str(out / "images" / "a.webp"))
    assert image.shape[:2] == (48, 64) and small["images"][0] | {"file_name": "a.webp"} == small["images"][0]
    assert (small["images"][0]["width"], small["images"][0]["height"]) == (64, 48)
    x, y, v, *rest = small["annotations"][0]["keypoints"]
    cx, cy = centroid(image)
    assert abs(x - cx) < 0.01 and abs(y - cy) < 0.01 and v == 2 and rest == [0, 0, 0]
    assert small["annotations"][0]["bbox"] == [3.5, 3.5, 40.0, 32.0]  # (9.5 + 0.5) * 0.4 - 0.5


def test_a_shrunk_set_keeps_ids_split_licence_and_loads(tmp_path):
    ann, images = make_coco_dataset(tmp_path / "data", n_images=20, size=(96, 128), seed=1)
    (ann.parent / "README.md").write_text("Licence: test pictures.")
    out = tmp_path / "small"
    assert shrink_main([str(ann), str(images), str(out), "--long-side", "64", "--format", "jpg"]) == 0
    before, after = json.loads(ann.read_text()), json.loads((out / "annotations.json").read_text())
    assert [i["id"] for i in before["images"]] == [i["id"] for i in after["images"]]
    assert all(
        max(i["width"], i["height"]) == 64 and i["file_name"].endswith(".jpg") for i in after["images"]
    )
    for a, b in zip(before["annotations"], after["annotations"], strict=True):
        assert b["area"] == a["area"] * 0.25 and b["num_keypoints"] == a["num_keypoints"]
    split = [
        _split_image_ids(load_config(None, [f"train_annotations={f}"]))
        for f in (ann, out / "annotations.json")
    ]
    assert split[0] == split[1]  # the same images held out of the copy as of the original
    assert (out / "README.md").read_text() == "Licence: test pictures."


def test_an_unreadable_image_fails_with_its_name(tmp_path, capsys):
    ann, images = make_coco_dataset(tmp_path / "data", n_images=3)
    (images / "000002.png").write_bytes(b"not a png")
    assert shrink_main([str(ann), str(images), str(tmp_path / "small")]) == 2
    err = capsys.readouterr().err
    assert "cannot read image" in err and "000002.png" in err
