"""MAD (PAD benchmark) datasets: MAD-Sim (20 LEGO toys, three defect types) and MAD-Real (10 toys, one type each).

Both are laid out like MVTec-AD (``<toy>/{train,test}/<label>``, masks in ``<toy>/ground_truth/<Defect>``) but
number their files without zero padding, and MAD-Real names masks ``N.png`` instead of ``N_mask.png``: the
folder scanner pairs images and masks by stem. The defect type of an image is its test folder.
"""

from pathlib import Path
from typing import ClassVar

from anomalib.data.datamodules.base.image import AnomalibDataModule
from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.utils import Split, TestSplitMode, ValSplitMode
from anomalib.utils.path import resolve_dataset_root
from torchvision.transforms.v2 import Transform

from anomalib_dapo import knowledge
from anomalib_dapo.data.datamodule_base import TypedDataModule
from anomalib_dapo.data.dataset_base import TypedDatasetMixin, known_types
from anomalib_dapo.data.folder import scan_defect_folders, to_samples
from anomalib_dapo.data.registry import source
from anomalib_dapo.knowledge import DatasetSpec
from anomalib_dapo.knowledge.datasets import MAD_REAL, MAD_SIM

SPLITS = (Split.TRAIN.value, Split.TEST.value)


class MADDataset(TypedDatasetMixin, AnomalibDataset):
    """One toy of a MAD dataset with per-pixel defect types (``train/`` is optional, ``test/`` required).

    Args:
        root: Dataset root holding one folder per toy.
        category: Toy folder, e.g. ``01Gorilla`` (MAD-Sim) or ``Bird`` (MAD-Real).
        augmentations: Augmentations applied to image and type mask together.
        split: ``train``, ``test`` or ``None`` for both.
        defect_types: Vocabulary to index the types with (default: the toy's types in the knowledge base).

    """

    def __init__(
        self,
        root: str | Path | None,
        category: str,
        augmentations: Transform | None = None,
        split: str | Split | None = None,
        defect_types: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(augmentations=augmentations)
        layout = source(self.spec)
        self.root = resolve_dataset_root(root, layout.default_dir)
        self.category = category
        self.split = Split(split).value if split else None
        self.root_category = layout.require(self.root / category, f"toy {category!r}")
        layout.require(self.root_category / Split.TEST.value, "test folder")
        rows = [
            row
            for part in SPLITS
            if self.split in {None, part} and (self.root_category / part).is_dir()
            for row in scan_defect_folders(self.root_category / part, self.root_category / "ground_truth", part, layout)
        ]
        samples = to_samples(rows)
        self.defect_types = known_types(samples, self.spec, category, defect_types, self.root_category)
        self.samples = samples
        self.check_masks()


class MADSimDataset(MADDataset):
    """MAD-Sim toy (``<root>/<NNName>/``, masks ``ground_truth/<Defect>/N_mask.png``)."""

    spec: ClassVar[DatasetSpec] = MAD_SIM


class MADRealDataset(MADDataset):
    """MAD-Real toy (``<root>/<Name>/``, masks ``ground_truth/<Defect>/N.png``)."""

    spec: ClassVar[DatasetSpec] = MAD_REAL


class _MADDataModule(TypedDataModule, AnomalibDataModule):
    """Datamodule of one MAD toy; never downloads (``prepare_data`` checks the folders).

    Args:
        root: Dataset root. Defaults to ``./datasets/MAD-Sim`` or ``./datasets/MAD-Real``.
        category: Toy folder. Defaults to the first toy of the knowledge base.
        train_batch_size: Training batch size.
        eval_batch_size: Validation and test batch size.
        num_workers: Dataloader workers.
        train_augmentations: Augmentations of the training images.
        val_augmentations: Augmentations of the validation images.
        test_augmentations: Augmentations of the test images.
        augmentations: Augmentations of every split without its own.
        test_split_mode: How the test set is made (default: the ``test`` folder).
        test_split_ratio: Fraction of normal training images moved to test when ``test/`` has none.
        val_split_mode: How the validation set is made (default: the test set).
        val_split_ratio: Fraction used for validation with ``from_test``/``from_train``/``synthetic``.
        seed: Seed of the random splits.

    """

    def __init__(
        self,
        root: str | Path | None = None,
        category: str | None = None,
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 8,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        test_split_ratio: float = 0.2,
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
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )
        self.root = Path(root) if root is not None else Path("./datasets") / self.spec.disk.default_dir
        self.category = category or knowledge.categories(self.spec)[0]

    def prepare_data(self) -> None:
        """Check the toy's folders (nothing is downloaded)."""
        source(self.spec).require(self.root / self.category / Split.TEST.value, f"toy {self.category!r} test folder")


class MADSim(_MADDataModule):
    """MAD-Sim datamodule with per-pixel defect types (burrs, missing, stains)."""

    spec: ClassVar[DatasetSpec] = MAD_SIM


class MADReal(_MADDataModule):
    """MAD-Real datamodule with per-pixel defect types (missing or stains, one per toy)."""

    spec: ClassVar[DatasetSpec] = MAD_REAL
