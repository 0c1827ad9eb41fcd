"""Multi-type anomaly segmentation metrics (pixel, DAPO §5.3) and image-level multi-label metrics (eq. 11)."""

from .multi_label import MultiLabelF1, MultiLabelPrecision, MultiLabelRecall
from .multi_type import (
    TypeAUROC,
    TypeAveragePrecision,
    TypeConfusionMatrix,
    TypeF1Score,
    mean_over_objects,
    per_type_scores,
    row_normalised,
)

__all__ = [
    "MultiLabelF1",
    "MultiLabelPrecision",
    "MultiLabelRecall",
    "TypeAUROC",
    "TypeAveragePrecision",
    "TypeConfusionMatrix",
    "TypeF1Score",
    "mean_over_objects",
    "per_type_scores",
    "row_normalised",
]
