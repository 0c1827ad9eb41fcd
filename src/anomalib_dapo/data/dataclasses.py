"""Items and batches that carry per-pixel defect types beside anomalib's binary fields.

anomalib validates ``gt_mask`` to a boolean mask, so the integer type mask needs fields of its own.
Every class here extends its anomalib counterpart, so anomalib's collate, device transfer, metrics,
callbacks and ``to_numpy`` keep working, and the extra fields travel with them:

- ``gt_type_mask``: ``(H, W)`` int64, 0 = normal, ``k`` = the ``k``-th type of the vocabulary;
- ``pred_type_map``: ``(K + 1, H, W)`` float, per-pixel probability of each state (normal first);
- ``pred_type_mask``: ``(H, W)`` int64, argmax of ``pred_type_map``;
- ``pred_type_probs``: ``(K,)`` float, image-level multi-label defect probabilities (eq. 11).
"""

from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from anomalib.data.dataclasses.generic import FieldDescriptor
from anomalib.data.dataclasses.numpy.image import NumpyImageBatch, NumpyImageItem
from anomalib.data.dataclasses.torch.image import ImageBatch, ImageItem
from torchvision.tv_tensors import Mask


class TypedInferenceBatch(NamedTuple):
    """Model output: anomalib's four inference fields plus the defect-type outputs."""

    pred_score: torch.Tensor | None = None
    pred_label: torch.Tensor | None = None
    anomaly_map: torch.Tensor | None = None
    pred_mask: torch.Tensor | None = None
    pred_type_map: torch.Tensor | None = None
    pred_type_mask: torch.Tensor | None = None
    pred_type_probs: torch.Tensor | None = None


def _as_type_mask(value: torch.Tensor | np.ndarray | None, ndim: int) -> torch.Tensor | np.ndarray | None:
    """Check an integer type mask and drop a singleton channel axis."""
    if value is None:
        return None
    if value.ndim == ndim + 1 and value.shape[-3] == 1:
        value = value[..., 0, :, :]
    if value.ndim != ndim:
        msg = f"A defect-type mask must have {ndim} dimensions, got shape {tuple(value.shape)}."
        raise ValueError(msg)
    if isinstance(value, np.ndarray):
        return value.astype(np.int64)
    return Mask(value.long())


def _as_float(value: torch.Tensor | np.ndarray | None, ndim: int, name: str) -> torch.Tensor | np.ndarray | None:
    if value is None:
        return None
    if value.ndim != ndim:
        msg = f"'{name}' must have {ndim} dimensions, got shape {tuple(value.shape)}."
        raise ValueError(msg)
    return value.astype(np.float32) if isinstance(value, np.ndarray) else value.float()


@dataclass
class _TypeFields:
    """Field descriptors and validators shared by the item and batch classes (``_batch_dims`` is 0 or 1)."""

    _batch_dims: ClassVar[int] = 0
    gt_type_mask: FieldDescriptor[torch.Tensor | None] = FieldDescriptor(validator_name="validate_gt_type_mask")
    pred_type_map: FieldDescriptor[torch.Tensor | None] = FieldDescriptor(validator_name="validate_pred_type_map")
    pred_type_mask: FieldDescriptor[torch.Tensor | None] = FieldDescriptor(validator_name="validate_pred_type_mask")
    pred_type_probs: FieldDescriptor[torch.Tensor | None] = FieldDescriptor(validator_name="validate_pred_type_probs")

    def validate_gt_type_mask(self, value: torch.Tensor | None) -> torch.Tensor | None:
        return _as_type_mask(value, 2 + self._batch_dims)

    def validate_pred_type_mask(self, value: torch.Tensor | None) -> torch.Tensor | None:
        return _as_type_mask(value, 2 + self._batch_dims)

    def validate_pred_type_map(self, value: torch.Tensor | None) -> torch.Tensor | None:
        return _as_float(value, 3 + self._batch_dims, "pred_type_map")

    def validate_pred_type_probs(self, value: torch.Tensor | None) -> torch.Tensor | None:
        return _as_float(value, 1 + self._batch_dims, "pred_type_probs")


@dataclass
class NumpyTypedImageItem(_TypeFields, NumpyImageItem):
    """Numpy image item with defect-type fields."""


@dataclass
class NumpyTypedImageBatch(_TypeFields, NumpyImageBatch):
    """Numpy image batch with defect-type fields."""

    _batch_dims: ClassVar[int] = 1
    item_class: ClassVar[type[NumpyImageItem]] = NumpyTypedImageItem


@dataclass
class TypedImageItem(_TypeFields, ImageItem):
    """Torch image item with defect-type fields."""

    numpy_class: ClassVar[type[NumpyImageItem]] = NumpyTypedImageItem


@dataclass
class TypedImageBatch(_TypeFields, ImageBatch):
    """Torch image batch with defect-type fields; ``collate`` of :class:`TypedImageItem` gives one."""

    _batch_dims: ClassVar[int] = 1
    item_class: ClassVar[type[ImageItem]] = TypedImageItem
    numpy_class: ClassVar[type[NumpyImageBatch]] = NumpyTypedImageBatch

    @classmethod
    def from_batch(cls, batch: ImageBatch) -> "TypedImageBatch":
        """Return ``batch`` itself if it is typed, else a typed copy of its fields (stock datamodules)."""
        if isinstance(batch, cls):
            return batch
        return cls(**{name: getattr(batch, name) for name in batch.keys(include_none=False)})
