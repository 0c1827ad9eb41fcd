"""Defect-aware hybrid prompts (paper §4.1, eq. 1–3) and their initialisation (appendix 10.2)."""

from collections.abc import Callable, Sequence

import torch
from einops import repeat
from torch import nn

from anomalib_dapo.backbone.clip import token_statistics
from anomalib_dapo.models.components.options import OptionEnum

PLACEHOLDER = "X"
"""A one-token word whose embeddings are overwritten by learnable tokens."""


class TokenInit(OptionEnum):
    """Initialisation of the learnable tokens (appendix 10.2)."""

    RANDOM = "random"
    """N(0, 1)."""
    CLIP = "clip"
    """N(μ, σ) of CLIP's token embeddings, per dimension: the paper's choice."""
    OFFSET = "offset"
    """As ``clip``, with the abnormal context shifted by ``5σ`` to separate it from the normal one."""


def initial_statistics(table: torch.Tensor, init: TokenInit) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std to draw learnable tokens from, given the embedding table of their space."""
    mean, std = token_statistics(table)
    if init == TokenInit.RANDOM:
        return torch.zeros_like(mean), torch.ones_like(std)
    return mean, std


class HybridPrompts(nn.Module):
    """Learnable contexts for the normal and abnormal states, combined with literal words.

    For ``E`` prompts per state (eq. 3), the normal prompt ``e`` is ``[V^e_1 … V^e_l] normal object`` (eq. 2)
    and the abnormal prompt of defect ``k`` is ``[W^e_1 … W^e_l] <defect words> anomaly object`` (eq. 1): one
    context ``W`` is shared by every defect type, so a new type costs nothing but its name. In front of the
    context sit ``prefix_slots`` positions reserved for the text encoder's progressive prompts (eq. 10).

    Args:
        tokenizer: The CLIP tokenizer.
        statistics: Mean and std to draw the contexts from, per dimension: :func:`initial_statistics` of CLIP's
            token embedding table for ``init`` (computed once by the model, which draws its text prompt tokens
            from the same).
        context_length: ``l``, learnable tokens per prompt (5).
        num_prompts: ``E``, prompts per state (10).
        prefix_slots: Prompt slots of the text encoder's first layer (4).
        init: Token initialisation.
        offset_sigmas: Shift of the abnormal context for ``TokenInit.OFFSET``, in standard deviations (5).
        normal_word: The normal state's word ("normal"; the authors' code uses "flawless").
        abnormal_word: The literal anomaly anchor ("anomaly").
        object_word: The literal object word ("object").

    """

    def __init__(
        self,
        tokenizer: Callable[[list[str]], torch.Tensor],
        statistics: tuple[torch.Tensor, torch.Tensor],
        context_length: int = 5,
        num_prompts: int = 10,
        prefix_slots: int = 4,
        init: TokenInit = TokenInit.CLIP,
        offset_sigmas: float = 5.0,
        normal_word: str = "normal",
        abnormal_word: str = "anomaly",
        object_word: str = "object",
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.prefix_slots = prefix_slots
        self.normal_word, self.abnormal_word, self.object_word = normal_word, abnormal_word, object_word
        mean, std = statistics
        shape = (num_prompts, context_length, mean.shape[-1])
        self.normal_context = nn.Parameter(mean + std * torch.randn(shape))
        shift = offset_sigmas * std if TokenInit(init) == TokenInit.OFFSET else 0.0
        self.abnormal_context = nn.Parameter(mean + shift + std * torch.randn(shape))

    @property
    def num_prompts(self) -> int:
        """``E``, prompts per state."""
        return self.normal_context.shape[0]

    @property
    def context_length(self) -> int:
        """``l``, learnable tokens per prompt."""
        return self.normal_context.shape[1]

    def texts(self, defect_words: Sequence[str]) -> list[str]:
        """Prompt texts of the ``K + 1`` states with placeholders; empty defect words give a generic state."""
        placeholders = " ".join([PLACEHOLDER] * (self.prefix_slots + self.context_length))
        abnormal = [" ".join(filter(None, (words, self.abnormal_word, self.object_word))) for words in defect_words]
        return [f"{placeholders} {self.normal_word} {self.object_word}."] + [f"{placeholders} {a}." for a in abnormal]

    def tokenize(self, defect_words: Sequence[str]) -> torch.Tensor:
        """Token ids of the ``K + 1`` states, shape ``(K + 1, context)``."""
        tokens = self.tokenizer(self.texts(defect_words))
        placeholder_id = self.tokenizer([PLACEHOLDER])[0, 1]
        span = tokens[:, 1 : 1 + self.prefix_slots + self.context_length]
        if not bool((span == placeholder_id).all()):
            msg = "The tokenizer split the prompt placeholders unexpectedly; use an OpenCLIP BPE tokenizer."
            raise ValueError(msg)
        return tokens

    def embed(self, token_embedding: nn.Embedding, tokens: torch.Tensor) -> torch.Tensor:
        """Word embeddings of all ``E × (K + 1)`` prompts with the learnable contexts in place.

        Returns:
            Shape ``(E, K + 1, context, width)``; state 0 is normal, states ``1..K`` the defect types.

        """
        words = repeat(token_embedding(tokens), "s n w -> e s n w", e=self.num_prompts)
        num_defects = tokens.shape[0] - 1
        contexts = torch.cat(
            [
                self.normal_context.unsqueeze(1),
                repeat(self.abnormal_context, "e l w -> e k l w", k=num_defects),
            ],
            dim=1,
        ).to(words.dtype)
        start = 1 + self.prefix_slots
        return torch.cat([words[:, :, :start], contexts, words[:, :, start + self.context_length :]], dim=2)
