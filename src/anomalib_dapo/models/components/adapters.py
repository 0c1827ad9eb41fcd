"""Stage adapters: linear maps of the patch tokens of ``M`` encoder stages into CLIP's joint space.

DAPO §4.2.1 and MultiADS §4.1.2 (eq. 1): ``Z^p_i = W_i · ln_post(T_i) + b_i`` for the patch tokens ``T_i`` of
the ``i``-th adapted layer.
"""

import torch
from open_clip.model import CLIP
from torch import nn

from anomalib_dapo.backbone.text import project
from anomalib_dapo.models.components.options import OptionEnum


class AdapterInit(OptionEnum):
    """Initial weights of the stage adapters."""

    RANDOM = "random"
    """``nn.Linear``'s default (uniform, zero mean): the adapters learn the joint space from the training types."""
    PROJECTION = "projection"
    """CLIP's own image projection (zero bias): the adapters start where CLIP puts its image embedding, so before
    any training a patch already meets the text of its defect as the backbone aligned them."""


def embed_dim(clip: CLIP) -> int:
    """Width of CLIP's joint image-text space."""
    projection = clip.text_projection
    return projection.out_features if isinstance(projection, nn.Linear) else projection.shape[1]


class StageAdapters(nn.Module):
    """``M`` linear adapters mapping patch tokens of ``M`` encoder stages into the joint space.

    Held as one stacked weight so that all stages are projected in one batched product.

    Args:
        num_stages: ``M``.
        in_features: Width of the encoder's tokens.
        out_features: Width of the joint space.

    """

    def __init__(self, num_stages: int, in_features: int, out_features: int) -> None:
        super().__init__()
        layers = [nn.Linear(in_features, out_features) for _ in range(num_stages)]
        self.weight = nn.Parameter(torch.stack([layer.weight.T for layer in layers]).detach())
        self.bias = nn.Parameter(torch.stack([layer.bias for layer in layers]).detach())

    @classmethod
    def for_clip(cls, clip: CLIP, num_stages: int, init: AdapterInit | str = AdapterInit.RANDOM) -> "StageAdapters":
        """Adapters from ``clip``'s vision width to its joint space, initialised per ``init`` (``random``)."""
        adapters = cls(num_stages, clip.visual.transformer.width, embed_dim(clip))
        if AdapterInit(init) == AdapterInit.PROJECTION:
            width = clip.visual.transformer.width
            projection = project(torch.eye(width, device=adapters.weight.device), clip.visual.proj).detach()
            with torch.no_grad():
                adapters.weight.copy_(projection.expand_as(adapters.weight))
                adapters.bias.zero_()
        return adapters

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Project ``(M, B, P, in)`` stage tokens to ``(M, B, P, out)``."""
        return torch.einsum("mbpi,mio->mbpo", tokens, self.weight.to(tokens.dtype)) + self.bias[:, None, None]
