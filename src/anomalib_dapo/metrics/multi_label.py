"""Image-level multi-label defect-type metrics for DAPO eq. 11 (appendix 11.6): macro precision, recall and F1.

``pred_type_probs`` ``(B, K)`` holds P(d_k) = σ(sim(z^x, z^{D_k}) − sim(z^x, z^N)); type k is predicted where
P(d_k) > 0.5. The target of an image is the set of types present in its ``gt_type_mask`` (k present if any pixel
equals k), so a normal image has no label. Scores are macro-averaged over the types present in at least one
image of the evaluated set, the same absent-class rule as the pixel metrics (see ``multi_type``); ``compute``
also leaves ``per_class_scores`` ``(K,)`` for a per-type table.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from anomalib.metrics import AnomalibMetric
from torchmetrics import classification as tmc

from .multi_type import _MacroOverPresent


class _ImageTypeLabels(_MacroOverPresent):
    """Turn ``(B, H, W)`` type masks into ``(B, K)`` type-presence labels for torchmetrics' multilabel metrics.

    Args:
        num_labels: Number of defect types K (the width of ``pred_type_probs``).
        threshold: A type is predicted where its probability is strictly above it; 0.5 in the paper.
        **kwargs: Passed to the torchmetrics class.

    """

    default_fields: ClassVar[Sequence[str]] = ("pred_type_probs", "gt_type_mask")
    num_labels: int

    def __init__(self, num_labels: int, threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(num_labels=num_labels, threshold=threshold, **kwargs)

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add image-level probabilities ``preds`` ``(B, K)`` and pixel type masks ``target`` ``(B, H, W)``."""
        if preds.ndim != 2 or preds.shape[1] != self.num_labels or len(target) != len(preds):
            msg = (
                f"{type(self).__name__} expects probabilities (B, {self.num_labels}) and type masks (B, H, W), "
                f"got {tuple(preds.shape)} and {tuple(target.shape)}."
            )
            raise ValueError(msg)
        masks = target.reshape(len(target), -1).long()
        if masks.numel() and (masks.min() < 0 or masks.max() > self.num_labels):
            msg = f"Type mask values must lie in [0, {self.num_labels}]."
            raise ValueError(msg)
        # Mark every state seen in each image, then drop the normal column.
        present = masks.new_zeros(len(masks), self.num_labels + 1).scatter_(1, masks, 1)[:, 1:]
        super().update(preds, present)  # type: ignore[misc]


class MultiLabelPrecision(AnomalibMetric, _ImageTypeLabels, tmc.MultilabelPrecision):  # type: ignore[misc]
    """Image-level defect-type precision, macro over the types present in the ground truth (DAPO appendix 11.6).

    Args:
        num_labels: Number of defect types K.
        threshold: Decision threshold on ``pred_type_probs`` (default 0.5).
        fields: Batch fields, defaults to ``("pred_type_probs", "gt_type_mask")``.
        prefix: Prefix of the logged name.
        strict: Raise if a field is missing from a batch.

    """


class MultiLabelRecall(AnomalibMetric, _ImageTypeLabels, tmc.MultilabelRecall):  # type: ignore[misc]
    """Image-level defect-type recall, macro over the types present in the ground truth (DAPO appendix 11.6).

    Args: as :class:`MultiLabelPrecision`.
    """


class MultiLabelF1(AnomalibMetric, _ImageTypeLabels, tmc.MultilabelF1Score):  # type: ignore[misc]
    """Image-level defect-type F1, macro over the types present in the ground truth (DAPO appendix 11.6).

    Args: as :class:`MultiLabelPrecision`.
    """
