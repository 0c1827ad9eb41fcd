"""Datasets whose items carry an integer defect-type mask, built on anomalib's own datasets.

A typed dataset is an anomalib dataset whose ``samples`` frame has a ``defect_type`` column (the type
name of an anomalous image, ``""`` for a normal one) and which knows its ordered vocabulary
``defect_types``: type ``k`` of the mask is ``defect_types[k - 1]``. Where the mask on disk is binary
(MVTec-AD, MPDD, MAD, user folders), the type mask is "foreground = the image's type index"; datasets
whose masks hold several ids per image (VisA) override :meth:`TypedDatasetMixin.read_type_mask`.
"""

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from anomalib import TaskType
from anomalib.data import ImageItem, PredictDataset
from anomalib.data.datamodules.image.mvtecad import MVTecAD
from anomalib.data.datasets.image.mvtecad import MVTecADDataset
from anomalib.data.errors import MisMatchError
from anomalib.data.utils import LabelName, Split
from PIL import Image as PILImage
from torchvision.transforms.v2.functional import to_dtype, to_image
from torchvision.tv_tensors import Image, Mask

from anomalib_dapo import knowledge
from anomalib_dapo.data.dataclasses import TypedImageBatch, TypedImageItem
from anomalib_dapo.data.errors import SOURCES

logger = logging.getLogger(__name__)

NORMAL_FOLDER = "good"
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""PIL modes of single-channel 16-bit images (``I`` is how some Pillow versions open 16-bit PNGs)."""


class ImageReadError(OSError):
    """An image file cannot be read, or holds values that are not an image's (the message names the file)."""


class MaskSizeError(ValueError):
    """A mask whose size differs from its image's (masks are never stretched to fit)."""


@contextmanager
def named_read_errors(path: str | Path, what: str = "image") -> Iterator[None]:
    """Turn the errors of reading ``path`` (missing, corrupt, truncated, not an image) into a named ImageReadError."""
    try:
        yield
    except ImageReadError:
        raise
    except FileNotFoundError as error:
        msg = f"{what.capitalize()} file not found: {path}"
        raise ImageReadError(msg) from error
    except (OSError, ValueError) as error:  # PIL's UnidentifiedImageError and truncation errors are OSErrors
        msg = f"Cannot read {what} {path} ({error}): it is corrupt, truncated or not an image; replace or remove it."
        raise ImageReadError(msg) from error


def _unit_range(path: str | Path, array: np.ndarray, mode: str) -> np.ndarray:
    """Scale a 16-bit or float single-channel image to [0, 1], refusing values that are not pixel intensities."""
    if mode in SIXTEEN_BIT_MODES:
        if array.min() < 0 or array.max() > np.iinfo(np.uint16).max:
            msg = f"{path}: a {mode} image with values outside 0..65535 is not supported; save it as 8 or 16 bit."
            raise ImageReadError(msg)
        return array / np.iinfo(np.uint16).max
    if not np.isfinite(array).all():
        msg = f"{path}: the float image holds NaN or infinite values; fix or remove the file."
        raise ImageReadError(msg)
    if array.min() < 0 or array.max() > 1:
        msg = f"{path}: float images must hold values in [0, 1], found [{array.min():g}, {array.max():g}]."
        raise ImageReadError(msg)
    return array


def read_rgb_image(path: str | Path) -> Image:
    """Read any image file as a float32 RGB tensor ``(3, H, W)`` in [0, 1].

    anomalib's ``read_image`` goes through 8-bit RGB, which clips 16-bit grayscale (PIL mode ``I;16``) to white.
    Here 16-bit grayscale is scaled by 1/65535 and float (``F``) images are taken as [0, 1]; every other mode
    goes through PIL's RGB conversion as in anomalib: grayscale replicated, palette expanded, alpha dropped,
    16-bit RGB reduced to 8 bits per channel.

    Raises:
        ImageReadError: The file is missing, corrupt, truncated or not an image, or its values are not
            intensities (NaN, infinite, out of range); the message names the file.

    """
    with named_read_errors(path), PILImage.open(path) as image:
        return pil_to_rgb(image, path)


def pil_to_rgb(image: PILImage.Image, source: str | Path) -> Image:
    """A PIL image as :func:`read_rgb_image` reads it (``source`` names it in errors)."""
    if image.mode not in (*SIXTEEN_BIT_MODES, "F"):
        return to_dtype(to_image(image.convert("RGB")), torch.float32, scale=True)
    array = _unit_range(source, np.asarray(image, dtype=np.float64), image.mode)
    return Image(torch.from_numpy(array.astype(np.float32)).expand(3, -1, -1).clone())


def read_binary_mask(path: str | Path) -> tuple[torch.Tensor, int]:
    """A binary mask ``(H, W)`` bool, foreground at half range and above, and its count of stray pixels.

    Masks hold 0 and 255 (or 0 and 1). A JPEG-compressed one also holds values near both (1–3 in the background):
    anomalib's reader takes every value above 0 as foreground, here values of at least half the range (128) are.
    Stray pixels are those of neither level.

    Raises:
        ImageReadError: The file is missing, corrupt or truncated (the message names it).

    """
    with named_read_errors(path, "mask"), PILImage.open(path) as image:
        values = np.asarray(image.convert("L"))
    full = 1 if values.max() <= 1 else 255
    stray = int(np.count_nonzero((values != 0) & (values != full)))
    return torch.from_numpy(values.astype(np.int64) * 2 > full), stray


def image_size(path: str | Path) -> tuple[int, int]:
    """``(H, W)`` of an image file, from its header."""
    with named_read_errors(path), PILImage.open(path) as image:
        return image.height, image.width


class FolderImages(PredictDataset):
    """anomalib's ``PredictDataset`` (``anomalib predict --data <folder>``) reading images with :func:`read_rgb_image`.

    ``Dapo`` switches the ``PredictDataset`` that anomalib's engine builds for a folder to this class, so that
    16-bit images are scaled rather than clipped and an unreadable file is named.
    """

    def __getitem__(self, index: int) -> ImageItem:
        """Read one image (any mode and size) and apply the dataset's transform."""
        path = self.image_filenames[index]
        image = read_rgb_image(path)
        return ImageItem(image=self.transform(image) if self.transform else image, image_path=str(path))


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


def _pairing_problems(category_dir: Path) -> str:
    """Anomalous test images without a mask and masks without an image (MVTec-AD pairs them by name)."""
    images = {f"{p.parent.name}/{p.stem}" for p in category_dir.glob("test/*/*") if p.parent.name != NORMAL_FOLDER}
    masks = {f"{p.parent.name}/{p.stem.removesuffix('_mask')}" for p in category_dir.glob("ground_truth/*/*")}
    unpaired = {"test images without a mask": images - masks, "masks without a test image": masks - images}
    problems = [f"{what} ({len(names)}): {', '.join(sorted(names)[:5])}" for what, names in unpaired.items() if names]
    if not images | masks:
        problems.append("no test images and no masks")
    return "; ".join(problems)


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
        self.dataset = knowledge.resolve_dataset(dataset)
        source = SOURCES[self.dataset]
        source.readable_path(Path(root or "./datasets/MVTecAD"), Path(root or "./datasets/MVTecAD") / category)
        try:
            super().__init__(root=root, category=category, augmentations=augmentations, split=split)
        except (RuntimeError, ValueError, MisMatchError) as error:  # anomalib's raw "Found 0 images" or pandas error
            where = Path(root or "./datasets/MVTecAD") / category
            raise source.bad_layout(where, _pairing_problems(where) or str(error)) from error
        with source.reading(self.root_category):  # an unknown defect folder names the folder
            found = add_defect_types(self.samples, self.dataset)
        self.defect_types = tuple(defect_types) if defect_types else knowledge.vocabulary(self.dataset, category)
        if unknown := set(found) - set(self.defect_types):
            msg = f"Defect types {sorted(unknown)} of {self.root_category} are missing from the vocabulary."
            raise ValueError(msg)
        self.check_masks()


class TypedMVTecAD(MVTecAD):
    """anomalib's MVTecAD datamodule whose items carry ``gt_type_mask`` (same arguments as ``MVTecAD``)."""

    dataset: str = "mvtec_ad"

    @property
    def category(self) -> str:
        """The category (product), one the dataset has: an unknown one fails when the datamodule is made."""
        return self._category

    @category.setter
    def category(self, category: str) -> None:
        knowledge.vocabulary(self.dataset, category)  # names the known categories, and DefectFolder for others
        self._category = category

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Ordered vocabulary of the category (type ``k`` of the masks is ``defect_types[k - 1]``)."""
        return knowledge.vocabulary(self.dataset, self.category)

    @property
    def dataset_defect_types(self) -> tuple[str, ...]:
        """Every defect type of the dataset: what a model scores without product filtering (MultiADS)."""
        return knowledge.vocabulary(self.dataset)

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
