import pytest
import torch

from anomalib_dapo.data.dataset_base import check_vocabulary, clean_type_mask


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


def test_check_vocabulary_names_missing_types(tmp_path):
    check_vocabulary({"hole"}, ("hole", "scratch"), tmp_path)
    with pytest.raises(ValueError, match=r"\['rust'\]"):
        check_vocabulary({"hole", "rust"}, ("hole",), tmp_path)
