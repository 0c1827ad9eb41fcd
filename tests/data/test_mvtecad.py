import pytest
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torchvision.transforms.v2 import Compose, RandomHorizontalFlip, Resize
from torchvision.transforms.v2.functional import horizontal_flip, resize

from anomalib_dapo import knowledge
from anomalib_dapo.data import TypedImageBatch, TypedMVTecAD, TypedMVTecADDataset


def _dataset(root, augmentations=None) -> TypedMVTecADDataset:
    return TypedMVTecADDataset(
        root=root,
        category="disc",
        split="test",
        dataset="synthetic",
        augmentations=augmentations,
    )


def test_augmentations_move_the_type_mask_with_the_image(tmp_path, synthetic):
    root = synthetic(categories=("disc",), n_test_good=1)
    plain = _dataset(root)
    augmented = _dataset(root, Compose([RandomHorizontalFlip(p=1.0), Resize((32, 32))]))
    index = next(i for i in range(len(plain)) if plain.samples.iloc[i].defect_type == "hole")
    before, after = plain[index], augmented[index]
    expected = resize(horizontal_flip(before.gt_type_mask.unsqueeze(0)), [32, 32], interpolation=0).squeeze(0)
    assert torch.equal(after.gt_type_mask, expected)  # nearest: type ids stay integers of the vocabulary
    assert set(after.gt_type_mask.unique().tolist()) == {0, plain.type_index("hole")}
    assert torch.equal(after.gt_mask, after.gt_type_mask > 0)
    assert torch.allclose(after.image, resize(horizontal_flip(before.image), [32, 32], antialias=True), atol=1e-5)


def test_type_fields_survive_device_transfer_and_numpy(tmp_path, synthetic):
    dataset = _dataset(synthetic(categories=("disc",), n_test_good=1, n_test_per_defect=1))
    batch = TypedImageBatch.collate([dataset[i] for i in range(len(dataset))])
    moved = move_data_to_device(batch, torch.device("meta"))  # what Lightning does with a batch
    assert isinstance(moved, TypedImageBatch)
    assert moved.gt_type_mask.device.type == "meta"
    assert moved.gt_type_mask.shape == batch.gt_type_mask.shape
    numpy_batch = batch.to_numpy()
    assert (numpy_batch.gt_type_mask == batch.gt_type_mask.numpy()).all()


def test_unknown_category_points_to_defect_folder(tmp_path):
    with pytest.raises(knowledge.UnknownCategoryError, match=r"'widget' for MVTec-AD.*bottle.*DefectFolder"):
        TypedMVTecAD(root=tmp_path, category="widget")
    assert TypedMVTecAD(root=tmp_path, category="Bottle").defect_types == knowledge.vocabulary("mvtec_ad", "bottle")


def _bottle(root, defect_tree) -> dict:
    """MVTec-AD's bottle: two broken_large images and one contamination image, masks with row ``i`` foreground."""
    return defect_tree(root / "bottle", {"good": 1, "broken_large": 2, "contamination": 1})


def _bottle_dataset(root) -> TypedMVTecADDataset:
    return TypedMVTecADDataset(root=root, category="bottle", split="test", dataset="mvtec_ad")


def test_stray_mask_values_are_binarised_at_half_range_and_warned_once(tmp_path, defect_tree, caplog):
    import numpy as np
    from PIL import Image

    _bottle(tmp_path, defect_tree)
    noisy = tmp_path / "bottle/ground_truth/broken_large/001_mask.png"
    values = np.zeros((16, 16), np.uint8)
    values[1] = 255
    values[1, :3] = 253  # JPEG noise on both sides of the threshold
    values[5:7, :4] = 2
    values[9, 0] = 127
    Image.fromarray(values).save(noisy)
    with caplog.at_level("WARNING"):
        dataset = _bottle_dataset(tmp_path)
    (warning,) = [record.getMessage() for record in caplog.records if "0 and 255" in record.getMessage()]
    assert "1 of 3 masks" in warning and f"{noisy}: 12 pixels" in warning
    item = next(dataset[i] for i in range(len(dataset)) if dataset.samples.iloc[i].mask_path == str(noisy))
    assert torch.equal(item.gt_mask, torch.from_numpy(values >= 128))  # anomalib's reader: values > 0


def test_a_mask_of_another_size_is_refused_naming_both_files(tmp_path, defect_tree):
    import pytest
    from PIL import Image

    from anomalib_dapo.data.dataset_base import MaskSizeError

    _bottle(tmp_path, defect_tree)
    mask = tmp_path / "bottle/ground_truth/contamination/000_mask.png"
    Image.new("L", (20, 12)).save(mask)
    image = tmp_path / "bottle/test/contamination/000.png"
    with pytest.raises(MaskSizeError, match=rf"{mask} is 20×12 pixels but its image {image} is 16×16"):
        _bottle_dataset(tmp_path)


def test_a_truncated_mask_is_named(tmp_path, defect_tree):
    import pytest

    from anomalib_dapo.data.images import ImageReadError

    _bottle(tmp_path, defect_tree)
    mask = tmp_path / "bottle/ground_truth/broken_large/000_mask.png"
    mask.write_bytes(mask.read_bytes()[:45])  # inside the pixel data
    with pytest.raises(ImageReadError, match=rf"Cannot read mask {mask} .*truncated"):
        _bottle_dataset(tmp_path)


def test_anomalous_images_with_empty_masks_are_warned_once_with_the_files(tmp_path, defect_tree, caplog):
    from PIL import Image

    _bottle(tmp_path, defect_tree)
    empty = [tmp_path / f"bottle/ground_truth/broken_large/00{i}_mask.png" for i in (0, 1)]
    for path in empty:
        Image.new("L", (16, 16)).save(path)
    with caplog.at_level("WARNING"):
        _bottle_dataset(tmp_path)
    (warning,) = [record.getMessage() for record in caplog.records if "empty mask" in record.getMessage()]
    assert warning.startswith("2 anomalous images") and all(str(path) in warning for path in empty)
