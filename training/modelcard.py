"""The model card (README.md) written beside a trained PoseModel: data, method, metrics, citation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CITATION = """@inproceedings{gu2021removing,
  title     = {Removing the Bias of Integral Pose Regression},
  author    = {Gu, Kerui and Yang, Linlin and Yao, Angela},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2021}
}"""

METHOD_TEXT = {
    "none": "heatmap detection: pixel-wise MSE against Gaussian targets, arg-max decoding",
    "integral": "integral pose regression: L1 on the soft-argmax J_r",
    "debiased": "bias-compensated integral regression: L1 on the debiased estimate J_o",
}


def write_model_card(
    folder: Path, config: dict[str, Any], resolved: tuple[str, int, str], metrics: dict
) -> Path:
    """Write ``folder/README.md`` for a model trained with ``config`` and return its path.

    Args:
        folder: the PoseModel directory.
        config: the run's resolved config as a dict.
        resolved: ``(coord_loss, heatmap_epochs, decoder)`` from ``TrainConfig.resolved()``.
        metrics: the last line of the run's metrics.jsonl.
    """
    coord_loss, heatmap_epochs, decoder = resolved
    heatmap = {-1: "every epoch", 0: "never"}.get(heatmap_epochs, f"the first {heatmap_epochs} epochs")
    shown = {k: v for k, v in metrics.items() if k.startswith("val_") and v is not None}
    lines = [
        "---",
        "library_name: debias-pose",
        "tags: [pose-estimation, keypoint-detection, integral-regression]",
        "---",
        f"# {config['arch']} — {config['method']}",
        "",
        "A top-down 2D pose model trained with debias-pose "
        "(reference implementation of *Removing the Bias of Integral Pose Regression*, ICCV 2021).",
        "",
        "## Training",
        f"- method: `{config['method']}` — {METHOD_TEXT[coord_loss]}; heatmap MSE (L_aug) for {heatmap}",
        f"- decoder: `{decoder}`, beta {config['beta']}; input (H, W) {tuple(config['input_size'])}",
        f"- data: `{config['train_annotations']}` ({config['epochs']} epochs, batch {config['batch_size']}, "
        f"Adam lr {config['lr']})",
        "",
        "## Validation metrics (last epoch)",
        "```json",
        json.dumps(shown, indent=2),
        "```",
        "",
        "Load it with `pose.PoseModel.from_pretrained(path_or_repo_id)`.",
        "",
        "## Citation",
        "```bibtex",
        CITATION,
        "```",
    ]
    path = Path(folder) / "README.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
