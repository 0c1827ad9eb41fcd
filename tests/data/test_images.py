import numpy as np
import pytest
from PIL import Image

from anomalib_dapo.data import folder
from anomalib_dapo.data.errors import DatasetLayoutError
from anomalib_dapo.data.images import read_index_mask
from anomalib_dapo.data.registry import source


@pytest.mark.parametrize("mode", ["L", "P", "RGB"])
def test_read_index_mask_keeps_ids(tmp_path, mode):
    values = np.array([[0, 1], [2, 200]], dtype=np.uint8)
    image = Image.fromarray(values).convert(mode) if mode != "P" else Image.fromarray(values).convert("P")
    image.save(tmp_path / "mask.png")
    assert read_index_mask(tmp_path / "mask.png", source("visa")).tolist() == values.tolist()


def test_colour_masks_are_refused(tmp_path):
    Image.fromarray(np.array([[[255, 0, 0]]], dtype=np.uint8)).save(tmp_path / "mask.png")
    with pytest.raises(DatasetLayoutError, match="colour mask"):
        read_index_mask(tmp_path / "mask.png", folder.SOURCE)
