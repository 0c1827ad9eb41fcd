import pytest
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from torchvision.transforms.v2 import Compose, RandomHorizontalFlip, Resize
from torchvision.transforms.v2.functional import horizontal_flip, resize

from anomalib_dapo import knowledge
from anomalib_dapo.data import TypedImageBatch, TypedMVTecAD, TypedMVTecADDataset, generate_synthetic_dataset


def _dataset(root, augmentations=None) -> TypedMVTecADDataset:
    return TypedMVTecADDataset(
        root=root,
        category="disc",
        split="test",
        dataset="synthetic",
        augmentations=augmentations,
    )


def test_augmentations_move_the_type_mask_with_the_image(tmp_path):
    generate_synthetic_dataset(tmp_path, categories=("disc",), image_size=64, n_test_per_defect=2, n_test_good=1)
    plain = _dataset(tmp_path)
    augmented = _dataset(tmp_path, Compose([RandomHorizontalFlip(p=1.0), Resize((32, 32))]))
    index = next(i for i in range(len(plain)) if plain.samples.iloc[i].defect_type == "hole")
    before, after = plain[index], augmented[index]
    expected = resize(horizontal_flip(before.gt_type_mask.unsqueeze(0)), [32, 32], interpolation=0).squeeze(0)
    assert torch.equal(after.gt_type_mask, expected)  # nearest: type ids stay integers of the vocabulary
    assert set(after.gt_type_mask.unique().tolist()) == {0, plain.type_index("hole")}
    assert torch.equal(after.gt_mask, after.gt_type_mask > 0)
    assert torch.allclose(after.image, resize(horizontal_flip(before.image), [32, 32], antialias=True), atol=1e-5)


def test_type_fields_survive_device_transfer_and_numpy(tmp_path):
    generate_synthetic_dataset(tmp_path, categories=("disc",), image_size=64, n_test_per_defect=1, n_test_good=1)
    dataset = _dataset(tmp_path)
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
