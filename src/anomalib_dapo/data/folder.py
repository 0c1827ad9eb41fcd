"""Folder-per-defect datasets: the shared folder scanner and the user's own data (``DefectFolder``).

anomalib's MVTec-style builders pair images with masks by sorting both lists, which mis-pairs files whose
numbers are not zero-padded (``10.png`` sorts after ``1.png`` but ``10_mask.png`` before ``1_mask.png``).
:func:`scan_defect_folders` pairs them by stem instead, and accepts masks named ``<stem>_mask.png`` or
``<stem>.png``.
"""

import copy
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pandas as pd
import torch
from anomalib.data.datamodules.base.image import AnomalibDataModule
from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.utils import LabelName, Split, TestSplitMode, ValSplitMode
from anomalib.data.utils.image import is_image_file
from lightning.pytorch.utilities.types import EVAL_DATALOADERS
from torchvision.transforms.v2 import Transform

from anomalib_dapo.data.dataset_base import NORMAL_FOLDER, IndexedMaskMixin, TypedDatasetMixin, check_vocabulary
from anomalib_dapo.data.errors import DatasetSource
from anomalib_dapo.data.images import read_index_mask

SAMPLE_COLUMNS = ("split", "label", "image_path", "mask_path", "label_index")
MASK_SUFFIX = "_mask"
SPLIT_FOLDERS = frozenset(split.value for split in Split) | {"validation"}
SOURCE = DatasetSource(
    name="Defect folder",
    default_dir="custom",
    layout="""
<root>/good/*.png                              (normal images)
<root>/<defect>/*.png                          (one folder per defect type)
<mask_root>/<defect>/<stem>.png or <stem>_mask.png  (binary, or indexed with mask_ids)
""",
    obtain="your own images, sorted into these folders",
)


def dataset_name(root: Path) -> str:
    """Name of a defect folder's dataset: the folder's, or its parent's for a split folder (``<parts>/test``).

    It names the run (``results/<model>/DefectFolder/<name>/``), so runs on different datasets stay apart.
    """
    root = root.resolve()
    return root.parent.name if root.name.lower() in SPLIT_FOLDERS else root.name


def _images(folder: Path) -> list[Path]:
    """The image files of a folder, as anomalib's folder datasets recognise them (extension, any case)."""
    return sorted(path for path in folder.iterdir() if path.is_file() and is_image_file(path))


def _masks_by_stem(folder: Path) -> dict[str, Path]:
    """Masks of a folder keyed by the stem of the image they belong to."""
    return {path.stem.removesuffix(MASK_SUFFIX): path for path in _images(folder)}


def scan_defect_folders(
    image_root: Path,
    mask_root: Path,
    split: str,
    source: DatasetSource,
    normal_folder: str = NORMAL_FOLDER,
    skip: Collection[str] = (),
) -> list[dict]:
    """Sample rows of ``<image_root>/<label>/<image>``; anomalous ones get ``<mask_root>/<label>/<stem>[_mask].*``.

    Args:
        image_root: Folder holding one sub-folder per label.
        mask_root: Folder holding one mask sub-folder per defect label.
        split: Value of the rows' ``split`` column.
        source: Dataset description for error messages.
        normal_folder: Label of the normal images.
        skip: Sub-folders of ``image_root`` that hold no images (e.g. the mask folder); hidden ones are skipped too.

    Raises:
        DatasetNotFoundError: A defect folder has no mask folder.
        DatasetLayoutError: An anomalous image has no mask.

    """
    rows = []
    folders = (path for path in image_root.iterdir() if path.is_dir() and path.name not in skip)
    for folder in sorted(folder for folder in folders if not folder.name.startswith(".")):
        normal = folder.name == normal_folder
        masks = {} if normal else _masks_by_stem(source.require(mask_root / folder.name, "mask folder"))
        for image in _images(folder):
            mask = "" if normal else masks.get(image.stem)
            if mask is None:
                problem = f"no mask for {image.name}: expected {image.stem}{MASK_SUFFIX}.png or {image.stem}.png"
                raise source.bad_layout(mask_root / folder.name, problem)
            rows.append(
                {
                    "split": split,
                    "label": folder.name,
                    "image_path": str(image),
                    "mask_path": str(mask),
                    "label_index": int(LabelName.NORMAL if normal else LabelName.ABNORMAL),
                },
            )
    return rows


def is_mvtec_category(root: Path, normal_folder: str = NORMAL_FOLDER) -> bool:
    """Whether ``root`` is one category in MVTec-AD's layout rather than a folder of defect folders."""
    return not (root / normal_folder).is_dir() and (root / "test").is_dir() and (root / "ground_truth").is_dir()


def to_samples(rows: Sequence[dict]) -> pd.DataFrame:
    """Build the samples frame of the rows (columns kept when empty); every image has a (possibly empty) mask."""
    samples = pd.DataFrame(list(rows), columns=list(SAMPLE_COLUMNS))
    samples.attrs["task"] = "segmentation"
    return samples


class DefectFolderDataset(IndexedMaskMixin, AnomalibDataset):
    """The user's own labelled images, one folder per defect type, as a typed dataset.

    Layout: ``<root>/good/*`` (normal), ``<root>/<defect>/*`` and masks ``<mask_root>/<defect>/<stem>[_mask].png``;
    or one category of MVTec-AD's layout (``<root>/test/{good,<defect>}``, ``<root>/ground_truth/<defect>``),
    whose test images are then the set.

    - Binary masks (default): the type of an image is its folder name; the vocabulary is the folder names,
      sorted, ``good`` excluded.
    - Indexed masks (``mask_ids``, e.g. palette PNGs): pixel value ``v`` is type ``mask_ids[v]`` and an image may
      show several types; folder names are then only for sorting. The vocabulary is ``mask_ids``' names in id
      order. Ids missing from ``mask_ids`` on region edges take the nearest known id.

    Every image is in the ``test`` split: the set is labelled evaluation (or DAPO training) data.

    Args:
        root: Folder holding ``good/`` and the defect folders.
        mask_root: Folder holding the mask folders. Defaults to ``<root>/ground_truth``.
        mask_ids: Name of each mask pixel value, for indexed masks.
        normal_folder: Name of the folder of normal images.
        augmentations: Augmentations applied to image and type mask together.
        defect_types: Vocabulary to index the types with (default: see above).

    """

    def __init__(
        self,
        root: str | Path,
        mask_root: str | Path | None = None,
        mask_ids: Mapping[int, str] | None = None,
        normal_folder: str = NORMAL_FOLDER,
        augmentations: Transform | None = None,
        defect_types: Sequence[str] | None = None,
    ) -> None:
        super().__init__(augmentations=augmentations)
        self.source = SOURCE
        self.root = self.source.require(Path(root), "folder")
        images = self.root
        if mask_root is None and is_mvtec_category(self.root, normal_folder):
            images, mask_root = self.root / "test", self.root / "ground_truth"
        self.mask_root = Path(mask_root) if mask_root is not None else self.root / "ground_truth"
        self.mask_ids = {int(mask_id): name for mask_id, name in mask_ids.items()} if mask_ids else None
        self.category = dataset_name(self.root)
        skip = {self.mask_root.name} if self.mask_root.parent == images else set()
        rows = scan_defect_folders(images, self.mask_root, Split.TEST.value, self.source, normal_folder, skip)
        samples = to_samples(rows)
        if samples.empty:
            raise self.source.bad_layout(self.root, "no images found")
        anomalous = samples.label_index == LabelName.ABNORMAL
        samples["defect_type"] = ""
        if self.mask_ids is None:
            samples.loc[anomalous, "defect_type"] = samples.loc[anomalous, "label"]
            default = tuple(sorted(set(samples.loc[anomalous, "label"])))
        else:
            samples.loc[anomalous, "defect_type"] = samples.loc[anomalous, "mask_path"].map(
                lambda path: self._listed_types(path, self.mask_ids),
            )
            default = tuple(dict.fromkeys(self.mask_ids[mask_id] for mask_id in sorted(self.mask_ids)))
        self.defect_types = tuple(defect_types) if defect_types else default
        found = {name for listed in samples.loc[anomalous, "defect_type"] for name in listed.split(",")}
        check_vocabulary(found, self.defect_types, self.root)
        self.samples = samples
        self.check_masks()

    def _listed_types(self, mask_path: str, mask_ids: Mapping[int, str]) -> str:
        """Comma-joined types whose ids appear in an indexed mask (read once, so bad masks fail early)."""
        ids = read_index_mask(mask_path, self.source).unique().tolist()
        names = dict.fromkeys(mask_ids[mask_id] for mask_id in ids if mask_id in mask_ids)
        if not names:
            problem = f"mask ids {[i for i in ids if i]} are none of mask_ids {sorted(mask_ids)}"
            raise self.source.bad_layout(Path(mask_path), problem)
        return ",".join(names)

    def mask_id_types(self, _sample: pd.Series) -> dict[int, str]:
        """Types of the ids of indexed masks."""
        return self.mask_ids or {}

    def read_foreground(self, mask_path: str) -> tuple[torch.Tensor, int]:
        """Binary masks as in :class:`TypedDatasetMixin`, indexed ones as in :class:`IndexedMaskMixin`."""
        if self.mask_ids is None:
            return TypedDatasetMixin.read_foreground(self, mask_path)
        return super().read_foreground(mask_path)

    def read_type_mask(self, sample: pd.Series, image_shape: torch.Size) -> torch.Tensor | None:
        """Binary masks: foreground is the folder's type; indexed masks: ids mapped through ``mask_ids``."""
        if self.mask_ids is None:
            return TypedDatasetMixin.read_type_mask(self, sample, image_shape)
        return super().read_type_mask(sample, image_shape)


class DefectFolder(AnomalibDataModule):
    """Datamodule of a :class:`DefectFolderDataset`: one labelled set serves as train, val and test data.

    Use it to test a trained DAPO on your own data (``anomalib test --data anomalib_dapo.data.DefectFolder``), or
    to fine-tune on it; for a held-out evaluation train on another dataset with ``CrossDataset`` (which takes a
    ``DefectFolder`` as source or target). The run is named after the dataset folder (:func:`dataset_name`).

    Args:
        root: Folder holding ``good/`` and one folder per defect type, or one category in MVTec-AD's layout.
        mask_root: Folder holding the mask folders. Defaults to ``<root>/ground_truth``.
        mask_ids: Name of each mask pixel value, for indexed (palette) masks.
        normal_folder: Name of the folder of normal images.
        train_batch_size: Training batch size.
        eval_batch_size: Validation and test batch size.
        num_workers: Dataloader workers.
        train_augmentations: Augmentations of the training images.
        val_augmentations: Augmentations of the validation images.
        test_augmentations: Augmentations of the test images.
        augmentations: Augmentations of every split without its own.
        val_split_mode: How the validation set is made (default: the test set).
        val_split_ratio: Fraction of the test set used for validation with ``from_test``.
        seed: Seed of the random splits.

    """

    def __init__(
        self,
        root: str | Path,
        mask_root: str | Path | None = None,
        mask_ids: dict[int, str] | None = None,
        normal_folder: str = NORMAL_FOLDER,
        train_batch_size: int = 8,
        eval_batch_size: int = 8,
        num_workers: int = 0,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        val_split_mode: ValSplitMode | str = ValSplitMode.SAME_AS_TEST,
        val_split_ratio: float = 0.5,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=TestSplitMode.FROM_DIR,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )
        self.root = Path(root)
        self.mask_root = mask_root
        self.mask_ids = mask_ids
        self.normal_folder = normal_folder
        self.category = dataset_name(self.root)

    def _dataset(self) -> DefectFolderDataset:
        return DefectFolderDataset(self.root, self.mask_root, self.mask_ids, self.normal_folder)

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Ordered vocabulary of the folder (type ``k`` of the masks is ``defect_types[k - 1]``)."""
        return (self.test_data if hasattr(self, "test_data") else self._dataset()).defect_types

    @property
    def dataset_defect_types(self) -> tuple[str, ...]:
        """The folder is the whole dataset: its own vocabulary."""
        return self.defect_types

    def prepare_data(self) -> None:
        """Check that the folder exists (nothing is downloaded)."""
        SOURCE.require(self.root, "folder")

    def val_dataloader(self) -> EVAL_DATALOADERS:
        """The validation data; none with ``val_split_mode none``: a zero-shot model keeps its weights' calibration.

        (anomalib's datamodule has no validation set then, and its loader failed with an ``AttributeError``.)
        """
        if self.val_split_mode == ValSplitMode.NONE:
            return []
        return super().val_dataloader()

    def _setup(self, _stage: str | None = None) -> None:
        self.train_data = self._dataset()
        self.test_data = copy.deepcopy(self.train_data)
