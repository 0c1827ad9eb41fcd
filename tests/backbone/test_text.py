import logging

import pytest
import torch

from anomalib_dapo.backbone import load_clip
from anomalib_dapo.backbone.text import LENGTH_MULTIPLE, encode_text, needed_length, trim, warn_overlong
from anomalib_dapo.models.multiads.prompts import state_prompts


@pytest.fixture(scope="module")
def clip():
    return load_clip("dapo-tiny", None, 64)


def test_needed_length_reaches_the_last_end_of_text_rounded_up(clip):
    tokens = clip.tokenizer(["a photo of a scratch.", "a close-up photo of a long thin scratch on a metal nut."])
    last_end = int((tokens == clip.tokenizer.eot_token_id).nonzero()[:, 1].max())
    length = needed_length(clip.model, tokens)
    assert length % LENGTH_MULTIPLE == 0
    assert last_end < length <= last_end + LENGTH_MULTIPLE
    assert length < tokens.shape[1]


def test_text_features_at_the_needed_length_equal_open_clips_full_context(clip):
    ensembles = state_prompts(["scratch", "crack"], ["scratch", "crack on the surface"], "metal_nut")
    texts = [text for ensemble in ensembles for text in ensemble]
    tokens = clip.tokenizer(texts)
    with torch.no_grad():
        full = clip.model.encode_text(tokens, normalize=True)
        trimmed = encode_text(clip.model, trim(clip.model, tokens), normalize=True)
    assert trim(clip.model, tokens).shape[1] < tokens.shape[1]
    assert (trimmed - full).abs().max() < 1e-5


def test_a_text_longer_than_the_context_is_named_with_the_limit(clip, caplog):
    fits = "a " * (clip.tokenizer.context_length - 2)  # start and end of text take the other two positions
    with caplog.at_level(logging.WARNING, logger="anomalib_dapo.backbone.text"):
        warn_overlong(clip.tokenizer, [[fits], ["a photo.", fits + "a"]], ["fits_exactly", "one_too_many"])
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "'one_too_many'" in message
    assert "77 tokens" in message
