"""Tests of the procedural synthetic dataset: determinism, MVTec-AD layout, masks, no-overwrite rule, loading."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anomalib_dapo import knowledge
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.synthetic import (
    CATEGORIES,
    METADATA_FILE,
    SyntheticDefects,
    generate_synthetic_dataset,
    render_sample,
)

SMALL = {"n_train": 2, "n_test_good": 2, "n_test_per_defect": 2, "image_size": 64}
ALL_DEFECTS = [(category, defect) for category in CATEGORIES for defect in knowledge.raw_defects("synthetic", category)]


def _files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "data", **SMALL)


def test_same_seed_gives_identical_bytes(dataset_root: Path, tmp_path: Path) -> None:
    again = generate_synthetic_dataset(tmp_path / "again", **SMALL)
    assert _files(again) == _files(dataset_root)


def test_other_seed_changes_every_image(dataset_root: Path, tmp_path: Path) -> None:
    other = _files(generate_synthetic_dataset(tmp_path / "other", seed=1, **SMALL))
    reference = _files(dataset_root)
    assert other.keys() == reference.keys()
    images = [name for name in reference if name.endswith(".png") and "ground_truth" not in name]
    assert images
    assert all(other[name] != reference[name] for name in images)


def test_adding_categories_leaves_others_unchanged(dataset_root: Path, tmp_path: Path) -> None:
    alone = _files(generate_synthetic_dataset(tmp_path / "disc_only", categories=("disc",), **SMALL))
    together = _files(dataset_root)
    disc_files = {name: data for name, data in alone.items() if name.startswith("disc/")}
    assert disc_files
    assert all(together[name] == data for name, data in disc_files.items())


@pytest.mark.parametrize("category", CATEGORIES)
def test_layout_is_mvtec_ad(dataset_root: Path, category: str) -> None:
    defects = knowledge.raw_defects("synthetic", category)
    expected = {f"train/good/{i:03d}.png" for i in range(SMALL["n_train"])}
    expected |= {f"test/good/{i:03d}.png" for i in range(SMALL["n_test_good"])}
    for defect in defects:
        expected |= {f"test/{defect}/{i:03d}.png" for i in range(SMALL["n_test_per_defect"])}
        expected |= {f"ground_truth/{defect}/{i:03d}_mask.png" for i in range(SMALL["n_test_per_defect"])}
    folder = dataset_root / category
    assert {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()} == expected
    assert {path.name for path in (folder / "test").iterdir()} == {"good", *defects}

    size = (SMALL["image_size"], SMALL["image_size"])
    for name in expected:
        with Image.open(folder / name) as image:
            assert image.format == "PNG"
            assert image.size == size
            if name.startswith("ground_truth"):
                assert image.mode == "L"
                values = np.unique(np.asarray(image))
                assert set(values.tolist()) == {0, 255}, f"{name} must be binary and non-empty"
            else:
                assert image.mode == "RGB"


def test_metadata_records_parameters(dataset_root: Path) -> None:
    record = json.loads((dataset_root / METADATA_FILE).read_text())
    assert record["categories"] == list(CATEGORIES)
    assert record["seed"] == 0
    assert {key: record[key] for key in SMALL} == SMALL


@pytest.mark.parametrize(("category", "defect"), ALL_DEFECTS)
def test_defect_changes_exactly_its_mask(category: str, defect: str) -> None:
    for seed in range(4):
        normal, normal_mask = render_sample(category, None, 64, np.random.default_rng(seed))
        image, mask = render_sample(category, defect, 64, np.random.default_rng(seed))
        assert not normal_mask.any()
        assert mask.any()
        changed = (image != normal).any(axis=-1)
        assert not (changed & ~mask).any(), "pixels outside the mask changed"
        assert changed[mask].mean() > 0.9, "the mask marks pixels the defect did not change"


def test_defects_look_as_described() -> None:
    image, mask = render_sample("tile", "hole", 96, np.random.default_rng(3))
    assert image[mask].max() < 60, "a hole is a dark blob"
    image, mask = render_sample("disc", "missing", 96, np.random.default_rng(3))
    # The disc is blue; a missing piece shows the light grey background behind it.
    removed = image[mask].astype(float)
    assert removed.mean() > 150
    assert np.ptp(removed.mean(axis=0)) < 30
    _, scratch = render_sample("tile", "scratch", 96, np.random.default_rng(3))
    _, stain = render_sample("tile", "stain", 96, np.random.default_rng(3))
    assert scratch.sum() < stain.sum(), "a scratch is a thin line, a stain a patch"


def test_rejects_unknown_category_and_foreign_defect(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="has no 'hole'"):
        render_sample("grid", "hole", 64, np.random.default_rng(0))
    with pytest.raises(ValueError, match="Unknown synthetic category"):
        generate_synthetic_dataset(tmp_path / "data", categories=("bottle",))
    with pytest.raises(ValueError, match="Unknown synthetic category"):
        SyntheticDefects(root=tmp_path / "data", category="bottle")
    assert not (tmp_path / "data").exists()


def test_matching_dataset_is_reused_not_rewritten(tmp_path: Path) -> None:
    params = {"categories": ("grid",), "n_train": 1, "n_test_good": 1, "n_test_per_defect": 1, "image_size": 32}
    root = generate_synthetic_dataset(tmp_path / "data", **params)
    stamps = {path: path.stat().st_mtime_ns for path in root.rglob("*")}
    assert generate_synthetic_dataset(root, **params) == root
    assert {path: path.stat().st_mtime_ns for path in root.rglob("*")} == stamps


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    params = {"categories": ("grid",), "n_train": 1, "n_test_good": 1, "n_test_per_defect": 1, "image_size": 32}
    root = generate_synthetic_dataset(tmp_path / "data", **params)
    before = _files(root)
    with pytest.raises(FileExistsError, match="Refusing to overwrite"):
        generate_synthetic_dataset(root, **{**params, "seed": 1})
    assert _files(root) == before

    foreign = tmp_path / "user_data"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_synthetic_dataset(foreign, **params)
    assert _files(foreign) == {"notes.txt": b"keep me"}
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == [], "staging folder left over"


def test_fills_an_empty_existing_folder(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    generate_synthetic_dataset(root, categories=("tile",), n_train=1, n_test_good=0, n_test_per_defect=1, image_size=32)
    assert (root / "tile" / "ground_truth" / "stain" / "000_mask.png").is_file()


def test_datamodule_loads_type_masks(tmp_path: Path) -> None:
    datamodule = SyntheticDefects(root=tmp_path, category="disc", eval_batch_size=4, **SMALL)
    datamodule.prepare_data()
    assert all((tmp_path / category / "train" / "good").is_dir() for category in CATEGORIES)
    datamodule.setup()
    assert datamodule.defect_types == ("scratch", "hole", "stain", "missing")

    seen = set()
    for index in range(len(datamodule.test_data)):
        item = datamodule.test_data[index]
        folder = Path(item.image_path).parent.name
        seen.add(folder)
        assert item.gt_type_mask.shape == (64, 64)
        assert torch.equal(item.gt_mask, item.gt_type_mask > 0)
        if folder == "good":
            assert item.gt_label == 0
            assert not item.gt_type_mask.any()
            continue
        assert item.gt_label == 1
        on_disk = torch.from_numpy(np.asarray(Image.open(item.mask_path)) > 0)
        expected = on_disk.long() * (datamodule.defect_types.index(folder) + 1)
        assert torch.equal(item.gt_type_mask, expected)
        if folder == "hole":
            assert set(item.gt_type_mask.unique().tolist()) == {0, 2}
    assert seen == {"good", "scratch", "hole", "stain", "missing"}

    batch = next(iter(datamodule.test_dataloader()))
    assert isinstance(batch, TypedImageBatch)
    assert batch.gt_type_mask.shape == (4, 64, 64)
    assert batch.image.shape == (4, 3, 64, 64)
