import numpy as np
import pytest
import torch
from PIL import Image

from anomalib_dapo.data.common import check_vocabulary, clean_type_mask, read_index_mask
from anomalib_dapo.data.errors import SOURCES, DatasetLayoutError


def test_stray_pixels_take_the_nearest_allowed_type():
    types = torch.tensor(
        [
            [1, 1, 9, 0, 0, 0],
            [1, 1, 9, 0, 9, 2],
            [0, 0, 0, 0, 2, 2],
        ],
    )
    cleaned = clean_type_mask(types, types > 0, allowed={1, 2})
    want = torch.tensor(
        [
            [1, 1, 1, 0, 0, 0],
            [1, 1, 1, 0, 2, 2],
            [0, 0, 0, 0, 2, 2],
        ],
    )
    assert torch.equal(cleaned, want)


def test_clean_type_mask_without_allowed_pixels_defers_to_the_caller():
    types = torch.tensor([[0, 3], [3, 0]])
    assert clean_type_mask(types, types > 0, allowed={1}) is None
    assert torch.equal(clean_type_mask(types, types > 0, allowed={3}), types)


@pytest.mark.parametrize("mode", ["L", "P", "RGB"])
def test_read_index_mask_keeps_ids(tmp_path, mode):
    values = np.array([[0, 1], [2, 200]], dtype=np.uint8)
    image = Image.fromarray(values).convert(mode) if mode != "P" else Image.fromarray(values).convert("P")
    image.save(tmp_path / "mask.png")
    assert read_index_mask(tmp_path / "mask.png", SOURCES["visa"]).tolist() == values.tolist()


def test_colour_masks_are_refused(tmp_path):
    Image.fromarray(np.array([[[255, 0, 0]]], dtype=np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(DatasetLayoutError, match="colour mask"):
        read_index_mask(tmp_path / "mask.png", SOURCES["defect_folder"])


def test_check_vocabulary_names_missing_types(tmp_path):
    check_vocabulary({"hole"}, ("hole", "scratch"), tmp_path)
    with pytest.raises(ValueError, match=r"\['rust'\]"):
        check_vocabulary({"hole", "rust"}, ("hole",), tmp_path)
