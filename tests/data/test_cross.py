import pytest

from anomalib_dapo import knowledge
from anomalib_dapo.data.cross import CrossDataset, typed_dataset
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.errors import DatasetNotFoundError
from anomalib_dapo.data.synthetic import generate_synthetic_dataset


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


def test_generated_products_as_source_and_target(tmp_path):
    root = generate_synthetic_dataset(
        tmp_path / "generated", n_train=1, n_test_good=1, n_test_per_defect=1, image_size=32
    )
    datamodule = CrossDataset("synthetic", root, "synthetic", root, "tile", source_categories=["disc", "grid"])
    datamodule.prepare_data()
    datamodule.setup()
    source_types = set(knowledge.vocabulary("synthetic", "disc") + knowledge.vocabulary("synthetic", "grid"))
    want = {0} | {union_index("synthetic", defect_type) for defect_type in source_types}
    assert {type_of_item(item) for item in datamodule.train_data} == want
    assert {type_of_item(item) for item in datamodule.test_data} == {0, *range(1, len(datamodule.defect_types) + 1)}
