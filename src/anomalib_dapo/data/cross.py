"""The paper's cross-dataset protocol: learn on a labelled source dataset, evaluate zero-shot on a target.

DAPO learns its prompts on the *test split* of every category of a source dataset (anomalous images with
their type masks, and the normal ones), then is evaluated on a category of another dataset whose defect
types it may never have seen. :class:`CrossDataset` serves exactly that, so the whole protocol is one
``anomalib train --model Dapo --data anomalib_dapo.data.CrossDataset ...`` run. Either side may also be
the user's own labelled data (a :class:`~anomalib_dapo.data.DefectFolder`) or any typed datamodule.
"""

import operator
from functools import reduce
from pathlib import Path

from anomalib.data.datamodules.base.image import AnomalibDataModule
from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.utils import Split, ValSplitMode
from torchvision.transforms.v2 import Transform

from anomalib_dapo import knowledge
from anomalib_dapo.data.registry import category_dir, require_category, source, typed_dataset


class CrossDataset(AnomalibDataModule):
    """Train on every category's test split of a source dataset; validate and test on a target category.

    Training type masks index the union vocabulary of the source (``train_defect_types``), so a type keeps
    one id across source categories; test masks index the target category's vocabulary (``defect_types``),
    which is what the model scores at test time. Validation is the target test split, as in anomalib's
    ``same_as_test`` default, so thresholds are computed the anomalib way. The target test split is used
    as it is on disk: no normal images move between source and target.

    Either side may be a typed datamodule instead of a registry dataset name: the user's own
    :class:`~anomalib_dapo.data.DefectFolder`, or e.g. ``TypedMVTecAD`` for a single category. Its labelled
    (test) split and its ``defect_types`` are used, and its root and category come with it (leave
    ``source_root``, ``target_root`` and ``target_category`` out). "Train on my parts A, test zero-shot on my
    parts B" is then::

        CrossDataset(source=DefectFolder("parts_A"), target=DefectFolder("parts_B"))

    A source datamodule of a registry dataset with ``source_categories`` stands for those categories of its dataset
    at its root, once its ``prepare_data`` ran: ``source=SyntheticDefects(root, seed=0, image_size=64)`` with
    ``source_categories=[disc, grid, tile]`` writes the synthetic set if it is absent, then trains on all three
    products, as ``source="synthetic"`` with that root would (the demo's configuration, ``configs/demo.yaml``).

    Args:
        source: Source dataset, e.g. ``mvtec_ad``, or a typed datamodule.
        source_root: Source dataset root (knowledge-base source only).
        target: Target dataset, e.g. ``mpdd``, or a typed datamodule.
        target_root: Target dataset root (knowledge-base target only).
        target_category: Target category, e.g. ``tubes`` (knowledge-base target only).
        source_categories: Source categories to train on (default: every category present on disk); with a
            source datamodule of a registry dataset, categories of that dataset at its root.
        resolution: Image folder resolution of a side with several (Real-IAD: ``realiad_<resolution>``, 256,
            512, 1024 or ``raw``). Defaults to the dataset's own (Real-IAD: 1024).
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
        source: str | AnomalibDataModule,
        source_root: str | Path | None = None,
        target: str | AnomalibDataModule | None = None,
        target_root: str | Path | None = None,
        target_category: str | None = None,
        source_categories: list[str] | None = None,
        resolution: str | int | None = None,
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
        if target is None:
            msg = "CrossDataset needs a target: a dataset name with target_root and target_category, or a datamodule."
            raise ValueError(msg)
        self.source = _side(source, "source", source_root=source_root)
        self.target = _side(target, "target", target_root=target_root, target_category=target_category)
        # A registry datamodule with categories to read: it prepares its data, which is then read by dataset name.
        self.source_module = self.source if source_categories and not isinstance(self.source, str) else None
        if self.source_module is not None:
            self.source, source_root = _registry_name(self.source_module), self.source_module.root
        self.source_root = Path(source_root) if source_root is not None else None
        self.target_root = Path(target_root) if target_root is not None else None
        self.resolution = resolution
        # Fail on a misspelt category at parse time, not after the source set is loaded.
        if isinstance(self.source, str):
            for category in source_categories or ():
                knowledge.vocabulary(self.source, category)
        if isinstance(self.target, str):
            knowledge.vocabulary(self.target, str(target_category))
            self.category = str(target_category)
        else:
            self.category = self.target.category
        self.source_categories = list(source_categories) if source_categories else None

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Vocabulary of the target category: the types the model scores at test time."""
        if isinstance(self.target, str):
            return knowledge.vocabulary(self.target, self.category)
        return tuple(self.target.defect_types)

    @property
    def dataset_defect_types(self) -> tuple[str, ...]:
        """Every defect type of the target dataset: what a model scores without product filtering (MultiADS)."""
        if isinstance(self.target, str):
            return knowledge.vocabulary(self.target)
        return tuple(self.target.dataset_defect_types)

    @property
    def train_defect_types(self) -> tuple[str, ...]:
        """Union vocabulary of the source dataset (or the source datamodule's), which the training masks index."""
        if isinstance(self.source, str):
            return knowledge.vocabulary(self.source)
        return tuple(self.source.defect_types)

    def train_categories(self) -> list[str]:
        """Source categories to train on: the given ones, else every knowledge-base category found on disk."""
        if not isinstance(self.source, str):
            return [self.source.category]
        if self.source_categories:
            return self.source_categories
        known = knowledge.categories(self.source)
        present = [c for c in known if category_dir(self.source, self.source_root, c, self.resolution).is_dir()]
        if not present and (root := Path(self.source_root)).name in known:  # a category given as the root
            found = category_dir(self.source, root, root.name, self.resolution)
            raise source(self.source).not_found(found, f"category {root.name!r}")
        if not present:
            raise source(self.source).not_found(self.source_root, f"categories ({', '.join(known)})")
        return present

    def prepare_data(self) -> None:
        """Check both datasets on disk, once a datamodule side prepared its own (nothing is downloaded)."""
        if self.source_module is not None:
            self.source_module.prepare_data()
        if isinstance(self.source, str):
            for category in self.train_categories():
                require_category(self.source, self.source_root, category, self.resolution)
        else:
            self.source.prepare_data()
        if isinstance(self.target, str):
            require_category(self.target, self.target_root, self.category, self.resolution)
        else:
            self.target.prepare_data()

    def _setup(self, _stage: str | None = None) -> None:
        if isinstance(self.source, str):
            union = self.train_defect_types
            sources = []
            for category in self.train_categories():
                source = typed_dataset(self.source, self.source_root, category, Split.TEST, union, self.resolution)
                source.samples["category"] = category  # the product of each training image, kept by concatenation
                sources.append(source)
            self.train_data = reduce(operator.add, sources)
        else:
            self.train_data = _labelled_split(self.source)
            if "category" not in self.train_data.samples:  # not the target's: its prompts name the source product
                self.train_data.samples["category"] = self.source.category
        if isinstance(self.target, str):
            self.test_data = typed_dataset(
                self.target, self.target_root, self.category, Split.TEST, resolution=self.resolution
            )
        else:
            self.test_data = _labelled_split(self.target)

    def _create_test_split(self) -> None:
        """Keep the target test split as on disk.

        anomalib's version would fill a test split without normal images with images taken from the train
        set, i.e. from the source dataset.
        """


def _side(
    side: str | AnomalibDataModule,
    role: str,
    **location: str | Path | None,
) -> str | AnomalibDataModule:
    """The registry key of a dataset name, or a typed datamodule (``location`` must then be left out)."""
    if isinstance(side, str):
        missing = [name for name, value in location.items() if value is None]
        if missing:
            msg = f"CrossDataset's {role} {side!r} is a dataset name: give {' and '.join(missing)} too."
            raise ValueError(msg)
        return knowledge.resolve_dataset(side)
    if not isinstance(side, AnomalibDataModule) or not hasattr(type(side), "defect_types"):
        msg = (
            f"CrossDataset's {role} must be a dataset name or a typed datamodule (one with defect_types, e.g. "
            f"anomalib_dapo.data.DefectFolder), got {type(side).__name__}."
        )
        raise TypeError(msg)
    given = [name for name, value in location.items() if value is not None]
    if given:
        msg = (
            f"CrossDataset's {role} is a {type(side).__name__}, which has its own {' and '.join(given)}: leave it out."
        )
        raise ValueError(msg)
    return side


def _registry_name(datamodule: AnomalibDataModule) -> str:
    """The registry key of a source datamodule given with ``source_categories``: the dataset they are categories of."""
    spec = getattr(type(datamodule), "spec", None)
    if spec is None:
        msg = (
            "source_categories selects categories of a registry dataset; a source "
            f"{type(datamodule).__name__} has its own category."
        )
        raise ValueError(msg)
    return spec.name


def _labelled_split(datamodule: AnomalibDataModule) -> AnomalibDataset:
    """The labelled images of a typed datamodule: its test split, whose type masks index its ``defect_types``."""
    datamodule.setup()
    return datamodule.test_data
