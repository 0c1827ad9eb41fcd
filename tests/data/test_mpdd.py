import pytest
import torch

from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.errors import DatasetNotFoundError
from anomalib_dapo.data.mpdd import TypedMPDD, TypedMPDDDataset

RUST, SCRATCH = 1, 2  # metal_plate's vocabulary is ("rust", "scratch")


def test_folders_map_to_types_pixel_by_pixel(tmp_path, defect_tree):
    expected = defect_tree(tmp_path / "metal_plate", {"good": 2, "major_rust": 2, "scratches": 2, "total_rust": 2})
    dataset = TypedMPDDDataset(tmp_path, "metal_plate", split="test")
    assert dataset.defect_types == ("rust", "scratch")
    types = {"good": 0, "major_rust": RUST, "scratches": SCRATCH, "total_rust": RUST}
    assert len(dataset) == 8
    for index in range(len(dataset)):
        item = dataset[index]
        want = torch.from_numpy(expected[item.image_path]).long() * types[dataset.samples.label[index]]
        assert torch.equal(item.gt_type_mask, want)


def test_datamodule_serves_typed_batches(tmp_path, defect_tree):
    defect_tree(tmp_path / "tubes", {"good": 1, "flattening": 2})
    datamodule = TypedMPDD(root=tmp_path, category="tubes", eval_batch_size=8, num_workers=0)
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.defect_types == ("flattening",)
    batch = next(iter(datamodule.test_dataloader()))
    assert isinstance(batch, TypedImageBatch)
    assert sorted(batch.gt_type_mask.amax(dim=(1, 2)).tolist()) == [0, 1, 1]


def test_missing_category_never_downloads(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        TypedMPDD(root=tmp_path / "MPDD", category="tubes").prepare_data()
    assert str(tmp_path / "MPDD" / "tubes") in str(error.value)
    assert "github.com/stepanje/MPDD" in str(error.value)
    with pytest.raises(DatasetNotFoundError, match="tubes"):
        TypedMPDDDataset(tmp_path, "tubes")
