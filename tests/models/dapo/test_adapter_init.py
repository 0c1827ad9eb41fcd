import torch

from anomalib_dapo.backbone.clip import TINY_BACKBONE, load_clip
from anomalib_dapo.models.dapo.torch_model import AdapterInit, StageAdapters


def test_projection_init_makes_each_adapter_clips_own_image_projection():
    clip = load_clip(TINY_BACKBONE, None, 64).model
    adapters = StageAdapters.for_clip(clip, 2, AdapterInit.PROJECTION)
    tokens = torch.randn(2, 3, 5, clip.visual.transformer.width)
    assert torch.allclose(adapters(tokens), tokens @ clip.visual.proj, atol=1e-6)
    random = StageAdapters.for_clip(clip, 2, AdapterInit.RANDOM)
    assert not torch.allclose(random(tokens), tokens @ clip.visual.proj, atol=1e-3)
