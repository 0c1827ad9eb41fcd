"""The paper's cross-dataset protocol: learn on a labelled source dataset, evaluate zero-shot on a target.

DAPO learns its prompts on the *test split* of every category of a source dataset (anomalous images with
their type masks, and the normal ones), then is evaluated on a category of another dataset whose defect
types it may never have seen. :class:`CrossDataset` serves exactly that, so the whole protocol is one
``anomalib train --model Dapo --data anomalib_dapo.data.CrossDataset ...`` run.
"""

import operator
from collections.abc import Callable, Sequence
from functools import partial, reduce
from pathlib import Path

from anomalib.data.datamodules.base.image import AnomalibDataModule
from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.utils import Split, ValSplitMode
from torchvision.transforms.v2 import Transform

from anomalib_dapo import knowledge
from anomalib_dapo.data.errors import SOURCES
from anomalib_dapo.data.mad import MADRealDataset, MADSimDataset
from anomalib_dapo.data.mpdd import TypedMPDDDataset
from anomalib_dapo.data.realiad import TypedRealIADDataset, category_images
from anomalib_dapo.data.typed import TypedMVTecADDataset
from anomalib_dapo.data.visa import TypedVisaDataset

# Typed dataset of each knowledge-base dataset; each accepts ``root, category, split, defect_types``.
TYPED_DATASETS: dict[str, Callable[..., AnomalibDataset]] = {
    "mvtec_ad": partial(TypedMVTecADDataset, dataset="mvtec_ad"),
    "synthetic": partial(TypedMVTecADDataset, dataset="synthetic"),
    "mpdd": TypedMPDDDataset,
    "visa": TypedVisaDataset,
    "real_iad": TypedRealIADDataset,
    "mad_sim": MADSimDataset,
    "mad_real": MADRealDataset,
}


def category_dir(dataset: str, root: str | Path, category: str) -> Path:
    """Folder of a category on disk (Real-IAD keeps its categories under ``realiad_1024/``)."""
    key = knowledge.resolve_dataset(dataset)
    return category_images(Path(root), category) if key == "real_iad" else Path(root) / category


def require_category(dataset: str, root: str | Path, category: str) -> Path:
    """Folder of a category, or a :class:`DatasetNotFoundError` giving the layout and where to get the dataset."""
    key = knowledge.resolve_dataset(dataset)
    return SOURCES[key].require(category_dir(key, root, category), f"category {category!r}")


def typed_dataset(
    dataset: str,
    root: str | Path,
    category: str,
    split: str | Split,
    defect_types: Sequence[str] | None = None,
) -> AnomalibDataset:
    """Typed dataset of one category of a knowledge-base dataset, checked on disk first.

    Args:
        dataset: Knowledge-base dataset name (any spelling ``resolve_dataset`` accepts).
        root: Dataset root.
        category: Category (product).
        split: ``train`` or ``test``.
        defect_types: Vocabulary to index types with (default: the category's own).

    Raises:
        DatasetNotFoundError: The category folder is missing.

    """
    key = knowledge.resolve_dataset(dataset)
    require_category(key, root, category)
    return TYPED_DATASETS[key](root=Path(root), category=category, split=split, defect_types=defect_types)


class CrossDataset(AnomalibDataModule):
    """Train on every category's test split of a source dataset; validate and test on a target category.

    Training type masks index the union vocabulary of the source (``train_defect_types``), so a type keeps
    one id across source categories; test masks index the target category's vocabulary (``defect_types``),
    which is what the model scores at test time. Validation is the target test split, as in anomalib's
    ``same_as_test`` default, so thresholds are computed the anomalib way. The target test split is used
    as it is on disk: no normal images move between source and target.

    Args:
        source: Source dataset, e.g. ``mvtec_ad``.
        source_root: Source dataset root.
        target: Target dataset, e.g. ``mpdd``.
        target_root: Target dataset root.
        target_category: Target category, e.g. ``tubes``.
        source_categories: Source categories to train on (default: every category present on disk).
        train_batch_size: Training batch size.
        eval_batch_size: Validation and test batch size.
        num_workers: Dataloader workers.
        train_augmentations: Augmentations of the training images.
        val_augmentations: Augmentations of the validation images.
        test_augmentations: Augmentations of the test images.
        augmentations: Augmentations of every split without its own.
        seed: Seed of anomalib's random splits.

    Example:
        >>> datamodule = CrossDataset("mvtec_ad", "./datasets/MVTecAD", "mpdd", "./datasets/MPDD", "tubes")

    """

    def __init__(
        self,
        source: str,
        source_root: str | Path,
        target: str,
        target_root: str | Path,
        target_category: str,
        source_categories: list[str] | None = None,
        train_batch_size: int = 8,
        eval_batch_size: int = 8,
        num_workers: int = 0,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
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
            val_split_mode=ValSplitMode.SAME_AS_TEST,
            seed=seed,
        )
        self.source = knowledge.resolve_dataset(source)
        self.target = knowledge.resolve_dataset(target)
        self.source_root = Path(source_root)
        self.target_root = Path(target_root)
        # Fail on a misspelt category at parse time, not after the source set is loaded.
        for category in source_categories or ():
            knowledge.vocabulary(self.source, category)
        knowledge.vocabulary(self.target, target_category)
        self.source_categories = list(source_categories) if source_categories else None
        self.category = target_category

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Vocabulary of the target category: the types the model scores at test time."""
        return knowledge.vocabulary(self.target, self.category)

    @property
    def train_defect_types(self) -> tuple[str, ...]:
        """Union vocabulary of the source dataset, which the training type masks index."""
        return knowledge.vocabulary(self.source)

    def train_categories(self) -> list[str]:
        """Source categories to train on: the given ones, else every knowledge-base category found on disk."""
        if self.source_categories:
            return self.source_categories
        known = knowledge.categories(self.source)
        present = [category for category in known if category_dir(self.source, self.source_root, category).is_dir()]
        if not present and (root := Path(self.source_root)).name in known:  # a category given as the root
            raise SOURCES[self.source].not_found(category_dir(self.source, root, root.name), f"category {root.name!r}")
        if not present:
            raise SOURCES[self.source].not_found(self.source_root, f"categories ({', '.join(known)})")
        return present

    def prepare_data(self) -> None:
        """Check both datasets on disk (nothing is downloaded)."""
        for category in self.train_categories():
            require_category(self.source, self.source_root, category)
        require_category(self.target, self.target_root, self.category)

    def _setup(self, _stage: str | None = None) -> None:
        union = self.train_defect_types
        sources = [
            typed_dataset(self.source, self.source_root, category, Split.TEST, defect_types=union)
            for category in self.train_categories()
        ]
        self.train_data = reduce(operator.add, sources)
        self.test_data = typed_dataset(self.target, self.target_root, self.category, Split.TEST)

    def _create_test_split(self) -> None:
        """Keep the target test split as on disk.

        anomalib's version would fill a test split without normal images with images taken from the train
        set, i.e. from the source dataset.
        """
