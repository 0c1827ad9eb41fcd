"""The image input contract: refusals name the model and the fix."""

import pytest
import torch

from anomalib_dapo.model_input import ImageBatchError, NonFiniteInputError, check_finite, check_images


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.rand(3, 8, 8), r"^MultiAds takes a batch of RGB images.*unsqueeze\(0\)"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), r"^MultiAds takes float images.*images.float\(\) / 255"),
    ],
)
def test_a_refusal_names_the_model(images, match):
    with pytest.raises(ImageBatchError, match=match):
        check_images(images, "MultiAds")


def test_values_outside_the_unit_range_are_refused_only_when_asked():
    images = torch.full((1, 3, 8, 8), 2.0)
    check_images(images, "Dapo")  # after pre-processing, values outside [0, 1] are normal
    with pytest.raises(ImageBatchError, match=r"values in \[2, 2\]"):
        check_images(images, "Dapo", unit_range=True)


def test_non_finite_images_are_named_by_their_index():
    images = torch.rand(3, 3, 8, 8)
    images[1, 0, 0, 0] = torch.nan
    with pytest.raises(NonFiniteInputError, match=r"^Input images \[1\] .* MultiAds scores finite images only"):
        check_finite(images, "MultiAds")
