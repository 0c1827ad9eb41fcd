from pathlib import Path

import numpy as np
import pytest
import torch

from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.errors import DatasetLayoutError, DatasetNotFoundError
from anomalib_dapo.data.folder import DefectFolder, DefectFolderDataset
from tiny import ONE_DISC


def items_by_name(dataset):
    return {f"{item.image_path.split('/')[-2]}/{item.image_path.split('/')[-1]}": item for item in dataset}


def test_binary_masks_typed_by_folder(tmp_path, write_image, write_mask):
    root = tmp_path / "parts"
    for name in ("a.png", "b.png"):
        write_image(root / "good" / name)
    write_image(root / "scratch" / "s1.png")
    write_image(root / "scratch" / "s2.png")
    write_image(root / "hole" / "h1.png")
    scratch1 = write_mask(root / "ground_truth" / "scratch" / "s1_mask.png", {255: (0, 3, 0, 16)})
    scratch2 = write_mask(root / "ground_truth" / "scratch" / "s2.png", {1: (5, 6, 0, 16)})
    hole = write_mask(root / "ground_truth" / "hole" / "h1_mask.png", {255: (4, 8, 4, 8)})

    dataset = DefectFolderDataset(root)
    assert dataset.defect_types == ("hole", "scratch")
    assert len(dataset) == 5
    items = items_by_name(dataset)
    assert torch.equal(items["scratch/s1.png"].gt_type_mask, torch.from_numpy(scratch1 > 0).long() * 2)
    assert torch.equal(items["scratch/s2.png"].gt_type_mask, torch.from_numpy(scratch2 > 0).long() * 2)
    assert torch.equal(items["hole/h1.png"].gt_type_mask, torch.from_numpy(hole > 0).long())
    assert not items["good/a.png"].gt_type_mask.any()


def test_the_images_anomalib_reads_are_read_and_other_files_skipped(tmp_path, write_image, write_mask):
    root = tmp_path / "parts"
    write_image(root / "good" / "a.webp")  # anomalib's folder datasets read every image file torchvision names
    write_image(root / "good" / "b.PNG")
    (root / "good" / "notes.txt").write_text("not an image")
    write_image(root / "dent" / "d.ppm")
    write_mask(root / "ground_truth" / "dent" / "d_mask.png", {255: (0, 4, 0, 16)})
    dataset = DefectFolderDataset(root)
    assert sorted(items_by_name(dataset)) == ["dent/d.ppm", "good/a.webp", "good/b.PNG"]


def test_indexed_palette_masks_with_a_name_table(tmp_path, write_image, write_mask):
    root, masks = tmp_path / "parts", tmp_path / "masks"
    write_image(root / "good" / "a.png")
    write_image(root / "bad" / "x.png")
    # ids 1 and 3 are both "scratch"; id 7 is not in the table and borders the dent region.
    write_mask(
        masks / "bad" / "x.png", {1: (0, 2, 0, 8), 3: (0, 2, 8, 16), 2: (6, 10, 6, 10), 7: (10, 11, 6, 10)}, True
    )
    dataset = DefectFolderDataset(root, mask_root=masks, mask_ids={1: "scratch", 2: "dent", 3: "scratch"})
    assert dataset.defect_types == ("scratch", "dent")
    want = np.zeros((16, 16), dtype=np.int64)
    want[0:2, :] = 1
    want[6:11, 6:10] = 2
    item = items_by_name(dataset)["bad/x.png"]
    assert torch.equal(item.gt_type_mask, torch.from_numpy(want))
    assert dataset.samples.set_index("label").defect_type["bad"] == "scratch,dent"


def test_datamodule_serves_the_labelled_set(tmp_path, write_image, write_mask):
    root = tmp_path / "parts"
    write_image(root / "good" / "a.png")
    write_image(root / "dent" / "d.png")
    write_mask(root / "ground_truth" / "dent" / "d_mask.png", {255: (1, 4, 1, 4)})
    datamodule = DefectFolder(root, eval_batch_size=2)
    assert datamodule.defect_types == ("dent",)
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.category == "parts"
    assert len(datamodule.train_data) == len(datamodule.test_data) == 2
    batch = next(iter(datamodule.test_dataloader()))
    assert isinstance(batch, TypedImageBatch)
    assert batch.gt_type_mask.sum() == 9


def test_errors_name_the_path(tmp_path, write_image, write_mask):
    with pytest.raises(DatasetNotFoundError, match="missing-folder"):
        DefectFolder(tmp_path / "missing-folder").prepare_data()

    root = tmp_path / "parts"
    write_image(root / "good" / "a.png")
    write_image(root / "dent" / "d.png")
    with pytest.raises(DatasetNotFoundError) as error:
        DefectFolderDataset(root)
    assert str(root / "ground_truth" / "dent") in str(error.value)

    write_mask(root / "ground_truth" / "dent" / "d.png", {9: (1, 4, 1, 4)}, palette=True)
    with pytest.raises(DatasetLayoutError, match=r"mask ids \[9\] are none of mask_ids \[1\]"):
        DefectFolderDataset(root, mask_ids={1: "dent"})


def test_runs_are_named_after_the_dataset_folder(tmp_path, write_image, write_mask):
    for parts in ("parts_a", "parts_b"):
        write_image(tmp_path / parts / "test" / "good" / "a.png")
        write_image(tmp_path / parts / "test" / "dent" / "d.png")
        write_mask(tmp_path / parts / "ground_truth" / "dent" / "d_mask.png", {255: (1, 4, 1, 4)})
    names = {
        DefectFolder(tmp_path / p / "test", mask_root=tmp_path / p / "ground_truth").category
        for p in ("parts_a", "parts_b")
    }
    assert names == {"parts_a", "parts_b"}
    assert (
        DefectFolderDataset(tmp_path / "parts_a" / "test", mask_root=tmp_path / "parts_a" / "ground_truth").category
        == "parts_a"
    )
    assert DefectFolder(tmp_path / "parts_a").category == "parts_a"


def test_an_mvtec_layout_category_is_read_as_it_is(tmp_path, synthetic):
    """It was refused with "mask folder not found: <category>/ground_truth/test"."""
    data = synthetic(**ONE_DISC)
    datamodule = DefectFolder(data / "disc")
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.category == "disc"
    assert datamodule.defect_types == ("hole", "missing", "scratch", "stain")
    samples = datamodule.test_data.samples
    assert sorted(samples.label) == ["good", "hole", "missing", "scratch", "stain"]
    assert all(Path(path).parent.parent == data / "disc/test" for path in samples.image_path)


def test_no_validation_split_keeps_the_calibration_of_the_weights(tmp_path, write_image, write_mask, tiny_checkpoint):
    """``val_split_mode none`` failed with "AttributeError: ... no attribute 'val_data'"."""
    from anomalib.engine import Engine

    from anomalib_dapo import Dapo
    from tiny import TINY

    root = tmp_path / "parts"
    write_image(root / "good" / "a.png")
    write_image(root / "dent" / "d.png")
    write_mask(root / "ground_truth" / "dent" / "d_mask.png", {255: (1, 4, 1, 4)})
    datamodule = DefectFolder(root, val_split_mode="none")
    datamodule.setup()
    assert datamodule.val_dataloader() == []
    assert len(datamodule.test_data) == 2
    engine = Engine(logger=False, default_root_dir=tmp_path / "results", accelerator="cpu", devices=1)
    (metrics,) = engine.test(model=Dapo(weights=str(tiny_checkpoint), **TINY), datamodule=datamodule)
    assert 0.0 <= metrics["image_AUROC"] <= 1.0
