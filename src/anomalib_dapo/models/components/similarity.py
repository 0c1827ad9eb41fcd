"""Patch–state similarity maps and their upsampling (DAPO §4.3; MultiADS §4.1.2, eq. 3).

``S_i = softmax_k(cos(Z^p_i, z^k) / τ)`` over the states ``z^N, z^{D_1..K}`` of every stage ``i``, and ``UP``,
the bilinear upsampling of the maps to the image size.
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from einops import rearrange


def name_order(vocabulary: Sequence[str]) -> list[int]:
    """The states ``normal, vocabulary…`` in the order of their names (normal first): the models compute in it.

    A softmax or mean over the states sums them in their order, so float rounding would otherwise make a reordered
    vocabulary give probabilities a few ulps apart, and type metrics that differ in their last digits.
    """
    return [0, *(1 + index for index in sorted(range(len(vocabulary)), key=lambda index: vocabulary[index]))]


def similarity_maps(
    patches: torch.Tensor, states: torch.Tensor, temperature: float, order: Sequence[int] | None = None
) -> torch.Tensor:
    """``S_i = softmax_k(cos(Z^p_i, z^k) / τ)`` for all stages at once.

    Args:
        patches: Adapted patch embeddings, ``(M, B, P, D)``.
        states: State embeddings ``z^N, z^{D_1..K}``, ``(K + 1, D)``, or one set per image ``(B, K + 1, D)``.
        temperature: ``τ``.
        order: The states' :func:`name_order`: the softmax runs in it, so that the maps of a reordered vocabulary
            are the same numbers reordered. Defaults to ``None``: their own order.

    Returns:
        ``(B, M, K + 1, h, w)`` with ``h = w = sqrt(P)``, the states in their own order.

    """
    order = list(order) if order is not None else list(range(states.shape[-2]))
    back = sorted(range(len(order)), key=order.__getitem__)
    cosine = F.normalize(patches, dim=-1) @ F.normalize(states[..., order, :], dim=-1).transpose(-1, -2)
    probs = (cosine / temperature).softmax(dim=-1)[..., back]
    side = round(patches.shape[2] ** 0.5)
    return rearrange(probs, "m b (h w) k -> b m k h w", h=side, w=side)


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``UP``: bilinear upsampling of ``(..., C, h, w)`` maps to ``size``."""
    lead = maps.shape[:-3]
    flat = F.interpolate(maps.flatten(0, -4), size=tuple(size), mode="bilinear", align_corners=False)
    return flat.unflatten(0, lead)
