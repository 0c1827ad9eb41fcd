import logging

import pytest
import torch

from anomalib_dapo import MultiAds
from anomalib_dapo.model_input import ImageBatchError, NonFiniteInputError
from anomalib_dapo.models.components.losses import dice_loss, focal_loss
from anomalib_dapo.models.components.vocabulary import StageVocabulary
from anomalib_dapo.models.multiads.loss import multiads_loss
from anomalib_dapo.models.multiads.prompts import state_prompts


def test_inference_outputs_have_dapos_fields_and_shapes(multiads_kwargs):
    model = MultiAds(**multiads_kwargs)
    model.use_vocabulary(("scratch", "hole", "stain"))
    model.model.eval()
    with torch.no_grad():
        out = model.model(torch.randn(2, 3, 64, 64))
    assert out.pred_score.shape == (2,)
    assert out.anomaly_map.shape == (2, 1, 64, 64)
    assert out.pred_type_map.shape == (2, 4, 64, 64)
    assert torch.allclose(out.pred_type_map.sum(dim=1), torch.ones(2, 64, 64), atol=1e-5)
    assert torch.equal(out.anomaly_map[:, 0], 1 - out.pred_type_map[:, 0])  # eq. 4
    assert out.pred_type_probs.shape == (2, 3)
    assert ((out.pred_score >= 0) & (out.pred_score <= 1)).all()


def test_non_finite_or_non_batch_images_are_refused_as_by_dapo(multiads_kwargs):
    model = MultiAds(**multiads_kwargs)
    model.use_vocabulary(("scratch",))
    images = torch.rand(2, 3, 64, 64)
    images[1, 0, 5, 5] = torch.inf
    with pytest.raises(NonFiniteInputError, match=r"Input images \[1\].*MultiAds scores finite images only"):
        model.model.compute(images)
    with pytest.raises(ImageBatchError, match=r"MultiAds takes a batch of RGB images"):
        model.model.compute(images[0])


def test_only_the_adapters_learn_and_the_text_encoder_runs_once_per_vocabulary(multiads_kwargs):
    model = MultiAds(**multiads_kwargs)
    assert [name for name, p in model.model.named_parameters() if p.requires_grad] == [
        "adapters.weight",
        "adapters.bias",
    ]
    model.use_vocabulary(("scratch",))
    calls = model.model.text_encoder_calls  # with the construction's generic state
    model.model.train()
    outputs = model.model(torch.randn(2, 3, 64, 64))
    assert outputs.stage_probs.shape == (2, 2, 2, 8, 8)  # B, M, K + 1, h, w
    outputs.stage_probs[:, :, 1].sum().backward()
    assert model.model.adapters.weight.grad.abs().sum() > 0
    for _ in range(3):
        model.use_vocabulary(("scratch",))
    assert model.model.text_encoder_calls == calls
    model.use_vocabulary(("scratch",), products=("disc",))  # another product is another set of prompts
    assert model.model.text_encoder_calls == calls + 1


def test_each_image_is_scored_against_its_own_products_states(multiads_kwargs):
    """Training batches mix products: the prompts of image ``b`` name product ``products[b]``."""
    model = MultiAds(**multiads_kwargs)
    model.use_vocabulary(("scratch", "hole"), products=("disc", "grid"))
    assert model.model.states.shape[:2] == (2, 3)
    assert not torch.allclose(model.model.states[0], model.model.states[1])
    images = torch.randn(2, 3, 64, 64)
    mixed = model.model.compute(images, torch.tensor([1, 0])).stage_probs
    for index, product in enumerate((1, 0)):
        alone = model.model.compute(images[index : index + 1], torch.tensor([product])).stage_probs
        assert torch.allclose(mixed[index : index + 1], alone, atol=1e-5)
    assert not torch.allclose(mixed, model.model.compute(images, torch.tensor([0, 0])).stage_probs)


def test_adapter_layers_must_exist_and_increase(multiads_kwargs):
    with pytest.raises(ValueError, match="does not fit a backbone with 4 layers"):
        MultiAds(**{**multiads_kwargs, "adapter_layers": [2, 5]})
    with pytest.raises(ValueError, match="must be increasing"):
        MultiAds(**{**multiads_kwargs, "adapter_layers": [4, 2]})


def test_loss_is_eq_2_summed_over_stages_by_hand():
    torch.manual_seed(0)
    stage_probs = torch.rand(2, 3, 4, 6, 6).softmax(dim=2)  # B, M, K + 1, H, W
    type_mask = torch.randint(0, 4, (2, 6, 6))
    expected = sum(
        focal_loss(stage_probs[:, i], type_mask) + dice_loss(1 - stage_probs[:, i, 0], type_mask > 0) for i in range(3)
    )
    assert multiads_loss(stage_probs, type_mask) == pytest.approx(expected.item())


def test_states_at_the_needed_length_equal_open_clips_full_context(multiads_kwargs):
    model = MultiAds(**multiads_kwargs)
    model.use_vocabulary(("scratch", "hole"))
    net = model.model
    ensembles = state_prompts(
        ("scratch", "hole"), StageVocabulary(("scratch", "hole")).defect_words, net.class_names[0]
    )
    with torch.no_grad():
        expected = torch.stack(
            [net.clip.encode_text(net.tokenizer(group), normalize=True).mean(dim=0) for group in ensembles]
        )
    assert (net.states[0] - expected).abs().max() < 1e-5


def test_a_defect_name_longer_than_the_text_context_is_named_in_a_warning(multiads_kwargs, caplog):
    model = MultiAds(**multiads_kwargs)
    long_name = " ".join(["very long defect"] * 30)
    with caplog.at_level(logging.WARNING, logger="anomalib_dapo.backbone.text"):
        model.model.set_vocabulary(("scratch", "long"), ("scratch", long_name))
    messages = [record.getMessage() for record in caplog.records if record.name == "anomalib_dapo.backbone.text"]
    assert ["'long'" in message and "77 tokens" in message for message in messages] == [True]
