"""The few-shot reference memory (MultiADS eq. 5) and where its normal images come from."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from anomalib.data import ImageItem
from PIL import Image

from anomalib_dapo.models.components import ReferenceMemory, reference_images


def test_reference_map_is_one_minus_the_nearest_reference_at_the_same_position_by_hand():
    memory = ReferenceMemory()
    assert memory(torch.randn(2, 3, 4, 5)) is None  # zero-shot: no map
    references = torch.randn(2, 3, 4, 5)  # M = 2 stages, k = 3 references, P = 4 patches (2×2), D = 5
    memory.store(references)
    assert memory.num_references == 3
    query = torch.randn(2, 1, 4, 5)
    maps = memory(query)
    assert maps.shape == (1, 2, 2, 2)
    for stage in range(2):
        for patch in range(4):
            cosines = [
                F.cosine_similarity(query[stage, 0, patch], references[stage, k, patch], dim=0) for k in range(3)
            ]
            assert maps[0, stage].flatten()[patch] == pytest.approx(1 - max(cosines).item(), abs=1e-5)
    # a query equal to one reference is normal everywhere, whatever the others
    assert torch.allclose(memory(references[:, 1:2]), torch.zeros(1, 2, 2, 2), atol=1e-5)


def test_stored_references_are_ordinary_tensors_even_from_inference_mode():
    memory = ReferenceMemory()
    with torch.inference_mode():
        memory.store(torch.randn(1, 2, 4, 3))
    assert not memory.patches.is_inference()


class _Items(torch.utils.data.Dataset):
    def __init__(self, labels):
        self.labels = labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        image = torch.full((3, 4, 4), float(index))
        return ImageItem(image=image, gt_label=torch.tensor(self.labels[index]))


def test_references_are_the_first_normal_images_of_the_dataset_transformed():
    images = reference_images(2, None, _Items([1, 0, 1, 0, 0]), transform=lambda image: image + 100)
    assert images.shape == (2, 3, 4, 4)
    assert images[:, 0, 0, 0].tolist() == [101.0, 103.0]  # items 1 and 3, the anomalous ones skipped


def test_a_folder_takes_precedence_and_every_image_there_counts(tmp_path):
    for index in range(3):
        Image.fromarray(np.full((8, 8, 3), 40 * index, dtype=np.uint8)).save(tmp_path / f"{index}.png")
    images = reference_images(3, tmp_path, _Items([0]), transform=None)
    assert images.shape == (3, 3, 8, 8)


def test_too_few_or_no_reference_images_say_what_to_pass():
    with pytest.raises(ValueError, match="holds only 1 normal images"):
        reference_images(2, None, _Items([1, 0]), transform=None)
    with pytest.raises(ValueError, match="few_shot_source"):
        reference_images(2, None, None, transform=None)
