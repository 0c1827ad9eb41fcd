"""MPDD with per-pixel defect types: anomalib's MPDD dataset and datamodule, typed by test folder."""

from collections.abc import Sequence
from pathlib import Path

from anomalib.data.datamodules.image.mpdd import MPDD
from anomalib.data.datasets.image.mpdd import MPDDDataset
from anomalib.data.utils import Split
from anomalib.utils.path import resolve_dataset_root
from torchvision.transforms.v2 import Transform

from anomalib_dapo import knowledge
from anomalib_dapo.data.common import known_types
from anomalib_dapo.data.errors import SOURCES
from anomalib_dapo.data.typed import TypedDatasetMixin

SOURCE = SOURCES["mpdd"]


class TypedMPDDDataset(TypedDatasetMixin, MPDDDataset):
    """anomalib's MPDD dataset whose items carry ``gt_type_mask`` (type = ``test/<defect>/`` folder).

    Args:
        root: Dataset root holding one folder per category.
        category: Category, e.g. ``tubes``.
        augmentations: Augmentations applied to image and type mask together.
        split: ``train``, ``test`` or ``None`` for both.
        defect_types: Vocabulary to index the types with (default: the category's types in the knowledge base).

    """

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
        self.defect_types = known_types(self.samples, "mpdd", category, defect_types, self.root_category)


class TypedMPDD(MPDD):
    """anomalib's MPDD datamodule whose items carry ``gt_type_mask`` (same arguments as ``MPDD``)."""

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Ordered vocabulary of the category (type ``k`` of the masks is ``defect_types[k - 1]``)."""
        return knowledge.vocabulary("mpdd", self.category)

    def prepare_data(self) -> None:
        """Check the category folder, with the expected layout in the error (nothing is downloaded)."""
        SOURCE.require(self.root / self.category, f"category {self.category!r}")

    def _setup(self, _stage: str | None = None) -> None:
        self.train_data = TypedMPDDDataset(root=self.root, category=self.category, split=Split.TRAIN)
        self.test_data = TypedMPDDDataset(root=self.root, category=self.category, split=Split.TEST)
