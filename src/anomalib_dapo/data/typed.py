"""Datasets whose items carry an integer defect-type mask, built on anomalib's own datasets.

A typed dataset is an anomalib dataset whose ``samples`` frame has a ``defect_type`` column (the type
name of an anomalous image, ``""`` for a normal one) and which knows its ordered vocabulary
``defect_types``: type ``k`` of the mask is ``defect_types[k - 1]``. Where the mask on disk is binary
(MVTec-AD, MPDD, MAD, user folders), the type mask is "foreground = the image's type index"; datasets
whose masks hold several ids per image (VisA) override :meth:`TypedDatasetMixin.read_type_mask`.
"""

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch
from anomalib import TaskType
from anomalib.data.datamodules.image.mvtecad import MVTecAD
from anomalib.data.datasets.image.mvtecad import MVTecADDataset
from anomalib.data.utils import LabelName, Split, read_image, read_mask
from torchvision.tv_tensors import Mask

from anomalib_dapo import knowledge
from anomalib_dapo.data.dataclasses import TypedImageBatch, TypedImageItem
from anomalib_dapo.data.errors import SOURCES

NORMAL_FOLDER = "good"


class TypedDatasetMixin:
    """Adds ``gt_type_mask`` to an anomalib image dataset; put it first among the bases.

    Subclasses set ``self.defect_types`` and a ``defect_type`` column in ``self.samples``.
    """

    defect_types: tuple[str, ...]
    samples: pd.DataFrame
    augmentations: Callable | None
    task: TaskType

    def type_index(self, defect_type: str) -> int:
        """Mask value of a defect type (1-based; 0 is normal)."""
        return self.defect_types.index(defect_type) + 1

    def read_type_mask(self, sample: pd.Series, image_shape: torch.Size) -> torch.Tensor | None:
        """Integer type mask of one sample: the binary mask on disk times the image's type index."""
        if sample.label_index == LabelName.NORMAL:
            return torch.zeros(image_shape, dtype=torch.int64)
        if not isinstance(sample.mask_path, str) or not sample.mask_path:
            return None
        return read_mask(sample.mask_path, as_tensor=True).long() * self.type_index(sample.defect_type)

    def __getitem__(self, index: int) -> TypedImageItem:
        """Read image and type mask, and augment them together so the masks stay aligned."""
        sample = self.samples.iloc[index]
        image = read_image(sample.image_path, as_tensor=True)
        type_mask = None
        if self.task == TaskType.SEGMENTATION:
            type_mask = self.read_type_mask(sample, image.shape[-2:])
        if self.augmentations:
            placeholder = torch.zeros(image.shape[-2:], dtype=torch.int64)
            image, augmented = self.augmentations(image, Mask(type_mask if type_mask is not None else placeholder))
            type_mask = augmented if type_mask is not None else None
        label = None if sample.label_index == LabelName.UNKNOWN else torch.tensor(sample.label_index)
        return TypedImageItem(
            image=image,
            gt_label=label,
            gt_mask=None if type_mask is None else type_mask > 0,
            gt_type_mask=type_mask,
            image_path=sample.image_path,
            mask_path=sample.mask_path,
        )

    @property
    def collate_fn(self) -> Callable:
        """Collate into :class:`TypedImageBatch`."""
        return TypedImageBatch.collate


def add_defect_types(samples: pd.DataFrame, dataset: str, raw_column: str = "label") -> tuple[str, ...]:
    """Fill ``samples.defect_type`` from the raw defect names through the knowledge base.

    Returns the vocabulary of the product in knowledge-base order, restricted to what the samples show
    plus what the product can show, so that type ids stay stable across splits of one category.
    """
    anomalous = samples.label_index == LabelName.ABNORMAL
    samples["defect_type"] = ""
    samples.loc[anomalous, "defect_type"] = samples.loc[anomalous, raw_column].map(
        lambda raw: knowledge.defect_type(dataset, raw),
    )
    return tuple(dict.fromkeys(samples.loc[anomalous, "defect_type"]))


class TypedMVTecADDataset(TypedDatasetMixin, MVTecADDataset):
    """anomalib's MVTec-AD dataset with per-pixel defect types from the ``test/<defect>/`` folders.

    Also serves every dataset laid out like MVTec-AD (MPDD, the built-in synthetic set): pass
    ``dataset`` to pick the knowledge-base entry that maps its folder names to types.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        category: str = "bottle",
        augmentations: Callable | None = None,
        split: str | Split | None = None,
        dataset: str = "mvtec_ad",
        defect_types: Sequence[str] | None = None,
    ) -> None:
        super().__init__(root=root, category=category, augmentations=augmentations, split=split)
        self.dataset = knowledge.resolve_dataset(dataset)
        found = add_defect_types(self.samples, self.dataset)
        self.defect_types = tuple(defect_types) if defect_types else knowledge.vocabulary(self.dataset, category)
        if unknown := set(found) - set(self.defect_types):
            msg = f"Defect types {sorted(unknown)} of {self.root_category} are missing from the vocabulary."
            raise ValueError(msg)


class TypedMVTecAD(MVTecAD):
    """anomalib's MVTecAD datamodule whose items carry ``gt_type_mask`` (same arguments as ``MVTecAD``)."""

    dataset: str = "mvtec_ad"

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Ordered vocabulary of the category (type ``k`` of the masks is ``defect_types[k - 1]``)."""
        return knowledge.vocabulary(self.dataset, self.category)

    def prepare_data(self) -> None:
        """Check the category folder instead of downloading (offline, anomalib's download raises a raw URLError)."""
        SOURCES[self.dataset].require(self.root / self.category, f"category {self.category!r}")

    def _setup(self, _stage: str | None = None) -> None:
        self.train_data = TypedMVTecADDataset(
            split=Split.TRAIN,
            root=self.root,
            category=self.category,
            dataset=self.dataset,
        )
        self.test_data = TypedMVTecADDataset(
            split=Split.TEST,
            root=self.root,
            category=self.category,
            dataset=self.dataset,
        )
