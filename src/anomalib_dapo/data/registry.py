"""The registry's datasets as the data package reads them: classes, error sources and category folders.

The specs are :data:`anomalib_dapo.knowledge.REGISTRY` (plain data, classes named by import path); this module
resolves them, so that no other module keeps a table of datasets. Each function takes a dataset name (any
spelling :func:`~anomalib_dapo.knowledge.resolve_dataset` accepts) or a spec.
"""

import dataclasses
import importlib
from pathlib import Path

from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.utils import Split

from anomalib_dapo import knowledge
from anomalib_dapo.data.errors import DatasetSource
from anomalib_dapo.knowledge import DatasetSpec


def _import(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def dataset_class(dataset: str | DatasetSpec) -> type[AnomalibDataset]:
    """The typed dataset class of a dataset (arguments ``root, category, split, defect_types``)."""
    return _import(knowledge.spec(dataset).dataset)


def datamodule_class(dataset: str | DatasetSpec) -> type:
    """The typed datamodule class of a dataset (a :class:`~anomalib_dapo.data.typed_datamodule.TypedDataModule`)."""
    return _import(knowledge.spec(dataset).datamodule)


def source(dataset: str | DatasetSpec) -> DatasetSource:
    """Where a dataset lies on disk and where it is obtained, making the errors that name both."""
    return DatasetSource(**dataclasses.asdict(knowledge.spec(dataset).disk))


def resolution_of(dataset: str | DatasetSpec, resolution: str | int | None = None) -> str | None:
    """The image folder resolution to read: ``resolution`` checked, or the dataset's default; ``None`` if it has one.

    Raises:
        ValueError: The dataset ships no images at ``resolution``.

    """
    spec = knowledge.spec(dataset)
    if not spec.resolutions:
        return None
    if resolution is None:
        return spec.default_resolution
    if str(resolution) not in spec.resolutions:
        msg = f"{spec.display_name} resolution {resolution!r} does not exist; use one of {spec.resolutions}."
        raise ValueError(msg)
    return str(resolution)


def category_dir(
    dataset: str | DatasetSpec,
    root: str | Path,
    category: str,
    resolution: str | int | None = None,
) -> Path:
    """Folder of a category on disk (e.g. Real-IAD keeps its categories under ``realiad_<resolution>/``)."""
    spec = knowledge.spec(dataset)
    return Path(root) / spec.category_folder.format(category=category, resolution=resolution_of(spec, resolution))


def require_category(
    dataset: str | DatasetSpec,
    root: str | Path,
    category: str,
    resolution: str | int | None = None,
) -> Path:
    """Folder of a category, or a :class:`DatasetNotFoundError` giving the layout and where to get the dataset."""
    return source(dataset).require(category_dir(dataset, root, category, resolution), f"category {category!r}")


def typed_dataset(
    dataset: str | DatasetSpec,
    root: str | Path,
    category: str,
    split: str | Split,
    defect_types: list[str] | tuple[str, ...] | None = None,
    resolution: str | int | None = None,
) -> AnomalibDataset:
    """Typed dataset of one category of a registry dataset, checked on disk first.

    Args:
        dataset: Dataset name (any spelling ``resolve_dataset`` accepts) or spec.
        root: Dataset root.
        category: Category (product).
        split: ``train`` or ``test``.
        defect_types: Vocabulary to index types with. Defaults to the category's own.
        resolution: Image folder resolution of a dataset that has several (Real-IAD: 256, 512, 1024 or ``raw``).
            Defaults to the dataset's default; ignored by the others.

    Raises:
        DatasetNotFoundError: The category folder is missing.

    """
    require_category(dataset, root, category, resolution)
    options = {"resolution": chosen} if (chosen := resolution_of(dataset, resolution)) else {}
    return dataset_class(dataset)(root=Path(root), category=category, split=split, defect_types=defect_types, **options)
