"""MPDD with per-pixel defect types: anomalib's MPDD dataset and datamodule, typed by test folder."""

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from anomalib.data.datamodules.image.mpdd import MPDD
from anomalib.data.datasets.image.mpdd import MPDDDataset
from anomalib.data.utils import Split
from anomalib.utils.path import resolve_dataset_root
from torchvision.transforms.v2 import Transform

from anomalib_dapo.data.datamodule_base import TypedDataModule
from anomalib_dapo.data.dataset_base import TypedDatasetMixin, known_types
from anomalib_dapo.data.registry import source
from anomalib_dapo.knowledge import DatasetSpec
from anomalib_dapo.knowledge.datasets import MPDD as SPEC

SOURCE = source(SPEC)


class TypedMPDDDataset(TypedDatasetMixin, MPDDDataset):
    """anomalib's MPDD dataset whose items carry ``gt_type_mask`` (type = ``test/<defect>/`` folder).

    Args:
        root: Dataset root holding one folder per category.
        category: Category, e.g. ``tubes``.
        augmentations: Augmentations applied to image and type mask together.
        split: ``train``, ``test`` or ``None`` for both.
        defect_types: Vocabulary to index the types with (default: the category's types in the knowledge base).

    """

    spec: ClassVar[DatasetSpec] = SPEC

    def __init__(
        self,
        root: Path | str | None = None,
        category: str = "bracket_black",
        augmentations: Transform | None = None,
        split: str | Split | None = None,
        defect_types: Sequence[str] | None = None,
    ) -> None:
        root = resolve_dataset_root(root, SOURCE.default_dir)
        SOURCE.require(root / category, f"category {category!r}")
        SOURCE.readable_path(root, root / category)
        super().__init__(root=root, category=category, augmentations=augmentations, split=split)
        self.defect_types = known_types(self.samples, SPEC, category, defect_types, self.root_category)
        self.check_masks()


class TypedMPDD(TypedDataModule, MPDD):
    """anomalib's MPDD datamodule whose items carry ``gt_type_mask`` (same arguments as ``MPDD``)."""

    spec: ClassVar[DatasetSpec] = SPEC
