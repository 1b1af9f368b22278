"""Depth growth: a trained shallow network's weights start a deeper one that computes the very same maps.

EfficientNet-Lite1 is Lite0 with the same widths and one more inverted-residual block at the end of each
of stages 2 to 6 (timm's ``blocks.1`` to ``blocks.5``: 1, 2, 2, 3, 3, 4, 1 blocks become 1, 3, 3, 4, 4, 5,
1). Every Lite0 tensor therefore has a Lite1 twin of the same key and shape. The extra blocks keep their
own start (ImageNet filters with ``pretrained: package``) but their last BatchNorm's scale and shift are
set to zero: a residual block then adds nothing (``x + 0``), so the grown network's output equals the
trained one's, and training grows the blocks from there (the zero-gamma residual start of Goyal et al.,
2017). A capacity step that starts at the trained model's accuracy instead of at ImageNet's.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

# (trained arch, deeper arch) pairs whose shared tensors have equal keys and shapes.
DEEPER = {("lite0", "lite1")}


def can_deepen(shallow: str, deep: str) -> bool:
    """Whether a ``shallow`` PoseModel's weights can start a ``deep`` one by :func:`deepen`."""
    return (shallow, deep) in DEEPER


@torch.no_grad()
def deepen(model: nn.Module, shallow: Mapping[str, Tensor]) -> list[str]:
    """Copy ``shallow`` (the state dict of a network with fewer residual blocks) into ``model`` and silence
    every block only ``model`` has, so that ``model`` computes what the shallow network did.

    Args:
        model: the deeper network (a PoseModel); its own weights are kept for the new blocks.
        shallow: tensors by key, each of which ``model`` has with the same shape.

    Returns:
        The new blocks' module names, e.g. ``["backbone.blocks.1.2", ...]``.

    Raises:
        ValueError: If a ``shallow`` tensor is missing from ``model`` or has another shape, or a new block
            is not a residual block ending in a BatchNorm ``bn3`` (it could not be silenced).
    """
    own = model.state_dict()
    missing = [k for k in shallow if k not in own]
    mismatched = [k for k in shallow if k in own and own[k].shape != shallow[k].shape]
    if missing or mismatched:
        raise ValueError(
            f"the weights do not fit inside this network: {len(missing)} tensors it lacks {missing[:3]}, "
            f"{len(mismatched)} of another shape {mismatched[:3]}"
        )
    new = sorted({k.rsplit(".", 2)[0] for k in own if k not in shallow})  # "backbone.blocks.1.2"
    for name in new:
        block = model.get_submodule(name)
        if not getattr(block, "has_skip", False) or not isinstance(
            getattr(block, "bn3", None), nn.BatchNorm2d
        ):
            raise ValueError(f"{name} is not a residual block ending in a BatchNorm: it cannot start silent")
    model.load_state_dict(dict(shallow), strict=False)
    for name in new:
        bn = model.get_submodule(name).bn3
        bn.weight.zero_()  # the block's branch is bn3(...) * 0 + 0: the block returns its input
        bn.bias.zero_()
    return new
