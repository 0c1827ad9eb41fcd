"""The base of the typed datamodules: what a datamodule of a registry dataset knows from its spec alone."""

from pathlib import Path
from typing import Any, ClassVar

from anomalib.data.utils import Split

from anomalib_dapo import knowledge
from anomalib_dapo.data.registry import dataset_class, require_category
from anomalib_dapo.knowledge import DatasetSpec


class TypedDataModule:
    """A datamodule of a registry dataset whose items carry ``gt_type_mask``; put it first among the bases.

    It gives the vocabularies, checks the category folder instead of downloading (offline, anomalib's
    download raises a raw ``URLError``) and sets up train and test splits of the spec's typed dataset.
    Subclasses set ``spec`` and, beside anomalib's datamodule, ``root`` and ``category``.
    """

    spec: ClassVar[DatasetSpec]
    root: Path
    category: str

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Ordered vocabulary of the category (type ``k`` of the masks is ``defect_types[k - 1]``)."""
        return knowledge.vocabulary(self.spec, self.category)

    @property
    def dataset_defect_types(self) -> tuple[str, ...]:
        """Every defect type of the dataset: what a model scores without product filtering (MultiADS)."""
        return knowledge.vocabulary(self.spec)

    def dataset_options(self) -> dict[str, Any]:
        """Arguments of the typed dataset beyond ``root, category, split`` (e.g. Real-IAD's resolution)."""
        return {}

    def prepare_data(self) -> None:
        """Check the category folder, with the expected layout in the error (nothing is downloaded)."""
        require_category(self.spec, self.root, self.category)

    def _setup(self, _stage: str | None = None) -> None:
        dataset = dataset_class(self.spec)
        self.train_data = dataset(root=self.root, category=self.category, split=Split.TRAIN, **self.dataset_options())
        self.test_data = dataset(root=self.root, category=self.category, split=Split.TEST, **self.dataset_options())
