"""Real-IAD with per-pixel defect types from each sample's ``anomaly_class``.

anomalib's Real-IAD loader keeps only normal/anomalous; its sample builder is reused here and the json's
``anomaly_class`` (``OK`` or a code such as ``HS``) is added back. The label comes from ``anomaly_class``,
never from the folder: many camera views under ``NG/<CODE>/`` show no defect and are ``OK`` (normal).
Normal test images are kept (anomalib's datamodule drops them with its default ``test_split_mode=none``).

Roots: images of ``<root>/realiad_<resolution>/<category>/`` (default resolution 1024); the json is
``<root>/realiad_jsons/<category>.json`` (official archive unpacked in place) or
``<root>/realiad_jsons/realiad_jsons/<category>.json`` (anomalib's default), or any ``json_path``.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from anomalib.data.datamodules.image.realiad import RealIAD
from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.datasets.image.realiad import make_realiad_dataset
from anomalib.data.utils import Split, TestSplitMode, ValSplitMode
from anomalib.utils.path import resolve_dataset_root
from torchvision.transforms.v2 import Transform

from anomalib_dapo.data.datamodule_base import TypedDataModule
from anomalib_dapo.data.dataset_base import TypedDatasetMixin, known_types, require_files
from anomalib_dapo.data.registry import category_dir, source
from anomalib_dapo.knowledge import DatasetSpec
from anomalib_dapo.knowledge.datasets import REAL_IAD as SPEC

SOURCE = source(SPEC)
DEFAULT_RESOLUTION = SPEC.default_resolution
JSON_LOCATIONS = ("realiad_jsons/{category}.json", "realiad_jsons/realiad_jsons/{category}.json")
ENTRY_KEYS = frozenset({"image_path", "anomaly_class"})


def find_json(root: Path, category: str, json_path: str | Path | None = None) -> Path:
    """Metadata file of a category: ``json_path`` (``{category}`` filled in, relative to root) or a known location."""
    locations = [str(json_path)] if json_path else JSON_LOCATIONS
    candidates = [root / location.format(category=category) for location in locations]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    also = f" (nor {', '.join(map(str, candidates[1:]))})" if len(candidates) > 1 else ""
    raise SOURCE.not_found(candidates[0], f"metadata of {category!r}{also}")


def _entries(metadata: dict, part: str, json_file: Path) -> list[dict]:
    entries = metadata.get(part, [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) and e.keys() >= ENTRY_KEYS for e in entries):
        problem = f"'{part}' must be a list of samples with keys {sorted(ENTRY_KEYS)} (and mask_path)"
        raise SOURCE.bad_layout(json_file, problem)
    return entries


def make_typed_realiad_samples(images: Path, json_file: Path, split: str | None = None) -> pd.DataFrame:
    """Samples of one category with an ``anomaly_class`` column.

    Args:
        images: Folder the json's paths are relative to (``<root>/realiad_<resolution>/<category>``).
        json_file: The category's metadata.
        split: ``train``, ``test`` or ``None`` for both.

    """
    try:
        metadata = json.loads(json_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SOURCE.bad_layout(json_file, f"unreadable json ({error})") from error
    if not isinstance(metadata, dict):
        raise SOURCE.bad_layout(json_file, "expected an object with 'train' and 'test' lists")
    frames = []
    for part in [split] if split else [Split.TRAIN.value, Split.TEST.value]:
        if not (entries := _entries(metadata, part, json_file)):
            continue
        # anomalib's builder finds each entry's split by searching the train list (quadratic); the entries of
        # one part share it, so each part is built as the builder's "test" and labelled afterwards.
        frame = make_realiad_dataset(images, split=Split.TEST, metadata={"test": entries}, confinement_root=images)
        frame["split"] = part
        frame["anomaly_class"] = [entry["anomaly_class"] for entry in entries]
        frames.append(frame)
    if not frames:
        raise SOURCE.bad_layout(json_file, f"no {split or ''} samples listed")
    samples = pd.concat(frames, ignore_index=True)
    require_files([*samples.image_path, *samples.mask_path], SOURCE, f"image or mask listed in {json_file}")
    samples.attrs["task"] = "segmentation"
    return samples


class TypedRealIADDataset(TypedDatasetMixin, AnomalibDataset):
    """One Real-IAD category whose items carry ``gt_type_mask`` (type = the view's ``anomaly_class``).

    Args:
        root: Dataset root (holding ``realiad_<resolution>/`` and ``realiad_jsons/``).
        category: Category, e.g. ``pcb``.
        resolution: Image folder ``realiad_<resolution>``: 256, 512, 1024 or ``raw``.
        augmentations: Augmentations applied to image and type mask together.
        split: ``train``, ``test`` or ``None`` for both.
        json_path: Metadata file relative to ``root`` (``{category}`` is filled in); default: a known location.
        defect_types: Vocabulary to index the types with (default: the category's types in the knowledge base).

    """

    spec: ClassVar[DatasetSpec] = SPEC

    def __init__(
        self,
        root: Path | str | None = None,
        category: str = "audiojack",
        resolution: str | int = DEFAULT_RESOLUTION,
        augmentations: Transform | None = None,
        split: str | Split | None = None,
        json_path: str | Path | None = None,
        defect_types: Sequence[str] | None = None,
    ) -> None:
        super().__init__(augmentations=augmentations)
        self.root = resolve_dataset_root(root, SOURCE.default_dir)
        self.category = category
        self.split = Split(split).value if split else None
        self.root_category = category_dir(SPEC, self.root, category, resolution)
        SOURCE.require(self.root_category, f"{category!r} images at resolution {resolution}")
        json_file = find_json(self.root, category, json_path)
        samples = make_typed_realiad_samples(self.root_category, json_file, self.split)
        self.defect_types = known_types(samples, SPEC, category, defect_types, json_file, "anomaly_class")
        self.samples = samples
        self.check_masks()


class TypedRealIAD(TypedDataModule, RealIAD):
    """anomalib's RealIAD datamodule whose items carry ``gt_type_mask``; normal test images are kept.

    Same arguments as ``RealIAD``, with defaults for DAPO: ``resolution=1024``, ``json_path=None`` (a known
    location, see the module docstring) and ``test_split_mode="from_dir"``. Nothing is downloaded.
    """

    spec: ClassVar[DatasetSpec] = SPEC

    def __init__(
        self,
        root: Path | str | None = "./datasets/Real-IAD",
        category: str = "audiojack",
        resolution: str | int = DEFAULT_RESOLUTION,
        json_path: str | Path | None = None,
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 8,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        val_split_mode: ValSplitMode | str = ValSplitMode.SAME_AS_TEST,
        seed: int | None = None,
    ) -> None:
        super().__init__(
            root=root,
            category=category,
            resolution=resolution,
            json_path=json_path,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            val_split_mode=val_split_mode,
            seed=seed,
        )

    def dataset_options(self) -> dict[str, Any]:
        """The image resolution and the metadata file."""
        return {"resolution": self.resolution, "json_path": self.json_path}

    def prepare_data(self) -> None:
        """Check the images and the json, with the expected layout in the error (nothing is downloaded)."""
        images = category_dir(SPEC, self.root, self.category, self.resolution)
        SOURCE.require(images, f"{self.category!r} images at resolution {self.resolution}")
        find_json(self.root, self.category, self.json_path)
