from pathlib import Path

import pytest
from anomalib.data import AnomalibDataModule, MVTecAD
from jsonargparse import ArgumentParser

from anomalib_dapo import knowledge
from anomalib_dapo.data import DefectFolder, SyntheticDefects
from anomalib_dapo.data.cross import CrossDataset
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.errors import DatasetNotFoundError
from anomalib_dapo.data.registry import typed_dataset


def union_index(dataset, defect_type):
    return knowledge.vocabulary(dataset).index(defect_type) + 1


def type_of_item(item):
    return int(item.gt_type_mask.max())


@pytest.fixture
def mvtec_and_mpdd(tmp_path, defect_tree):
    mvtec, mpdd = tmp_path / "MVTecAD", tmp_path / "MPDD"
    defect_tree(mvtec / "bottle", {"good": 2, "broken_large": 1, "contamination": 1})
    defect_tree(mvtec / "screw", {"good": 1, "manipulated_front": 1, "scratch_head": 2})
    defect_tree(mpdd / "tubes", {"good": 2, "flattening": 3})
    return mvtec, mpdd


def test_train_is_every_source_test_split_with_union_ids(mvtec_and_mpdd):
    mvtec, mpdd = mvtec_and_mpdd
    datamodule = CrossDataset("MVTec-AD", mvtec, "mpdd", mpdd, "tubes", train_batch_size=4)
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.category == "tubes"
    assert datamodule.name == "CrossDataset"
    assert datamodule.train_defect_types == knowledge.vocabulary("mvtec_ad")
    assert datamodule.defect_types == ("flattening",)

    train = datamodule.train_data
    assert len(train) == 8  # both categories' test splits, normal images included
    assert sorted(train.samples.label_index.tolist()) == [0, 0, 0, 1, 1, 1, 1, 1]
    expected = {
        "broken_large": union_index("mvtec_ad", "broken"),
        "contamination": union_index("mvtec_ad", "contamination"),
        "manipulated_front": union_index("mvtec_ad", "bent"),
        "scratch_head": union_index("mvtec_ad", "scratch"),
        "good": 0,
    }
    for index in range(len(train)):
        item = train[index]
        label = train.samples.label[index]
        assert set(item.gt_type_mask.unique().tolist()) <= {0, expected[label]}
        assert type_of_item(item) == expected[label]

    test = datamodule.test_data
    assert len(test) == 5
    assert all("MPDD" in path for path in test.samples.image_path)
    assert sorted(type_of_item(item) for item in test) == [0, 0, 1, 1, 1]
    assert len(datamodule.val_data) == 5
    batch = next(iter(datamodule.train_dataloader()))
    assert isinstance(batch, TypedImageBatch)
    assert batch.gt_type_mask.shape == (4, 16, 16)


def test_source_categories_subset(mvtec_and_mpdd):
    mvtec, mpdd = mvtec_and_mpdd
    datamodule = CrossDataset("mvtec_ad", mvtec, "mpdd", mpdd, "tubes", source_categories=["screw"])
    datamodule.setup()
    assert len(datamodule.train_data) == 4
    assert type_of_item(datamodule.train_data[0]) in {
        0,
        union_index("mvtec_ad", "bent"),
        union_index("mvtec_ad", "scratch"),
    }


def test_visa_source_keeps_each_category_mask_ids(tmp_path, write_visa, defect_tree):
    # capsules id 3 is scratch, cashew id 5 is small holes: both must land on their union index.
    write_visa(
        tmp_path / "visa",
        {"capsules": {"000": ("scratch", {3: (0, 4, 0, 4)})}, "cashew": {"000": ("small holes", {5: (0, 4, 0, 4)})}},
    )
    defect_tree(tmp_path / "MVTecAD" / "bottle", {"good": 1, "contamination": 1})
    datamodule = CrossDataset("visa", tmp_path / "visa", "mvtec_ad", tmp_path / "MVTecAD", "bottle")
    datamodule.setup()
    train = datamodule.train_data
    assert len(train) == 4  # one anomaly and one normal test image per category
    types = {
        train.samples.category[i]: type_of_item(train[i]) for i in range(len(train)) if train.samples.label_index[i]
    }
    assert types == {"capsules": union_index("visa", "scratch"), "cashew": union_index("visa", "hole")}
    assert datamodule.defect_types == ("broken", "contamination")


def test_missing_data_and_bad_names(tmp_path, mvtec_and_mpdd):
    mvtec, mpdd = mvtec_and_mpdd
    with pytest.raises(DatasetNotFoundError, match="MVTec-AD categories") as error:
        CrossDataset("mvtec_ad", tmp_path / "nowhere", "mpdd", mpdd, "tubes").prepare_data()
    assert str(tmp_path / "nowhere") in str(error.value)
    with pytest.raises(DatasetNotFoundError) as error:
        CrossDataset("mvtec_ad", mvtec, "mpdd", mpdd, "connector").prepare_data()
    assert str(mpdd / "connector") in str(error.value)
    with pytest.raises(knowledge.UnknownCategoryError):
        CrossDataset("mvtec_ad", mvtec, "mpdd", mpdd, "tubez")
    with pytest.raises(knowledge.UnknownDatasetError):
        CrossDataset("mvtec", mvtec, "nope", mpdd, "tubes")


def test_registry_builds_a_checked_typed_dataset(tmp_path, defect_tree):
    defect_tree(tmp_path / "bottle", {"good": 1, "broken_small": 1})
    dataset = typed_dataset("mvtec_ad", tmp_path, "bottle", "test")
    assert dataset.defect_types == knowledge.vocabulary("mvtec_ad", "bottle")
    with pytest.raises(DatasetNotFoundError, match=r"mvtec\.com"):
        typed_dataset("mvtec_ad", tmp_path, "cable", "test")


def test_generated_products_as_source_and_target(tmp_path, synthetic):
    root = synthetic(n_train=1, n_test_good=1, n_test_per_defect=1, image_size=32)
    datamodule = CrossDataset("synthetic", root, "synthetic", root, "tile", source_categories=["disc", "grid"])
    datamodule.prepare_data()
    datamodule.setup()
    source_types = set(knowledge.vocabulary("synthetic", "disc") + knowledge.vocabulary("synthetic", "grid"))
    want = {0} | {union_index("synthetic", defect_type) for defect_type in source_types}
    assert {type_of_item(item) for item in datamodule.train_data} == want
    assert {type_of_item(item) for item in datamodule.test_data} == {0, *range(1, len(datamodule.defect_types) + 1)}


def test_a_registry_datamodule_source_with_categories_prepares_its_data_then_reads_them(
    tmp_path, write_image, write_mask
):
    """The demo's configuration: the synthetic datamodule on both sides writes its images in ``prepare_data``, and
    the source's categories are then read as those of the dataset name at its root."""
    small = {"image_size": 32, "n_train": 1, "n_test_good": 1, "n_test_per_defect": 1}
    target = SyntheticDefects(tmp_path / "target", "tile", seed=1, **small)
    source = SyntheticDefects(tmp_path / "source", seed=0, **small)
    datamodule = CrossDataset(source, target=target, source_categories=["disc", "grid", "tile"])
    datamodule.prepare_data()
    datamodule.setup()
    by_name = CrossDataset("synthetic", tmp_path / "source", "synthetic", tmp_path / "target", "tile")
    by_name.setup()
    assert datamodule.train_defect_types == by_name.train_defect_types
    assert datamodule.train_data.samples.equals(by_name.train_data.samples)
    assert datamodule.test_data.samples.equals(by_name.test_data.samples)
    parts = DefectFolder(write_parts(tmp_path / "parts", write_image, write_mask, ["dent"]))
    with pytest.raises(ValueError, match="categories of a registry dataset; a source DefectFolder"):
        CrossDataset(parts, target=target, source_categories=["disc"])


def write_parts(root, write_image, write_mask, defects):
    """A DefectFolder: two normal images and one image per defect, each with a box on its own row."""
    for index in range(2):
        write_image(root / "good" / f"{index}.png")
    for row, defect in enumerate(defects):
        write_image(root / defect / "0.png")
        write_mask(root / "ground_truth" / defect / "0_mask.png", {255: (row, row + 1, 0, 16)})
    return root


def test_own_folders_as_source_and_target(tmp_path, write_image, write_mask):
    parts_a = write_parts(tmp_path / "parts_a", write_image, write_mask, ["scratch", "dent"])
    parts_b = write_parts(tmp_path / "parts_b", write_image, write_mask, ["crack"])
    datamodule = CrossDataset(source=DefectFolder(parts_a), target=DefectFolder(parts_b), train_batch_size=4)
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.train_defect_types == ("dent", "scratch")
    assert datamodule.defect_types == ("crack",)
    assert datamodule.category == "parts_b"
    assert all("parts_a" in path for path in datamodule.train_data.samples.image_path)
    assert all("parts_b" in path for path in datamodule.test_data.samples.image_path)
    train_types = {Path(item.image_path).parent.name: type_of_item(item) for item in datamodule.train_data}
    assert train_types == {"good": 0, "dent": 1, "scratch": 2}
    assert sorted(type_of_item(item) for item in datamodule.test_data) == [0, 0, 1]
    assert len(datamodule.val_data) == 3


def test_own_folder_target_after_a_knowledge_base_source(mvtec_and_mpdd, tmp_path, write_image, write_mask):
    mvtec, _ = mvtec_and_mpdd
    parts = write_parts(tmp_path / "parts", write_image, write_mask, ["dent"])
    datamodule = CrossDataset("mvtec_ad", mvtec, DefectFolder(parts))
    datamodule.setup()
    assert datamodule.train_defect_types == knowledge.vocabulary("mvtec_ad")
    assert len(datamodule.train_data) == 8
    assert datamodule.defect_types == ("dent",)


def test_one_config_names_both_folders(tmp_path, write_image, write_mask):
    """The datamodule of an ``anomalib train --config`` file, parsed as anomalib's CLI parses it."""
    write_parts(tmp_path / "parts_a", write_image, write_mask, ["scratch"])
    write_parts(tmp_path / "parts_b", write_image, write_mask, ["crack"])
    config = {
        "class_path": "anomalib_dapo.data.CrossDataset",
        "init_args": {
            "source": {
                "class_path": "anomalib_dapo.data.DefectFolder",
                "init_args": {"root": str(tmp_path / "parts_a")},
            },
            "target": {
                "class_path": "anomalib_dapo.data.DefectFolder",
                "init_args": {"root": str(tmp_path / "parts_b")},
            },
        },
    }
    parser = ArgumentParser()
    parser.add_subclass_arguments(AnomalibDataModule, "data")
    datamodule = parser.instantiate_classes(parser.parse_object({"data": config})).data
    assert isinstance(datamodule.source, DefectFolder)
    assert datamodule.defect_types == ("crack",)
    assert datamodule.train_defect_types == ("scratch",)


def test_sides_are_checked(tmp_path, write_image, write_mask, mvtec_and_mpdd):
    mvtec, _ = mvtec_and_mpdd
    parts = DefectFolder(write_parts(tmp_path / "parts", write_image, write_mask, ["dent"]))
    with pytest.raises(ValueError, match="give target_root and target_category"):
        CrossDataset("mvtec_ad", mvtec, "mpdd")
    with pytest.raises(ValueError, match="give source_root"):
        CrossDataset("mvtec_ad", target=parts)
    with pytest.raises(ValueError, match="has its own target_category"):
        CrossDataset("mvtec_ad", mvtec, parts, target_category="tubes")
    with pytest.raises(TypeError, match="typed datamodule"):
        CrossDataset(MVTecAD(mvtec, "bottle"), target=parts)


@pytest.mark.parametrize("resolution", [256, 512, 1024])
def test_realiad_at_each_resolution(tmp_path, write_realiad, mvtec_and_mpdd, resolution):
    mvtec, _ = mvtec_and_mpdd
    write_realiad(tmp_path / "Real-IAD", resolution=resolution)
    datamodule = CrossDataset("mvtec_ad", mvtec, "real_iad", tmp_path / "Real-IAD", "pcb", resolution=resolution)
    datamodule.prepare_data()
    datamodule.setup()
    # the fixture's test split: two normal views, a scratch (pcb's type 2) and a missing part (type 3)
    assert sorted(type_of_item(item) for item in datamodule.test_data) == [0, 0, 2, 3]
    as_source = CrossDataset("real_iad", tmp_path / "Real-IAD", "mvtec_ad", mvtec, "bottle", resolution=resolution)
    as_source.prepare_data()
    as_source.setup()
    assert len(as_source.train_data) == 4  # a source trains on its test split, anomalies with their masks
