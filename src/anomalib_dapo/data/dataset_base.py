"""Base classes of the typed datasets: items with an integer defect-type mask, and the vocabulary they index.

A typed dataset is an anomalib dataset whose ``samples`` frame has a ``defect_type`` column (the type
name of an anomalous image, ``""`` for a normal one) and which knows its ordered vocabulary
``defect_types``: type ``k`` of the mask is ``defect_types[k - 1]``. Where the mask on disk is binary
(MVTec-AD, MPDD, MAD, user folders), the type mask is "foreground = the image's type index"; datasets
whose masks hold several ids per image (VisA) use :class:`IndexedMaskMixin`.
"""

import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import ClassVar

import pandas as pd
import torch
from anomalib import TaskType
from anomalib.data.utils import LabelName
from scipy import ndimage
from torchvision.tv_tensors import Mask

from anomalib_dapo import knowledge
from anomalib_dapo.data.dataclasses import TypedImageBatch, TypedImageItem
from anomalib_dapo.data.errors import DatasetSource
from anomalib_dapo.data.images import image_size, read_binary_mask, read_index_mask, read_rgb_image
from anomalib_dapo.data.registry import source
from anomalib_dapo.knowledge import DatasetSpec

logger = logging.getLogger(__name__)

NORMAL_FOLDER = "good"


class MaskSizeError(ValueError):
    """A mask whose size differs from its image's (masks are never stretched to fit)."""


class TypedDatasetMixin:
    """Adds ``gt_type_mask`` to an anomalib image dataset; put it first among the bases.

    Subclasses set ``self.defect_types`` and a ``defect_type`` column in ``self.samples``; those reading a
    registry dataset name its ``spec``.
    """

    spec: ClassVar[DatasetSpec]
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
        return self.read_foreground(sample.mask_path)[0].long() * self.type_index(sample.defect_type)

    def read_foreground(self, mask_path: str) -> tuple[torch.Tensor, int]:
        """Defect pixels of a mask file and its count of stray pixels (see :func:`read_binary_mask`)."""
        return read_binary_mask(mask_path)

    def check_masks(self) -> None:
        """Read the mask of every anomalous image once, before any work; call it at the end of ``__init__``.

        Raises:
            MaskSizeError: A mask's size differs from its image's (both files and sizes named).
            ImageReadError: A mask cannot be read (named).

        Warns once per dataset about masks with stray values (binarised at half range) and about anomalous
        images whose mask is empty.

        """
        anomalous = self.samples[self.samples.label_index == LabelName.ABNORMAL]
        stray, empty = {}, []
        for image_path, mask_path in zip(anomalous.image_path, anomalous.mask_path, strict=True):
            if not isinstance(mask_path, str) or not mask_path:
                continue
            foreground, strays = self.read_foreground(mask_path)
            if (size := image_size(image_path)) != tuple(foreground.shape):
                msg = (
                    f"The mask {mask_path} is {foreground.shape[1]}×{foreground.shape[0]} pixels but its image "
                    f"{image_path} is {size[1]}×{size[0]}: masks are not stretched to fit. Save the mask at the "
                    "image's size."
                )
                raise MaskSizeError(msg)
            if strays:
                stray[mask_path] = strays
            if not foreground.any():
                empty.append(mask_path)
        if stray:
            example, pixels = next(iter(stray.items()))
            logger.warning(
                "%d of %d masks hold values other than 0 and 255 (e.g. %s: %d pixels; JPEG compression leaves such "
                "noise): binarised at half range, values of 128 and above being defect pixels.",
                len(stray),
                len(anomalous),
                example,
                pixels,
            )
        if empty:
            logger.warning(
                "%d anomalous images have an empty mask (no defect pixel), so they add no defect pixels to the "
                "pixel metrics: %s.",
                len(empty),
                ", ".join(empty),
            )

    def __getitem__(self, index: int) -> TypedImageItem:
        """Read image and type mask, and augment them together so the masks stay aligned."""
        sample = self.samples.iloc[index]
        image = read_rgb_image(sample.image_path)
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


def add_defect_types(samples: pd.DataFrame, dataset: str | DatasetSpec, raw_column: str = "label") -> tuple[str, ...]:
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


def check_vocabulary(found: Iterable[str], vocabulary: Sequence[str], where: Path | str) -> None:
    """Raise if a defect type present in the samples has no index in ``vocabulary``."""
    if unknown := sorted(set(found) - set(vocabulary)):
        msg = f"Defect types {unknown} of {where} are missing from the vocabulary {list(vocabulary)}."
        raise ValueError(msg)


def known_types(
    samples: pd.DataFrame,
    dataset: str | DatasetSpec,
    category: str,
    defect_types: Sequence[str] | None,
    where: Path,
    raw_column: str = "label",
) -> tuple[str, ...]:
    """Fill ``samples.defect_type`` from the knowledge base and return the vocabulary to index types with.

    Args:
        samples: Samples frame with ``label_index`` and the raw defect names in ``raw_column``.
        dataset: Registry dataset (name or spec).
        category: Product, for its default vocabulary.
        defect_types: Vocabulary to use instead of the product's (e.g. the union over a dataset).
        where: Folder the samples were read from, named by errors.
        raw_column: Column holding the raw defect names.

    """
    with source(dataset).reading(where):
        found = add_defect_types(samples, dataset, raw_column)
    vocabulary = tuple(defect_types) if defect_types else knowledge.vocabulary(dataset, category)
    check_vocabulary(found, vocabulary, where)
    return vocabulary


def require_files(paths: Iterable[str], source: DatasetSource, what: str) -> None:
    """Raise naming the first missing file, so a broken list file is reported by path."""
    paths = [path for path in paths if path]
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise source.not_found(Path(missing[0]), f"{what} ({len(missing)} of {len(paths)} missing)")


def clean_type_mask(types: torch.Tensor, foreground: torch.Tensor, allowed: Collection[int]) -> torch.Tensor | None:
    """Give each foreground pixel whose type is not ``allowed`` the type of the nearest allowed pixel.

    Stray ids sit on region boundaries (resampled masks); the region they border is their true type, and
    keeping them foreground keeps the binary mask identical to the dataset's. Returns ``None`` when no
    pixel carries an allowed type, for the caller to decide.
    """
    valid = foreground & torch.isin(types, torch.tensor(sorted(allowed), dtype=types.dtype))
    cleaned = torch.where(foreground, types, torch.zeros_like(types))
    stray = foreground & ~valid
    if not stray.any():
        return cleaned
    if not valid.any():
        return None
    # Every allowed pixel lies in the foreground, so the nearest one is inside the foreground's bounding box.
    rows, cols = foreground.nonzero(as_tuple=True)
    box = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
    nearest = ndimage.distance_transform_edt(~valid[box].numpy(), return_distances=False, return_indices=True)
    filled = cleaned[box][torch.from_numpy(nearest[0]), torch.from_numpy(nearest[1])]
    cleaned[box] = torch.where(stray[box], filled, cleaned[box])
    return cleaned


class IndexedMaskMixin(TypedDatasetMixin):
    """Type masks read from masks whose pixel values are ids, several types per image allowed.

    ``samples.defect_type`` lists the image's types comma-joined (its labels); pixels whose id maps to no
    listed type are cleaned by :func:`clean_type_mask`.
    """

    source: DatasetSource

    def mask_id_types(self, sample: pd.Series) -> dict[int, str]:
        """Defect type of each mask id of ``sample``."""
        raise NotImplementedError

    def read_foreground(self, mask_path: str) -> tuple[torch.Tensor, int]:
        """Defect pixels of an indexed mask: every id but 0 (ids are never stray values)."""
        return read_index_mask(mask_path, self.source) > 0, 0

    def read_type_mask(self, sample: pd.Series, image_shape: torch.Size) -> torch.Tensor | None:
        """Map mask ids to vocabulary indices, then clean ids that the image's labels do not list."""
        if sample.label_index == LabelName.NORMAL:
            return torch.zeros(image_shape, dtype=torch.int64)
        ids = read_index_mask(sample.mask_path, self.source)
        types = torch.full_like(ids, -1)
        for mask_id, name in self.mask_id_types(sample).items():
            if name in self.defect_types:
                types[ids == mask_id] = self.type_index(name)
        listed = [self.type_index(name) for name in sample.defect_type.split(",")]
        cleaned = clean_type_mask(types, ids > 0, listed)
        if cleaned is None:
            # Mask and labels disagree entirely: trust the labels, as for datasets with binary masks.
            cleaned = torch.where(ids > 0, listed[0], 0)
        return cleaned
