import json

import pytest
import torch

from anomalib_dapo import knowledge
from anomalib_dapo.data.errors import DatasetNotFoundError
from anomalib_dapo.data.realiad import TypedRealIAD, TypedRealIADDataset

SCRATCH, MISSING = 2, 3  # pcb's vocabulary: contamination, scratch, missing, foreign


def write_realiad(root, write_image, write_mask, json_location="realiad_jsons/pcb.json"):
    """Real-IAD pcb at resolution 1024; returns {image path: expected type mask} of the test split."""
    images = root / "realiad_1024" / "pcb"
    expected = {}

    def sample(folder, number, view, anomaly_class, box=None, type_index=0):
        stem = f"pcb_{number:04d}_{folder.replace('/', '_')}_C{view}_20231021130155"
        image = write_image(images / folder / f"S{number:04d}" / f"{stem}.jpg")
        mask_path = None
        mask = torch.zeros(16, 16, dtype=torch.int64)
        if box is not None:
            mask_path = f"{folder}/S{number:04d}/{stem}.png"
            mask = torch.from_numpy(write_mask(images / mask_path, {255: box}) > 0).long() * type_index
        expected[str(image)] = mask
        relative = f"{folder}/S{number:04d}/{stem}.jpg"
        return {"category": "pcb", "anomaly_class": anomaly_class, "image_path": relative, "mask_path": mask_path}

    train = [sample("OK", 1, view, "OK") for view in (1, 2)]
    test = [
        sample("OK", 2, 1, "OK"),
        sample("NG/HS", 3, 1, "HS", (2, 5, 2, 5), SCRATCH),
        sample("NG/HS", 3, 2, "OK"),  # a view under NG/ that shows no defect: normal
        sample("NG/QS", 4, 1, "QS", (8, 12, 0, 16), MISSING),
    ]
    expected = {path: mask for path, mask in expected.items() if "_0001_" not in path}
    json_file = root / json_location
    json_file.parent.mkdir(parents=True, exist_ok=True)
    json_file.write_text(json.dumps({"meta": {"prefix": "", "normal_class": "OK"}, "train": train, "test": test}))
    return expected


def test_types_come_from_anomaly_class_not_folder(tmp_path, write_image, write_mask):
    expected = write_realiad(tmp_path, write_image, write_mask)
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


def test_anomalib_json_location_and_normal_test_images_kept(tmp_path, write_image, write_mask):
    write_realiad(tmp_path, write_image, write_mask, json_location="realiad_jsons/realiad_jsons/pcb.json")
    datamodule = TypedRealIAD(root=tmp_path, category="pcb", num_workers=0)
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.defect_types == ("contamination", "scratch", "missing", "foreign")
    assert len(datamodule.test_data) == 4
    assert datamodule.test_data.has_normal


def test_missing_files_are_named(tmp_path, write_image, write_mask):
    with pytest.raises(DatasetNotFoundError, match=r"huggingface\.co/datasets/REAL-IAD") as error:
        TypedRealIAD(root=tmp_path, category="pcb").prepare_data()
    assert str(tmp_path / "realiad_1024" / "pcb") in str(error.value)

    write_realiad(tmp_path, write_image, write_mask, json_location="elsewhere/pcb.json")
    with pytest.raises(DatasetNotFoundError) as error:
        TypedRealIADDataset(tmp_path, "pcb")
    assert str(tmp_path / "realiad_jsons" / "pcb.json") in str(error.value)
    assert str(tmp_path / "realiad_jsons" / "realiad_jsons" / "pcb.json") in str(error.value)
    assert len(TypedRealIADDataset(tmp_path, "pcb", json_path="elsewhere/{category}.json")) == 6

    missing = next((tmp_path / "realiad_1024" / "pcb" / "NG" / "QS").rglob("*.jpg"))
    missing.unlink()
    with pytest.raises(DatasetNotFoundError, match=missing.name):
        TypedRealIADDataset(tmp_path, "pcb", json_path="elsewhere/{category}.json")
