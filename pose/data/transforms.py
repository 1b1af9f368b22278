"""Training augmentation on the crop (scale, rotation, half-body), one warp, then a horizontal flip and
an optional occluder.

Everything moves the :class:`pose.geometry.Crop` first, so each image is resampled exactly once; the
flip happens afterwards in input/heatmap space, where it is an exact mirror of both rasters. The occluder
(random erasing) is painted on the warped input last and leaves the targets alone: the joints behind it
keep their labels, so the network learns to place them from the rest of the body.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pose.geometry import (
    Crop,
    Size,
    box_to_crop,
    crop_matrix,
    flip_points,
    image_to_heatmap,
    invert_affine,
    warp_image,
)
from pose.keypoints import KeypointSchema

# Name tokens that put a joint in the upper or lower half of the body for half-body crops. A joint
# whose name has none of them (e.g. a finger joint) belongs to neither half.
UPPER_BODY_WORDS = frozenset(
    {"head", "face", "nose", "eye", "ear", "mouth", "lip", "chin", "neck", "thorax", "chest",
     "shoulder", "elbow", "wrist", "hand"}
)  # fmt: skip
LOWER_BODY_WORDS = frozenset({"hip", "pelvis", "knee", "ankle", "foot", "heel", "toe", "leg"})


@dataclass(frozen=True)
class AugmentConfig:
    """Random training augmentation, SimpleBaseline's defaults (rotation factor 45 degrees here).

    Attributes:
        flip_prob: probability of a horizontal flip (with the schema's left/right swap).
        scale_factor: s; the crop size is multiplied by ``clip(1 + s * N(0, 1), 1 - s, 1 + s)``.
        rotation_factor: r, degrees; rotation is ``clip(r * N(0, 1), -2r, 2r)`` ...
        rotation_prob: ... applied with this probability, else 0.
        half_body_prob: probability of cropping around the upper or lower body instead of the box,
            for instances with more than ``num_joints_half_body`` labelled joints.
        num_joints_half_body: see ``half_body_prob``.
        half_body_padding: the half-body joints' box (aspect-fixed) is enlarged by this factor.
        occlusion_prob: probability of painting one rectangle of random noise over the warped input
            (random erasing, Zhong et al. 2020): a share of the input's area drawn uniformly from
            [occlusion_min_area, occlusion_max_area], aspect ratio log-uniform in [1/3, 3], anywhere.
        occlusion_min_area, occlusion_max_area: see ``occlusion_prob``.
    """

    # metadata["help"]: each setting's meaning where training's --help lists it (augment.KEY=value)
    flip_prob: float = field(
        default=0.5, metadata={"help": "probability of a horizontal flip (left/right joints swapped), [0, 1]"}
    )
    scale_factor: float = field(
        default=0.35, metadata={"help": "crop scale 1 + s*N(0, 1), clipped to 1 +- s, [0, 1)"}
    )
    rotation_factor: float = field(
        default=45.0, metadata={"help": "rotation r*N(0, 1) degrees, clipped to +-2r (a rotation_prob share)"}
    )
    rotation_prob: float = field(default=0.6, metadata={"help": "share of crops that are rotated, [0, 1]"})
    half_body_prob: float = field(
        default=0.3, metadata={"help": "probability of a crop around the upper or lower body, [0, 1]"}
    )
    num_joints_half_body: int = field(
        default=8, metadata={"help": "half-body crops only for people with more labelled joints than this"}
    )
    half_body_padding: float = field(
        default=1.5, metadata={"help": "enlargement of the half-body joints' (aspect-fixed) box"}
    )
    occlusion_prob: float = field(
        default=0.0, metadata={"help": "probability of a random-noise rectangle over the input, [0, 1]"}
    )
    occlusion_min_area: float = field(
        default=0.02, metadata={"help": "smallest share of the input area an occluder covers, (0, 1]"}
    )
    occlusion_max_area: float = field(
        default=0.2, metadata={"help": "largest share of the input area an occluder covers, [min, 1]"}
    )

    def __post_init__(self) -> None:
        for name in ("flip_prob", "rotation_prob", "half_body_prob", "occlusion_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.scale_factor < 1.0:
            raise ValueError(f"AugmentConfig.scale_factor must be in [0, 1), got {self.scale_factor}")
        if self.rotation_factor < 0:
            raise ValueError(f"AugmentConfig.rotation_factor must be >= 0, got {self.rotation_factor}")
        if self.half_body_padding <= 0:
            raise ValueError(f"AugmentConfig.half_body_padding must be > 0, got {self.half_body_padding}")
        low, high = self.occlusion_min_area, self.occlusion_max_area
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(
                f"AugmentConfig.occlusion_min_area/max_area must be 0 < min <= max <= 1, got {low}, {high}"
            )


NO_AUGMENT = AugmentConfig(flip_prob=0.0, scale_factor=0.0, rotation_factor=0.0, half_body_prob=0.0)


def _name_words(name: str) -> set[str]:
    """Lower-case words of a joint name split at separators and camelCase ('leftWrist' -> left, wrist)."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)
    return {w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w}


def body_halves(schema: KeypointSchema) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Indices of upper-body and lower-body joints, from name words (``UPPER/LOWER_BODY_WORDS``).

    COCO-17: upper = nose, eyes, ears, shoulders, elbows, wrists; lower = hips, knees, ankles.
    LSP-14 / MPII-16: upper = wrists, elbows, shoulders, neck, head_top (+ thorax, upper_neck);
    lower = ankles, knees, hips (+ pelvis). Joints matching both lists count as upper.
    """
    upper, lower = [], []
    for i, name in enumerate(schema.names):
        words = _name_words(name)
        if words & UPPER_BODY_WORDS:
            upper.append(i)
        elif words & LOWER_BODY_WORDS:
            lower.append(i)
    return tuple(upper), tuple(lower)


def half_body_crop(
    keypoints: np.ndarray,
    halves: tuple[Sequence[int], Sequence[int]],
    pick_upper: bool,
    aspect_ratio: float,
    padding: float,
) -> Crop | None:
    """Crop around the labelled joints of one body half (SimpleBaseline's half-body transform).

    Args:
        keypoints: ``(K, 2)`` image pixels, NaN where unlabelled.
        halves: ``(upper, lower)`` joint indices from :func:`body_halves`.
        pick_upper: prefer the upper half; it is used only if it has more than 2 labelled joints.
        aspect_ratio: crop width / height.
        padding: enlargement of the joints' aspect-fixed box.

    Returns:
        The crop, or None when the chosen half has fewer than 2 labelled joints.
    """
    labelled = np.all(np.isfinite(keypoints), axis=1)
    upper, lower = ([i for i in half if labelled[i]] for half in halves)
    chosen = upper if pick_upper and len(upper) > 2 else lower
    if len(chosen) < 2:
        chosen = upper
    if len(chosen) < 2:
        return None
    points = keypoints[chosen]
    low, high = points.min(axis=0), points.max(axis=0)
    # Joints on one line would give a zero-width box; give it 1 px so the aspect fix can grow it.
    centre, half_size = (low + high) / 2, np.maximum((high - low) / 2, 0.5)
    return box_to_crop(np.concatenate([centre - half_size, centre + half_size]), aspect_ratio, padding)


def random_crop(
    crop: Crop,
    keypoints: np.ndarray,
    rng: np.random.Generator,
    config: AugmentConfig,
    halves: tuple[Sequence[int], Sequence[int]],
    aspect_ratio: float,
) -> tuple[Crop, bool]:
    """Draw one augmentation: optional half-body crop, then scale and rotation; and whether to flip.

    The same six random numbers are drawn in the same order whatever the config, so e.g. turning the
    flip on does not change an item's scale or rotation.

    Args:
        crop: the un-augmented crop of the instance's box.
        keypoints: ``(K, 2)`` image pixels, NaN where unlabelled.
        rng: the item's generator.
        config: augmentation settings.
        halves: ``(upper, lower)`` from :func:`body_halves`.
        aspect_ratio: network input width / height.

    Returns:
        ``(crop, flip)``: the augmented crop and whether to mirror the warped result.
    """
    gate_half, pick_upper, gate_rotation, gate_flip = rng.random(4)
    scale_noise, rotation_noise = rng.standard_normal(2)
    num_labelled = int(np.sum(np.all(np.isfinite(keypoints), axis=1)))
    if num_labelled > config.num_joints_half_body and gate_half < config.half_body_prob:
        half = half_body_crop(keypoints, halves, pick_upper < 0.5, aspect_ratio, config.half_body_padding)
        crop = half if half is not None else crop
    s = config.scale_factor
    scale = float(np.clip(1.0 + s * scale_noise, 1.0 - s, 1.0 + s))
    r = config.rotation_factor
    rotation = (
        float(np.clip(r * rotation_noise, -2 * r, 2 * r)) if gate_rotation < config.rotation_prob else 0.0
    )
    size = (crop.size_wh[0] * scale, crop.size_wh[1] * scale)
    return Crop(crop.center_xy, size, rotation), bool(gate_flip < config.flip_prob)


def _horizontal_flip_matrix(width: int) -> np.ndarray:
    """``(3, 3)`` homogeneous mirror of a ``width``-pixel raster, ``x -> width - 1 - x`` (self-inverse)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def warp_instance(
    image: np.ndarray,
    crop: Crop,
    flip: bool,
    keypoints: np.ndarray,
    input_size: Size,
    heatmap_size: Size,
    flip_perm: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp one crop to the network input and map its joints to the heatmap, optionally mirrored.

    The input mirror ``x_in -> W_in - 1 - x_in`` and the heatmap mirror ``x_hm -> W_hm - 1 - x_hm`` are
    the same map under the edge-to-edge convention, so image and targets stay aligned. After a flip,
    row i of the coordinates is the original joint ``flip_perm[i]``.

    Args:
        image: ``(H, W, C)`` uint8 image.
        crop: the crop to cut out.
        flip: mirror the result horizontally and swap left/right joints.
        keypoints: ``(K, 2)`` image pixels (NaN stays NaN).
        input_size: ``(H_in, W_in)``.
        heatmap_size: ``(H_hm, W_hm)``.
        flip_perm: the schema's flip permutation.

    Returns:
        ``(input_image, coords, matrix)``: ``(H_in, W_in, C)`` image of the input's dtype,
        ``(K, 2)`` float64 heatmap pixels, and the ``(2, 3)`` float64 heatmap -> image affine map.
    """
    warped = warp_image(image, crop, input_size)
    coords = image_to_heatmap(keypoints, crop, heatmap_size)
    matrix = invert_affine(crop_matrix(crop, heatmap_size))
    if flip:
        warped = np.ascontiguousarray(warped[:, ::-1])
        coords = flip_points(coords, heatmap_size[1], flip_perm)
        # A flipped heatmap point first un-mirrors, then goes to the image: matrix @ mirror.
        matrix = matrix @ _horizontal_flip_matrix(heatmap_size[1])
    return warped, coords, matrix


def occlude(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Paint one rectangle of uniform uint8 noise over ``image`` with probability ``config.occlusion_prob``.

    Draws its five numbers (gate, area, log-aspect, x, y) whatever the config, then the noise only when it
    paints, so the rectangle of an item does not depend on the probability that turned it on.

    Args:
        image: ``(H, W, C)`` uint8 warped input; not modified.
        rng: the item's generator, after :func:`random_crop`'s draws.
        config: augmentation settings.

    Returns:
        ``image`` itself when nothing is painted, else an occluded copy.
    """
    gate, area_u, aspect_u, x_u, y_u = rng.random(5)
    if gate >= config.occlusion_prob:
        return image
    height, width = image.shape[:2]
    low, high = config.occlusion_min_area, config.occlusion_max_area
    area = (low + (high - low) * area_u) * height * width
    aspect = float(np.exp(np.log(3.0) * (2 * aspect_u - 1)))  # width / height in [1/3, 3]
    w = int(np.clip(round(np.sqrt(area * aspect)), 1, width))
    h = int(np.clip(round(np.sqrt(area / aspect)), 1, height))
    x0, y0 = int(x_u * (width - w + 1)), int(y_u * (height - h + 1))
    out = image.copy()
    out[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, (h, w, *image.shape[2:]), dtype=np.uint8)
    return out


def normalize_image(image_bgr: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(H, W, 3)`` uint8 BGR -> ``(3, H, W)`` float32 RGB, ``(x / 255 - mean) / std`` per channel."""
    rgb = image_bgr[..., ::-1].astype(np.float32) * np.float32(1 / 255)
    rgb -= np.asarray(mean, dtype=np.float32)
    rgb /= np.asarray(std, dtype=np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1))
