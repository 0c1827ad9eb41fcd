import pytest
import torch

from anomalib_dapo import knowledge
from anomalib_dapo.data.errors import DatasetNotFoundError
from anomalib_dapo.data.realiad import TypedRealIAD, TypedRealIADDataset


def test_types_come_from_anomaly_class_not_folder(tmp_path, write_realiad):
    expected = write_realiad(tmp_path)
    dataset = TypedRealIADDataset(tmp_path, "pcb", split="test")
    assert (
        dataset.defect_types
        == knowledge.vocabulary("real_iad", "pcb")
        == ("contamination", "scratch", "missing", "foreign")
    )
    assert len(dataset) == 4
    assert sorted(dataset.samples.label_index) == [0, 0, 1, 1]
    for index in range(len(dataset)):
        item = dataset[index]
        assert torch.equal(item.gt_type_mask, expected[item.image_path]), item.image_path
    ok_view_under_ng = dataset.samples[dataset.samples.image_path.str.contains("_0003_NG_HS_C2_")]
    assert ok_view_under_ng.label_index.tolist() == [0]
    assert len(TypedRealIADDataset(tmp_path, "pcb", split="train")) == 2


def test_anomalib_json_location_and_normal_test_images_kept(tmp_path, write_realiad):
    write_realiad(tmp_path, json_location="realiad_jsons/realiad_jsons/pcb.json")
    datamodule = TypedRealIAD(root=tmp_path, category="pcb", num_workers=0)
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.defect_types == ("contamination", "scratch", "missing", "foreign")
    assert len(datamodule.test_data) == 4
    assert datamodule.test_data.has_normal


def test_missing_files_are_named(tmp_path, write_realiad):
    with pytest.raises(DatasetNotFoundError, match=r"huggingface\.co/datasets/REAL-IAD") as error:
        TypedRealIAD(root=tmp_path, category="pcb").prepare_data()
    assert str(tmp_path / "realiad_1024" / "pcb") in str(error.value)

    write_realiad(tmp_path, json_location="elsewhere/pcb.json")
    with pytest.raises(DatasetNotFoundError) as error:
        TypedRealIADDataset(tmp_path, "pcb")
    assert str(tmp_path / "realiad_jsons" / "pcb.json") in str(error.value)
    assert str(tmp_path / "realiad_jsons" / "realiad_jsons" / "pcb.json") in str(error.value)
    assert len(TypedRealIADDataset(tmp_path, "pcb", json_path="elsewhere/{category}.json")) == 6

    missing = next((tmp_path / "realiad_1024" / "pcb" / "NG" / "QS").rglob("*.jpg"))
    missing.unlink()
    with pytest.raises(DatasetNotFoundError, match=missing.name):
        TypedRealIADDataset(tmp_path, "pcb", json_path="elsewhere/{category}.json")
