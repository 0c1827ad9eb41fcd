import pytest
import torch

from anomalib_dapo import knowledge
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.errors import DatasetLayoutError, DatasetNotFoundError
from anomalib_dapo.data.mad import MADReal, MADRealDataset, MADSim, MADSimDataset


def check_type_masks(dataset, expected):
    assert len(dataset) == len(expected)
    for index in range(len(dataset)):
        item = dataset[index]
        sample = dataset.samples.iloc[index]
        type_index = dataset.type_index(sample.defect_type) if sample.defect_type else 0
        want = torch.from_numpy(expected[item.image_path]).long() * type_index
        assert torch.equal(item.gt_type_mask, want), item.image_path
        assert torch.equal(item.gt_mask, want > 0)


def test_mad_sim_pairs_unpadded_masks_by_stem(tmp_path, defect_tree):
    # 12 burrs images: "10.png" sorts after "1.png" but "10_mask.png" before "1_mask.png".
    expected = defect_tree(tmp_path / "01Gorilla", {"good": 2, "Burrs": 12, "Missing": 1, "Stains": 1}, padded=False)
    dataset = MADSimDataset(tmp_path, "01Gorilla", split="test")
    assert dataset.defect_types == knowledge.vocabulary("mad_sim", "01Gorilla") == ("burrs", "missing", "stains")
    assert set(dataset.samples.defect_type) == {"", "burrs", "missing", "stains"}
    check_type_masks(dataset, expected)
    assert len(MADSimDataset(tmp_path, "01Gorilla", split="train")) == 2


def test_mad_real_masks_without_suffix_and_no_train_folder(tmp_path, defect_tree):
    expected = defect_tree(tmp_path / "Bird", {"good": 1, "Missing": 11}, train=0, mask_suffix="", padded=False)
    dataset = MADRealDataset(tmp_path, "Bird", split="test")
    assert dataset.defect_types == ("missing",)
    check_type_masks(dataset, expected)

    datamodule = MADReal(root=tmp_path, category="Bird", eval_batch_size=4, num_workers=0)
    datamodule.prepare_data()
    datamodule.setup()
    assert len(datamodule.train_data) == 0
    assert datamodule.defect_types == ("missing",)
    batch = next(iter(datamodule.test_dataloader()))
    assert isinstance(batch, TypedImageBatch)
    assert batch.gt_type_mask.shape == (4, 16, 16)


def test_datamodule_defaults_and_types(tmp_path, defect_tree):
    defect_tree(tmp_path / "01Gorilla", {"good": 1, "Stains": 2})
    datamodule = MADSim(root=tmp_path, num_workers=0)
    assert datamodule.category == "01Gorilla"
    assert datamodule.defect_types == ("burrs", "missing", "stains")
    datamodule.setup()
    assert len(datamodule.train_data) == 2
    assert len(datamodule.test_data) == 3


def test_missing_toy_names_path_layout_and_source(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        MADSim(root=tmp_path, category="02Unicorn").prepare_data()
    message = str(error.value)
    assert str(tmp_path / "02Unicorn") in message
    assert "ground_truth/<Defect>/<N>_mask.png" in message
    assert "github.com/EricLee0224/PAD" in message
    with pytest.raises(DatasetNotFoundError, match="02Unicorn"):
        MADSimDataset(tmp_path, "02Unicorn")


def test_missing_mask_and_unknown_folder_are_layout_errors(tmp_path, defect_tree, write_image):
    defect_tree(tmp_path / "Bird", {"good": 1, "Missing": 2}, mask_suffix="")
    write_image(tmp_path / "Bird" / "test" / "Missing" / "7.png")
    with pytest.raises(DatasetLayoutError, match=r"no mask for 7\.png"):
        MADRealDataset(tmp_path, "Bird")

    defect_tree(tmp_path / "Pig", {"good": 1, "Cracks": 1})
    with pytest.raises(DatasetLayoutError, match="Cracks") as error:
        MADRealDataset(tmp_path, "Pig")
    assert str(tmp_path / "Pig") in str(error.value)
