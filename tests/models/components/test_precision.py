"""Lightning's mixed precision (``--trainer.precision bf16-mixed``): half-precision encoder, float32 heads."""

import pytest
import torch
from lightning.pytorch.plugins.precision import MixedPrecision

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.models.components.precision import float32

FLOAT_OUTPUTS = ("pred_score", "anomaly_map", "pred_type_map", "pred_type_probs")


def test_float32_switches_autocast_off_only_where_it_is_on():
    a, b = torch.rand(4, 4), torch.rand(4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert (a @ b).dtype == torch.bfloat16
        with float32(a.device):
            assert (a @ b).dtype == torch.float32
    with float32(a.device):
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("cls", [Dapo, MultiAds])
def test_mixed_precision_outputs_are_float32_and_near_float32s(cls, tiny_kwargs):
    """As a Trainer runs each step with ``precision="bf16-mixed"`` (on CPU: CPU autocast)."""
    drop = set() if cls is Dapo else {"text_depth", "num_prompts"}
    model = cls(**{key: value for key, value in tiny_kwargs.items() if key not in drop}).eval()
    model.use_vocabulary(["scratch", "dent"])
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    mixed_precision = MixedPrecision("bf16-mixed", "cpu")
    with torch.no_grad():
        reference = model.model(images)
        with mixed_precision.forward_context():
            mixed = model.model(images)
    for name in FLOAT_OUTPUTS:
        value = getattr(mixed, name)
        assert value.dtype == torch.float32, name
        torch.testing.assert_close(value, getattr(reference, name), atol=0.05, rtol=0, msg=name)
    model.model.train()
    with mixed_precision.forward_context():
        stage_probs = model.model.compute(images).stage_probs
    assert stage_probs.dtype == torch.float32
