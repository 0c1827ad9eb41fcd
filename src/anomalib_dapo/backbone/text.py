"""OpenCLIP's text encoder at the length the prompts need, and a warning for texts longer than its context.

open_clip pools each text at its end-of-text token (the largest token id, ``argmax`` pooling) under a causal
mask: no position after a text's end-of-text token reaches it. The positions after the last end-of-text
token of a batch can therefore be left out without changing any output; the prompts of a vocabulary end
around token 15–25 of CLIP's 77.
"""

import logging
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from open_clip.model import CLIP
from open_clip.transformer import text_global_pool
from torch import nn

logger = logging.getLogger(__name__)

LENGTH_MULTIPLE = 8
"""Sequence lengths are rounded up to a multiple of this: matrix kernels run best on such shapes."""


def trimmable(clip: CLIP) -> bool:
    """Whether the positions after the end-of-text tokens can be left out: causal mask and ``argmax`` pooling."""
    return clip.attn_mask is not None and clip.text_pool_type == "argmax"


def needed_length(clip: CLIP, tokens: torch.Tensor) -> int:
    """Positions up to the batch's last end-of-text token, rounded up to :data:`LENGTH_MULTIPLE`.

    The whole context when :func:`trimmable` is false.
    """
    context = tokens.shape[-1]
    if not trimmable(clip) or not tokens.numel():
        return context
    last = int(tokens.argmax(dim=-1).max()) + 1
    return min(context, -(-last // LENGTH_MULTIPLE) * LENGTH_MULTIPLE)


def trim(clip: CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """``tokens`` ``(N, context)`` cut to :func:`needed_length`: the encoders give the same features on them."""
    return tokens[:, : needed_length(clip, tokens)]


def text_positions(clip: CLIP, length: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Position embeddings and causal mask of the first ``length`` positions."""
    mask = clip.attn_mask
    return clip.positional_embedding[:length], None if mask is None else mask[:length, :length]


def project(features: torch.Tensor, projection: nn.Module | torch.Tensor | None) -> torch.Tensor:
    """Apply an open_clip output projection (either tower), a matrix or a linear layer depending on the config."""
    if projection is None:
        return features
    if isinstance(projection, nn.Linear):
        return projection(features)
    return features @ projection


def text_features(clip: CLIP, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """The text tower's head on the last block's output ``x``: final norm, pooling at end-of-text, projection."""
    return project(text_global_pool(clip.ln_final(x), tokens, clip.text_pool_type), clip.text_projection)


def encode_text(clip: CLIP, tokens: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    """``clip.encode_text`` at the length of ``tokens`` (open_clip's adds all its position embeddings)."""
    positions, mask = text_positions(clip, tokens.shape[1])
    dtype = clip.transformer.get_cast_dtype()
    x = clip.transformer(clip.token_embedding(tokens).to(dtype) + positions.to(dtype), attn_mask=mask)
    features = text_features(clip, x, tokens)
    return F.normalize(features, dim=-1) if normalize else features


def warn_overlong(tokenizer: Callable[..., torch.Tensor], texts: Sequence[Sequence[str]], names: Sequence[str]) -> None:
    """Warn for each ``names[i]`` one of whose ``texts[i]`` is longer than the text encoder's context.

    The tokenizer cuts such texts silently at its context length (the end of the name is not read). They are
    found by tokenizing one position further: a text that fits leaves that position as padding.
    """
    context = tokenizer.context_length
    flat = [text for group in texts for text in group]
    overflowing = (tokenizer(flat, context_length=context + 1)[:, context] != 0).tolist()
    start = 0
    for name, group in zip(names, texts, strict=True):
        cut = [text for text, flag in zip(group, overflowing[start : start + len(group)], strict=True) if flag]
        if cut:
            logger.warning(
                "The prompt of '%s' is longer than the text encoder's context of %d tokens and is cut there, so "
                "its end is not read: '%s'. Use a shorter defect name (or object name).",
                name,
                context,
                cut[0],
            )
        start += len(group)
