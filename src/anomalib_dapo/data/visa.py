"""VisA with per-pixel defect types, read from the raw release.

The raw masks hold ids: pixel value ``v`` is the ``v``-th raw defect of the category
(:func:`anomalib_dapo.knowledge.visa_mask_id_types`), and an image may show several. anomalib's Visa
datamodule binarises them into its ``visa_pytorch`` copy, so this loader reads the raw release and refuses
that copy. Its split is the official one of ``split_csv/1cls.csv``; each image's labels come from
``<category>/image_anno.csv``.

Stray ids: resampled masks carry ids on region boundaries that the image's labels do not list. Each such
pixel takes the type of the nearest pixel whose id is listed (the region it borders), so it stays
anomalous and the binary mask equals anomalib's. If no pixel carries a listed id, all foreground takes the
first listed type.
"""

from collections.abc import Sequence
from functools import cache
from pathlib import Path, PurePosixPath
from typing import ClassVar

import pandas as pd
from anomalib.data.datamodules.image.visa import Visa
from anomalib.data.datasets.base.image import AnomalibDataset
from anomalib.data.utils import LabelName, Split
from anomalib.utils.path import resolve_dataset_root
from torchvision.transforms.v2 import Transform

from anomalib_dapo import knowledge
from anomalib_dapo.data.datamodule_base import TypedDataModule
from anomalib_dapo.data.dataset_base import IndexedMaskMixin, check_vocabulary, require_files
from anomalib_dapo.data.registry import source
from anomalib_dapo.knowledge import DatasetSpec
from anomalib_dapo.knowledge.datasets import VISA as SPEC

SOURCE = source(SPEC)
SPLIT_FILE = Path("split_csv") / "1cls.csv"
SPLIT_COLUMNS = ("object", "split", "label", "image", "mask")
ANNOTATION_FILE = "image_anno.csv"
ANNOTATION_COLUMNS = ("image", "label", "mask")
PREPARED_COPY = (
    "this is anomalib's prepared 'visa_pytorch' copy, whose masks are binarised: the defect types are lost. "
    "Point root at the raw VisA release instead, the folder holding split_csv/1cls.csv and <category>/Data/ "
    "(anomalib keeps it next to visa_pytorch)."
)


def raw_category(root: Path, category: str) -> Path:
    """Return ``<root>/<category>`` of the raw release, refusing anomalib's binarised ``visa_pytorch`` copy."""
    category_root = root / category
    if (category_root / "Data").is_dir():
        SOURCE.require(root / SPLIT_FILE, "split file")
        SOURCE.require(category_root / ANNOTATION_FILE, "annotation file")
        return category_root
    for prepared in (category_root, root / "visa_pytorch" / category):
        if (prepared / "ground_truth").is_dir() or (prepared / "train" / "good").is_dir():
            raise SOURCE.bad_layout(prepared, PREPARED_COPY)
    raise SOURCE.not_found(category_root / "Data", f"category {category!r} (raw release)")


def _read_csv(path: Path, columns: Sequence[str]) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise SOURCE.bad_layout(path, f"unreadable csv file ({error})") from error
    if missing := sorted(set(columns) - set(frame.columns)):
        raise SOURCE.bad_layout(path, f"missing columns {missing}; expected the header {','.join(columns)}")
    return frame


def _image_key(path: str) -> tuple[str, ...]:
    """``("Anomaly", "000.JPG")``: the same image whether or not a csv prefixes the category folder."""
    return PurePosixPath(path.replace("\\", "/")).parts[-2:]


def make_typed_visa_samples(root: Path, category: str, split: str | None = None) -> pd.DataFrame:
    """Samples of one raw VisA category with ``defect_type`` = the image's types, comma-joined.

    Args:
        root: Raw release root (holding ``split_csv/``).
        category: Category folder, e.g. ``capsules``.
        split: ``train``, ``test`` or ``None`` for both.

    """
    split_path, annotation_path = root / SPLIT_FILE, root / category / ANNOTATION_FILE
    rows = _read_csv(split_path, SPLIT_COLUMNS)
    rows = rows[(rows["object"] == category) & ((rows["split"] == split) if split else True)]
    if rows.empty:
        raise SOURCE.bad_layout(split_path, f"no {split or ''} rows for category {category!r}")
    if bad := sorted(set(rows["label"]) - {"normal", "anomaly"}):
        raise SOURCE.bad_layout(split_path, f"labels {bad} are neither 'normal' nor 'anomaly'")
    annotations = _read_csv(annotation_path, ANNOTATION_COLUMNS)
    labels = dict(zip(annotations["image"].map(_image_key), annotations["label"], strict=True))
    samples = pd.DataFrame(
        {
            "split": rows["split"].to_numpy(),
            "label": [labels.get(_image_key(image), "") for image in rows["image"]],
            "image_path": [str(root / image) for image in rows["image"]],
            "mask_path": [str(root / mask) if mask else "" for mask in rows["mask"]],
            "label_index": (rows["label"] == "anomaly").astype(int).to_numpy(),
            "category": category,
        },
    )
    anomalous = samples.label_index == LabelName.ABNORMAL
    if (unlabelled := anomalous & samples.label.isin(["", "normal"])).any():
        image = samples.image_path[unlabelled].iloc[0]
        raise SOURCE.bad_layout(annotation_path, f"no defect label for the anomalous image {image}")
    if (unmasked := anomalous & (samples.mask_path == "")).any():
        raise SOURCE.bad_layout(split_path, f"no mask for the anomalous image {samples.image_path[unmasked].iloc[0]}")
    require_files([*samples.image_path, *samples.mask_path], SOURCE, f"image or mask listed in {split_path}")
    samples["defect_type"] = ""
    with SOURCE.reading(annotation_path):
        samples.loc[anomalous, "defect_type"] = samples.label[anomalous].map(
            lambda label: ",".join(
                dict.fromkeys(knowledge.defect_type(SPEC, raw) for raw in label.split(",") if raw.strip()),
            ),
        )
    samples.attrs["task"] = "segmentation"
    return samples


@cache
def _mask_id_types(category: str) -> dict[int, str]:
    return dict(enumerate(knowledge.visa_mask_id_types(category), start=1))


class TypedVisaDataset(IndexedMaskMixin, AnomalibDataset):
    """One category of the raw VisA release with per-pixel defect types (several per image).

    Args:
        root: Raw release root (holding ``split_csv/`` and the category folders).
        category: Category, e.g. ``capsules``.
        augmentations: Augmentations applied to image and type mask together.
        split: ``train``, ``test`` or ``None`` for both.
        defect_types: Vocabulary to index the types with (default: the category's types in the knowledge base).

    """

    spec: ClassVar[DatasetSpec] = SPEC

    def __init__(
        self,
        root: Path | str | None = None,
        category: str = "capsules",
        augmentations: Transform | None = None,
        split: str | Split | None = None,
        defect_types: Sequence[str] | None = None,
    ) -> None:
        super().__init__(augmentations=augmentations)
        self.source = SOURCE
        self.root = resolve_dataset_root(root, SOURCE.default_dir)
        self.category = category
        self.split = Split(split).value if split else None
        self.root_category = raw_category(self.root, category)
        samples = make_typed_visa_samples(self.root, category, self.split)
        self.defect_types = tuple(defect_types) if defect_types else knowledge.vocabulary(SPEC, category)
        found = {name for listed in samples.defect_type for name in listed.split(",") if name}
        check_vocabulary(found, self.defect_types, self.root_category)
        self.samples = samples
        self.check_masks()

    def mask_id_types(self, sample: pd.Series) -> dict[int, str]:
        """Types of the mask ids of the sample's category (kept per sample so categories can be concatenated)."""
        return _mask_id_types(sample.category)


class TypedVisa(TypedDataModule, Visa):
    """anomalib's Visa datamodule reading the raw release, whose items carry ``gt_type_mask``.

    Same arguments as ``Visa``; ``root`` is the raw release. Nothing is downloaded or converted.
    """

    spec: ClassVar[DatasetSpec] = SPEC

    def prepare_data(self) -> None:
        """Check the raw release (and refuse the binarised copy) instead of downloading and converting."""
        raw_category(self.root, self.category)
