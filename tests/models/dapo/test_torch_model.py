import inspect
import logging

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from anomalib_dapo.backbone import load_clip
from anomalib_dapo.models import Dapo, MultiAds
from anomalib_dapo.models.components.predictions import ImageScore
from anomalib_dapo.models.dapo.torch_model import DapoModel

TYPES = ("scratch", "hole", "stain")


@pytest.fixture
def model() -> DapoModel:
    torch.manual_seed(0)
    clip = load_clip("dapo-tiny", None, 64)
    model = DapoModel(clip.model, clip.tokenizer, num_prompts=2, text_depth=4, adapter_layers=(2, 4))
    model.set_vocabulary(TYPES, TYPES)
    return model


def test_inference_shapes(model):
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.pred_score.shape == (2,)
    assert out.anomaly_map.shape == (2, 1, 64, 64)
    assert out.pred_type_map.shape == (2, len(TYPES) + 1, 64, 64)
    assert out.pred_type_mask.shape == (2, 64, 64)
    assert out.pred_type_probs.shape == (2, len(TYPES))
    assert torch.allclose(out.pred_type_map.sum(dim=1), torch.ones(2, 64, 64), atol=1e-5)
    assert torch.equal(out.pred_type_mask, out.pred_type_map.argmax(dim=1))
    assert torch.allclose(out.anomaly_map[:, 0], 1 - out.pred_type_map[:, 0])
    assert ((out.pred_score >= 0) & (out.pred_score <= 1)).all()


def test_training_outputs_and_gradients_only_on_prompts_and_adapters(model):
    model.train()
    out = model(torch.rand(2, 3, 64, 64))
    assert out.global_logits.shape == (2, 2)
    assert out.stage_probs.shape == (2, 2, len(TYPES) + 1, 8, 8)  # B, M, K+1, h, w (64 px / 8-px patches)
    (out.global_logits.sum() + out.stage_probs[:, :, 1:].sum()).backward()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {
        "prompts.normal_context",
        "prompts.abnormal_context",
        "text_prompts.tokens",
        "vision_prompts.tokens",
        "adapters.weight",
        "adapters.bias",
    }
    for name, parameter in model.named_parameters():
        if name in trainable:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert parameter.grad is None, name


def test_text_encoder_runs_once_per_vocabulary_at_inference(model):
    model.eval()
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for _ in range(3):
            model(images)
        assert model.text_encoder_calls == 1
        model.set_vocabulary(TYPES, TYPES)  # same vocabulary: cache kept
        model(images)
        assert model.text_encoder_calls == 1
        model.set_vocabulary(("dent",), ("dent",))
        out = model(images)
    assert model.text_encoder_calls == 2
    assert out.pred_type_map.shape[1] == 2
    model.compute(images)
    model.compute(images)
    assert model.text_encoder_calls == 4  # with gradients it always re-encodes: the prompts are learning
    with torch.no_grad():
        model(images)
    assert model.text_encoder_calls == 5  # and the cache from before the parameter updates is gone


def test_new_defect_words_change_only_their_state(model):
    model.eval()
    with torch.no_grad():
        first = model.encode_states()
        model.set_vocabulary(("scratch", "hole", "rust"), ("scratch", "hole", "rust"))
        second = model.encode_states()
    assert torch.allclose(first[:3], second[:3], atol=1e-5)
    assert not torch.allclose(first[3], second[3])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text_depth": 5}, "text_depth"),
        ({"vision_depth": 0}, "vision_depth"),
        ({"adapter_layers": (2, 6)}, "adapter_layers"),
    ],
)
def test_layers_beyond_the_backbone_are_refused(kwargs, match):
    clip = load_clip("dapo-tiny", None, 64)
    with pytest.raises(ValueError, match=match):
        DapoModel(clip.model, clip.tokenizer, **{"text_depth": 4, "adapter_layers": (2, 4), **kwargs})


@pytest.mark.parametrize("option", ["token_init", "image_score", "aggregation", "progressive"])
def test_every_ablation_runs(option):
    values = {"token_init": "offset", "image_score": "fusion", "aggregation": "attention", "progressive": False}
    clip = load_clip("dapo-tiny", None, 64)
    model = DapoModel(
        clip.model, clip.tokenizer, num_prompts=2, text_depth=4, adapter_layers=(2, 4), **{option: values[option]}
    )
    model.set_vocabulary(TYPES, TYPES)
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert torch.isfinite(out.pred_score).all()
    assert torch.isfinite(out.pred_type_map).all()


def test_loaded_prompts_replace_the_cached_states(model):
    """``load_state_dict`` (also behind learned-weights files and Lightning restores) makes the next eval re-encode."""
    model.eval()
    with torch.no_grad():
        cached = model.states().clone()
        other = {name: value + 0.5 for name, value in model.state_dict().items() if "prompt" in name}
        model.load_state_dict(other, strict=False)
        assert not torch.equal(model.states(), cached)
        assert torch.equal(model.states(), model.encode_states())


def test_states_at_the_needed_length_equal_the_full_context_with_progressive_prompts(model):
    # The progressive tokens sit at positions 1..4 and the learned contexts after them, all before the
    # end-of-text token: under the causal mask the positions the encoder leaves out reach none of them.
    lengths = []
    model.clip.transformer.resblocks[0].register_forward_hook(lambda _m, args, _o: lengths.append(args[0].shape[1]))
    model.train()
    learned = [model.text_prompts.tokens, model.prompts.normal_context]
    trimmed = model.encode_states()
    trimmed_grads = torch.autograd.grad(trimmed.square().sum(), learned)
    context = model.clip.context_length
    model.tokens = F.pad(model.tokens, (0, context - model.tokens.shape[1]))  # the full context, zero-padded
    full = model.encode_states()
    full_grads = torch.autograd.grad(full.square().sum(), learned)
    assert lengths[0] < context // 2
    assert lengths[1] == context
    assert (trimmed - full).abs().max() < 1e-5
    for ours, theirs in zip(trimmed_grads, full_grads, strict=True):
        assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5)  # gradients of size ~20: float32 rounding


def test_a_defect_name_longer_than_the_text_context_is_named_in_a_warning(model, caplog):
    long_name = "_".join(["very_long_defect"] * 30)
    with caplog.at_level(logging.WARNING, logger="anomalib_dapo.backbone.text"):
        model.set_vocabulary(("scratch", long_name), ("scratch", long_name.replace("_", " ")))
    messages = [record.getMessage() for record in caplog.records if record.name == "anomalib_dapo.backbone.text"]
    assert [long_name in message and "77 tokens" in message for message in messages] == [True]


def test_dapo_scores_images_with_the_global_probability_by_default():
    # The DAPO paper defines no image score; the authors' released code uses the global probability.
    # MultiADS fuses it with the map maximum (its §4.2.2).
    for model in (Dapo, DapoModel):
        assert inspect.signature(model).parameters["image_score"].default == ImageScore.GLOBAL
    assert inspect.signature(MultiAds).parameters["image_score"].default == ImageScore.FUSION
