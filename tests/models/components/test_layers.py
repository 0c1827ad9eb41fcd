"""Layer defaults relative to the backbone's depth: the papers' positions on ViT-L, the same quarters elsewhere."""

import pytest
import torch

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.models.components.layers import quarter_layers


@pytest.mark.parametrize(
    ("depth", "layers"), [(24, (6, 12, 18, 24)), (12, (3, 6, 9, 12)), (4, (1, 2, 3, 4)), (6, (2, 3, 5, 6)), (2, (1, 2))]
)
def test_quarter_points_of_the_vision_tower(depth, layers):
    assert quarter_layers(depth) == layers


@pytest.mark.parametrize("cls", [Dapo, MultiAds])
def test_the_tiny_backbone_runs_with_no_layer_arguments(cls):
    model = cls(backbone="dapo-tiny", pretrained=None, image_size=64, visualizer=False).eval()
    assert model.model.adapter_layers == (1, 2, 3, 4)
    model.use_vocabulary(["scratch", "dent"])
    with torch.no_grad():
        outputs = model.model(torch.rand(1, 3, 64, 64))
    assert outputs.pred_type_map.shape == (1, 3, 64, 64)


def test_dapo_defaults_to_every_text_and_vision_layer():
    model = Dapo(backbone="dapo-tiny", pretrained=None, image_size=64, visualizer=False).model
    assert (model.text_prompts.depth, model.vision_prompts.depth) == (4, 4)


INITIALISERS = ("kaiming_uniform_", "uniform_", "normal_", "trunc_normal_", "xavier_uniform_", "constant_")
"""The ``torch.nn.init`` functions that torch's layers and open_clip initialise weights with."""


def _left_as_allocated(tensor: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    del args, kwargs
    return tensor


@pytest.mark.parametrize(
    ("backbone", "image_size", "adapter_layers"),
    [("ViT-L-14-336", 518, (6, 12, 18, 24)), ("ViT-B-16", 224, (3, 6, 9, 12))],
)
def test_real_backbones_get_the_papers_positions(backbone, image_size, adapter_layers, monkeypatch):
    """Construction only: the papers' layers 6, 12, 18, 24 of ViT-L's 24, and 12 of 12 text layers.

    The layer positions depend on the towers' depths alone, so the weights are left uninitialised: drawing
    ViT-L's 430 M random weights was most of this test's time.
    """
    for name in INITIALISERS:
        monkeypatch.setattr(torch.nn.init, name, _left_as_allocated)
    model = Dapo(backbone=backbone, pretrained=None, image_size=image_size, visualizer=False).model
    assert model.adapter_layers == adapter_layers
    assert model.text_prompts.depth == 12
    assert model.vision_prompts.depth == adapter_layers[-1]


def test_explicit_layers_are_kept(tiny_kwargs):
    model = Dapo(**tiny_kwargs).model
    assert model.adapter_layers == tuple(tiny_kwargs["adapter_layers"])
    assert model.text_prompts.depth == tiny_kwargs["text_depth"]
