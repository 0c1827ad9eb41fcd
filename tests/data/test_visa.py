import numpy as np
import pytest
import torch

from anomalib_dapo import knowledge
from anomalib_dapo.data.errors import DatasetLayoutError, DatasetNotFoundError
from anomalib_dapo.data.visa import TypedVisa, TypedVisaDataset

# cashew mask ids: 1 burnt, 2 corner or edge breakage, 3 different colour spot, 4 middle breakage, 5 small holes,
# 6 small scratches, 7 stuck together, 8 same colour spot, 9 other.
# cashew vocabulary: burnt, breakage, spot, hole, scratch, stuck, other.
BURNT, BREAKAGE, SPOT, HOLE = 1, 2, 3, 4


CASHEW = {
    # Two defects, each with a stray boundary id the label does not list (1 next to spot, 5 next to breakage);
    # id 8 is another raw name of a listed type (spot) and is kept.
    "000": (
        "different colour spot,middle breakage",
        {3: (0, 4, 0, 4), 1: (4, 5, 0, 4), 8: (0, 2, 12, 16), 4: (8, 12, 8, 12), 5: (12, 13, 8, 12)},
    ),
    # One defect and a far-away unknown id (255): it takes the nearest listed region's type.
    "001": ("small holes", {5: (2, 6, 2, 6), 255: (14, 15, 14, 15)}),
    # The mask disagrees with the label entirely: the label wins.
    "002": ("burnt", {9: (3, 7, 3, 7)}),
}


def expected_cashew(root):
    types = np.zeros((3, 16, 16), dtype=np.int64)
    types[0, 0:5, 0:4] = SPOT
    types[0, 0:2, 12:16] = SPOT
    types[0, 8:13, 8:12] = BREAKAGE
    types[1, 2:6, 2:6] = HOLE
    types[1, 14, 14] = HOLE
    types[2, 3:7, 3:7] = BURNT
    return {
        str(root / "cashew" / "Data" / "Images" / "Anomaly" / f"{name}.JPG"): types[i] for i, name in enumerate(CASHEW)
    }


def test_multi_id_masks_with_stray_ids(tmp_path, write_visa):
    write_visa(tmp_path, {"cashew": CASHEW})
    expected = expected_cashew(tmp_path)
    dataset = TypedVisaDataset(tmp_path, "cashew", split="test")
    assert dataset.defect_types == knowledge.vocabulary("visa", "cashew")
    assert dataset.defect_types[:4] == ("burnt", "breakage", "spot", "hole")
    assert len(dataset) == 4
    by_path = {dataset[index].image_path: dataset[index] for index in range(len(dataset))}
    for path, types in expected.items():
        item = by_path[path]
        assert torch.equal(item.gt_type_mask, torch.from_numpy(types)), path
        # Stray ids stay anomalous: the binary mask is anomalib's binarised mask.
        assert torch.equal(item.gt_mask, item.gt_type_mask > 0)
    normal = next(item for path, item in by_path.items() if "Normal" in path)
    assert not normal.gt_type_mask.any()
    assert dataset.samples.set_index("image_path").defect_type[next(iter(expected))] == "spot,breakage"


def test_datamodule_uses_the_official_split(tmp_path, write_visa):
    write_visa(tmp_path, {"cashew": CASHEW, "candle": {"000": ("other", {8: (0, 4, 0, 4)})}})
    datamodule = TypedVisa(root=tmp_path, category="cashew", num_workers=0)
    datamodule.prepare_data()
    datamodule.setup()
    assert len(datamodule.train_data) == 2
    assert not datamodule.train_data.has_anomalous
    assert len(datamodule.test_data) == 4
    assert datamodule.defect_types == knowledge.vocabulary("visa", "cashew")


@pytest.mark.parametrize("prepared_under", ["root", "child"])
def test_prepared_visa_pytorch_copy_is_refused(tmp_path, write_image, prepared_under):
    prepared = tmp_path / "visa_pytorch"
    for folder in ("train/good", "test/good", "test/bad", "ground_truth/bad"):
        write_image(prepared / "cashew" / folder / "000.png")
    root = prepared if prepared_under == "root" else tmp_path
    with pytest.raises(DatasetLayoutError, match="visa_pytorch") as error:
        TypedVisa(root=root, category="cashew").prepare_data()
    assert "raw VisA release" in str(error.value)
    with pytest.raises(DatasetLayoutError, match="binarised"):
        TypedVisaDataset(root, "cashew")


def test_missing_or_broken_files_are_named(tmp_path, write_visa):
    with pytest.raises(DatasetNotFoundError, match="amazon-science/spot-diff") as error:
        TypedVisa(root=tmp_path, category="cashew").prepare_data()
    assert str(tmp_path / "cashew" / "Data") in str(error.value)

    write_visa(tmp_path, {"cashew": {"000": ("melted chocolate", {1: (0, 4, 0, 4)})}})
    with pytest.raises(DatasetLayoutError, match="melted chocolate") as error:
        TypedVisaDataset(tmp_path, "cashew")
    assert str(tmp_path / "cashew" / "image_anno.csv") in str(error.value)

    (tmp_path / "split_csv" / "1cls.csv").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"1cls\.csv"):
        TypedVisaDataset(tmp_path, "cashew")
