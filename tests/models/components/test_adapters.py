import torch

from anomalib_dapo.backbone.clip import TINY_BACKBONE, load_clip
from anomalib_dapo.models.components.adapters import AdapterInit, StageAdapters


def test_projection_init_makes_each_adapter_clips_own_image_projection():
    clip = load_clip(TINY_BACKBONE, None, 64).model
    adapters = StageAdapters.for_clip(clip, 2, AdapterInit.PROJECTION)
    tokens = torch.randn(2, 3, 5, clip.visual.transformer.width)
    assert torch.allclose(adapters(tokens), tokens @ clip.visual.proj, atol=1e-6)
    random = StageAdapters.for_clip(clip, 2, AdapterInit.RANDOM)
    assert not torch.allclose(random(tokens), tokens @ clip.visual.proj, atol=1e-3)


def test_a_checkpoint_with_projection_adapters_loads_with_weights_only(tmp_path, tiny_kwargs):
    from lightning.pytorch import Trainer

    from anomalib_dapo import Dapo

    path = tmp_path / "projection.ckpt"
    model = Dapo(**{**tiny_kwargs, "adapter_init": AdapterInit.PROJECTION})
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)
    loaded = Dapo(**{**tiny_kwargs, "weights": str(path)})
    assert torch.equal(loaded.model.adapters.weight, model.model.adapters.weight)
