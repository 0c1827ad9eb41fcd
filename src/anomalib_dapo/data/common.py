"""Helpers shared by the typed datasets: knowledge-base typing, file checks and indexed (multi-id) masks."""

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from anomalib.data.utils import LabelName
from PIL import Image
from scipy import ndimage

from anomalib_dapo import knowledge
from anomalib_dapo.data.errors import SOURCES, DatasetSource
from anomalib_dapo.data.typed import TypedDatasetMixin, add_defect_types, named_read_errors

# Compared lower-cased: datasets mix ``.png``, ``.PNG`` and ``.JPG``.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def check_vocabulary(found: Iterable[str], vocabulary: Sequence[str], where: Path | str) -> None:
    """Raise if a defect type present in the samples has no index in ``vocabulary``."""
    if unknown := sorted(set(found) - set(vocabulary)):
        msg = f"Defect types {unknown} of {where} are missing from the vocabulary {list(vocabulary)}."
        raise ValueError(msg)


def known_types(
    samples: pd.DataFrame,
    dataset: str,
    category: str,
    defect_types: Sequence[str] | None,
    where: Path,
    raw_column: str = "label",
) -> tuple[str, ...]:
    """Fill ``samples.defect_type`` from the knowledge base and return the vocabulary to index types with.

    Args:
        samples: Samples frame with ``label_index`` and the raw defect names in ``raw_column``.
        dataset: Knowledge-base dataset key.
        category: Product, for its default vocabulary.
        defect_types: Vocabulary to use instead of the product's (e.g. the union over a dataset).
        where: Folder the samples were read from, named by errors.
        raw_column: Column holding the raw defect names.

    """
    with SOURCES[dataset].reading(where):
        found = add_defect_types(samples, dataset, raw_column)
    vocabulary = tuple(defect_types) if defect_types else knowledge.vocabulary(dataset, category)
    check_vocabulary(found, vocabulary, where)
    return vocabulary


def require_files(paths: Iterable[str], source: DatasetSource, what: str) -> None:
    """Raise naming the first missing file, so a broken list file is reported by path."""
    paths = [path for path in paths if path]
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        raise source.not_found(Path(missing[0]), f"{what} ({len(missing)} of {len(paths)} missing)")


def read_index_mask(path: str | Path, source: DatasetSource) -> torch.Tensor:
    """Read a mask whose pixel values are ids (grey, palette-indexed or equal-channel RGB PNG) as ``(H, W)`` int64.

    anomalib's ``read_mask`` converts to luminance and thresholds, which destroys ids (and palette indices).
    """
    with named_read_errors(path, "mask"), Image.open(path) as image:
        values, mode = np.asarray(image), image.mode
    if values.ndim == 3:
        channels = values[..., :1] if mode == "LA" else values[..., :3]
        if not (channels == channels[..., :1]).all():
            raise source.bad_layout(
                Path(path),
                "a colour mask cannot hold defect ids: save it as a grey or palette-indexed PNG whose "
                "pixel values are the ids",
            )
        values = channels[..., 0]
    return torch.from_numpy(values.astype(np.int64))


def clean_type_mask(types: torch.Tensor, foreground: torch.Tensor, allowed: Collection[int]) -> torch.Tensor | None:
    """Give each foreground pixel whose type is not ``allowed`` the type of the nearest allowed pixel.

    Stray ids sit on region boundaries (resampled masks); the region they border is their true type, and
    keeping them foreground keeps the binary mask identical to the dataset's. Returns ``None`` when no
    pixel carries an allowed type, for the caller to decide.
    """
    valid = foreground & torch.isin(types, torch.tensor(sorted(allowed), dtype=types.dtype))
    cleaned = torch.where(foreground, types, torch.zeros_like(types))
    stray = foreground & ~valid
    if not stray.any():
        return cleaned
    if not valid.any():
        return None
    # Every allowed pixel lies in the foreground, so the nearest one is inside the foreground's bounding box.
    rows, cols = foreground.nonzero(as_tuple=True)
    box = (slice(int(rows.min()), int(rows.max()) + 1), slice(int(cols.min()), int(cols.max()) + 1))
    nearest = ndimage.distance_transform_edt(~valid[box].numpy(), return_distances=False, return_indices=True)
    filled = cleaned[box][torch.from_numpy(nearest[0]), torch.from_numpy(nearest[1])]
    cleaned[box] = torch.where(stray[box], filled, cleaned[box])
    return cleaned


class IndexedMaskMixin(TypedDatasetMixin):
    """Type masks read from masks whose pixel values are ids, several types per image allowed.

    ``samples.defect_type`` lists the image's types comma-joined (its labels); pixels whose id maps to no
    listed type are cleaned by :func:`clean_type_mask`.
    """

    source: DatasetSource

    def mask_id_types(self, sample: pd.Series) -> dict[int, str]:
        """Defect type of each mask id of ``sample``."""
        raise NotImplementedError

    def read_foreground(self, mask_path: str) -> tuple[torch.Tensor, int]:
        """Defect pixels of an indexed mask: every id but 0 (ids are never stray values)."""
        return read_index_mask(mask_path, self.source) > 0, 0

    def read_type_mask(self, sample: pd.Series, image_shape: torch.Size) -> torch.Tensor | None:
        """Map mask ids to vocabulary indices, then clean ids that the image's labels do not list."""
        if sample.label_index == LabelName.NORMAL:
            return torch.zeros(image_shape, dtype=torch.int64)
        ids = read_index_mask(sample.mask_path, self.source)
        types = torch.full_like(ids, -1)
        for mask_id, name in self.mask_id_types(sample).items():
            if name in self.defect_types:
                types[ids == mask_id] = self.type_index(name)
        listed = [self.type_index(name) for name in sample.defect_type.split(",")]
        cleaned = clean_type_mask(types, ids > 0, listed)
        if cleaned is None:
            # Mask and labels disagree entirely: trust the labels, as for datasets with binary masks.
            cleaned = torch.where(ids > 0, listed[0], 0)
        return cleaned
