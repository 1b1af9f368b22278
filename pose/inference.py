"""Top-down inference: image + person boxes -> crops -> logits (cached) -> any decoder -> image pixels.

The logits of the last image are kept, so ``Predictor.redecode`` decodes them again with another decoder
or beta in milliseconds without running the network (the app's beta slider depends on this).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor, nn

from pose.decode import DECODERS, check_beta
from pose.geometry import (
    Crop,
    apply_affine,
    box_to_crop,
    check_image,
    crops_matrices,
    input_aspect,
    invert_affine,
    warp_image,
)

# Context around the person box, as in SimpleBaseline and HRNet (and as the training crops use).
CROP_PADDING = 1.25


@dataclass(frozen=True, eq=False)
class Prediction:
    """Keypoints of the N persons of one image (arrays are read-only).

    Attributes:
        keypoints: ``(N, K, 2)`` float32 ``(x, y)`` in image pixels (pixel index i at coordinate i).
        scores: ``(N, K)`` float32 in ``[0, 1]``; the decoder's confidence (see ``pose.decode``).
        heatmap_coords: ``(N, K, 2)`` float32 ``(x, y)`` in heatmap pixels, before the map to the image.
        boxes: ``(N, 4)`` float64 person boxes ``(x1, y1, x2, y2)`` as given, image pixels.
        crops: the N crops the boxes became; ``pose.geometry.heatmap_to_image(p, crops[i],
            heatmap_size)`` maps ``heatmap_coords[i]`` to ``keypoints[i]``.
        decoder: name of the decoder used, a key of ``pose.decode.DECODERS``.
        beta: softmax sharpness used (``argmax`` ignores it).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    heatmap_coords: np.ndarray
    boxes: np.ndarray
    crops: tuple[Crop, ...]
    decoder: str
    beta: float

    def __post_init__(self) -> None:
        for array in (self.keypoints, self.scores, self.heatmap_coords, self.boxes):
            array.setflags(write=False)

    def __len__(self) -> int:
        return self.keypoints.shape[0]


@dataclass(frozen=True)
class _Cache:
    """What ``redecode`` needs from the last ``predict``."""

    logits: Tensor  # (N, K, h, w) float32 on the CPU
    boxes: np.ndarray  # (N, 4) float64
    crops: tuple[Crop, ...]
    to_image: np.ndarray  # (N, 2, 3) float64: heatmap pixels -> image pixels, one map per crop


def _check_boxes(boxes: ArrayLike) -> np.ndarray:
    """Boxes as ``(N, 4)`` float64; an empty sequence is N = 0."""
    try:
        array = np.array(boxes, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"boxes must be numbers of shape (N, 4) as x1, y1, x2, y2: {err}") from None
    if array.size == 0:
        return array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4) as x1, y1, x2, y2, got {array.shape}")
    for i, (x1, y1, x2, y2) in enumerate(array):
        if not np.all(np.isfinite(array[i])):
            raise ValueError(f"box {i} is not finite: {array[i].tolist()}")
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"box {i} is degenerate (needs x2 > x1 and y2 > y1): {array[i].tolist()}")
    return array


class Predictor:
    """Runs a pose model on person boxes and decodes its logits with any decoder and beta.

    The model must follow the PoseModel contract: ``forward(images (B, 3, H, W)) -> logits (B, K, h, w)``
    and attributes ``schema``, ``input_size``, ``heatmap_size``, ``decoder``, ``beta``, ``mean``, ``std``;
    an optional ``crop_padding`` (crop side / box side) replaces ``CROP_PADDING`` (e.g. ``pose.blazepose``).

    The last image's logits are cached on the CPU as float32, so :meth:`redecode` (any decoder, any
    beta) never runs the network. ``flip=True`` averages them with the mirrored crops' logits
    (:func:`flip_test_logits`); ``redecode`` then gives what ``predict`` would.

    Args:
        model: a PoseModel; it is moved to ``device`` and put in eval mode (in place).
        device: where the network runs, e.g. ``"cpu"`` or ``"cuda"``.
        flip: also run mirrored crops and average the logits (twice the network time).
        batch_size: most crops per forward call; bounds memory (with ``flip``, each chunk makes two calls).
    """

    def __init__(
        self, model: nn.Module, device: str | torch.device = "cpu", flip: bool = False, batch_size: int = 32
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.flip = bool(flip)
        self.batch_size = int(batch_size)
        self.input_size: tuple[int, int] = tuple(model.input_size)
        self.heatmap_size: tuple[int, int] = tuple(model.heatmap_size)
        self.num_keypoints: int = model.schema.num_keypoints
        self._flip_perm = list(model.schema.flip)
        # A model may ask for its own context around the box (BlazePose: 1.5, measured); ours use 1.25.
        self.crop_padding = float(getattr(model, "crop_padding", CROP_PADDING))
        # Normalisation folded onto the 0..255 scale, so uint8 crops need one subtract and one divide.
        self._mean = torch.tensor(model.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255
        self._std = torch.tensor(model.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1) * 255
        self._cache: _Cache | None = None

    @property
    def logits(self) -> Tensor | None:
        """A copy of the last image's logits ``(N, K, h, w)`` float32 (CPU), or None before ``predict``."""
        return None if self._cache is None else self._cache.logits.clone()

    def joint_logits(self, person: int, joint: int) -> Tensor:
        """A copy of one cached map, ``logits[person, joint]`` as ``(1, 1, h, w)`` float32 (CPU).

        Copies that one map only (:attr:`logits` copies all N x K): a caller that shows one joint at a time
        needs no copy of its own.

        Raises:
            RuntimeError: if nothing was predicted yet.
            IndexError: if the last image has no such person or joint.
        """
        if self._cache is None:
            raise RuntimeError("joint_logits() needs cached logits: call predict(image, boxes) first")
        n, k = self._cache.logits.shape[:2]
        if not (0 <= person < n and 0 <= joint < k):
            raise IndexError(f"no map of person {person}, joint {joint}: the last image has {n} x {k}")
        return self._cache.logits[person : person + 1, joint : joint + 1].clone()

    @property
    def crops(self) -> tuple[Crop, ...] | None:
        """The last image's N crops (one per box), or None before ``predict``."""
        return None if self._cache is None else self._cache.crops

    def predict(
        self, image: np.ndarray, boxes: ArrayLike, decoder: str | None = None, beta: float | None = None
    ) -> Prediction:
        """Keypoints of the persons in ``boxes``; caches the logits for :meth:`redecode`.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            boxes: ``(N, 4)`` person boxes ``(x1, y1, x2, y2)``, image pixels; N may be 0.
            decoder: a key of ``pose.decode.DECODERS``; None for the model's default.
            beta: softmax sharpness (> 0); None for the model's default.

        Returns:
            A :class:`Prediction` with ``keypoints`` ``(N, K, 2)`` in image pixels and ``scores`` ``(N, K)``.

        Raises:
            ValueError: bad image (not HxWx3 uint8), boxes (not (N, 4), not finite, degenerate: the
                message names the box), unknown decoder, bad beta, or NaN/inf logits from the network.
        """
        decoder, beta = self._resolve(decoder, beta)
        image = check_image(image)
        boxes = _check_boxes(boxes)
        aspect = input_aspect(self.input_size)
        crops = tuple(box_to_crop(box, aspect, padding=self.crop_padding) for box in boxes)
        logits = self._run(image, crops)
        to_image = invert_affine(crops_matrices(crops, self.heatmap_size)) if crops else np.zeros((0, 2, 3))
        cache = _Cache(logits=logits, boxes=boxes, crops=crops, to_image=to_image)
        prediction = self._decode(cache, decoder, beta)
        self._cache = cache  # only once everything succeeded: a failed call keeps the previous image
        return prediction

    def redecode(self, decoder: str | None = None, beta: float | None = None) -> Prediction:
        """Decode the last image's cached logits again; never runs the network.

        Args:
            decoder: a key of ``pose.decode.DECODERS``; None for the model's default.
            beta: softmax sharpness (> 0); None for the model's default.

        Returns:
            What ``predict(same image, same boxes, decoder, beta)`` returns.

        Raises:
            RuntimeError: if nothing was predicted yet.
            ValueError: unknown decoder or bad beta.
        """
        decoder, beta = self._resolve(decoder, beta)
        if self._cache is None:
            raise RuntimeError("redecode() needs cached logits: call predict(image, boxes) first")
        return self._decode(self._cache, decoder, beta)

    def _resolve(self, decoder: str | None, beta: float | None) -> tuple[str, float]:
        decoder = self.model.decoder if decoder is None else decoder
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; choose one of {sorted(DECODERS)}")
        return decoder, check_beta(self.model.beta if beta is None else beta)

    def _run(self, image: np.ndarray, crops: tuple[Crop, ...]) -> Tensor:
        """Logits ``(N, K, h, w)`` float32 on the CPU for the crops, ``batch_size`` at a time."""
        if not crops:
            return torch.zeros(0, self.num_keypoints, *self.heatmap_size)
        with torch.no_grad():
            chunks = [
                self._forward(self._preprocess(image, crops[start : start + self.batch_size]))
                for start in range(0, len(crops), self.batch_size)
            ]
        logits = torch.cat(chunks)
        # Sums propagate NaN and inf and cost a fortieth of torch.isfinite over every pixel.
        if not torch.isfinite(logits.sum(dim=(-2, -1))).all():
            bad = ~torch.isfinite(logits).flatten(2).all(dim=-1)  # (N, K)
            boxes = bad.any(dim=1).nonzero().flatten().tolist()
            joints = [self.model.schema.names[k] for k in bad.any(dim=0).nonzero().flatten().tolist()]
            raise ValueError(f"the network produced NaN or inf logits for boxes {boxes} (joints {joints})")
        return logits

    def _preprocess(self, image: np.ndarray, crops: tuple[Crop, ...]) -> Tensor:
        """Warped, normalised crops ``(n, 3, H_in, W_in)`` float32 on the device."""
        warped = np.stack([warp_image(image, crop, self.input_size) for crop in crops])  # (n, H, W, 3) uint8
        # Move uint8 (a quarter of the bytes), then convert and re-lay out as NCHW in one copy.
        pixels = torch.from_numpy(warped).to(self.device).permute(0, 3, 1, 2)
        batch = torch.empty(pixels.shape, dtype=torch.float32, device=self.device).copy_(pixels)
        return batch.sub_(self._mean).div_(self._std)

    def _forward(self, batch: Tensor) -> Tensor:
        """Network logits for one chunk, flip-averaged if asked, as float32 on the CPU."""
        logits = flip_test_logits(self._checked_forward, batch, self._flip_perm if self.flip else None)
        return logits.to("cpu", torch.float32)

    def _checked_forward(self, batch: Tensor) -> Tensor:
        logits = self.model(batch)
        expected = (batch.shape[0], self.num_keypoints, *self.heatmap_size)
        if tuple(logits.shape) != expected:
            raise RuntimeError(f"model returned logits {tuple(logits.shape)}, expected {expected}")
        return logits

    def _decode(self, cache: _Cache, decoder: str, beta: float) -> Prediction:
        n, k = cache.logits.shape[:2]
        if n == 0:
            coords, scores = np.zeros((0, k, 2)), np.zeros((0, k))
        else:
            with torch.no_grad():
                coords_t, scores_t = DECODERS[decoder](cache.logits, beta)
            coords, scores = coords_t.numpy(), scores_t.numpy()
        keypoints = apply_affine(coords, cache.to_image)  # float64 map, then stored as float32
        return Prediction(
            keypoints=keypoints.astype(np.float32),
            scores=scores.astype(np.float32),
            heatmap_coords=coords.astype(np.float32),
            boxes=cache.boxes.copy(),
            crops=cache.crops,
            decoder=decoder,
            beta=beta,
        )


def flip_test_logits(network: Callable[[Tensor], Tensor], batch: Tensor, flip_perm: Tensor | None) -> Tensor:
    """Logits of ``batch`` ``(B, 3, H, W)``, averaged with those of its mirror image when ``flip_perm``.

    The mirrored crops' logits are mirrored back (reverse W: ``x_hm -> W_hm - 1 - x_hm``, exact under the
    edge-to-edge raster convention, so no one-pixel shift) and their channels permuted by the schema's
    flip permutation ``flip_perm`` ``(K,)`` before the average. Logits, not coordinates, are averaged: a
    zero background stays zero, so ``debiased`` stays exact, and one tensor serves every decoder.
    """
    logits = network(batch)
    if flip_perm is None:
        return logits
    mirrored = network(batch.flip(-1))
    return 0.5 * (logits + mirrored.flip(-1)[:, flip_perm])
