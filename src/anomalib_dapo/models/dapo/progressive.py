"""Progressive prefix tuning of a frozen transformer (paper §4.4, eq. 10, after ProVP)."""

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class ProgressivePrompts(nn.Module):
    """Learnable tokens ``U_j`` fed into the prompt slots of the first ``depth`` layers (eq. 10).

    Layer 1 receives ``[T_0, U_1]``; layer ``j > 1`` receives ``[T_{j-1}, (1 - α) U_j + α O_{j-1}]``, where
    ``O_{j-1}`` is what layer ``j - 1`` wrote to the prompt slots. With ``progressive=False`` the slots
    are replaced by ``U_j`` (plain prefix tuning, the paper's ablation in appendix 11.1). Past ``depth``
    the slots are left to the encoder.

    Args:
        depth: Number of layers that receive learnable tokens (``N_d`` for the text encoder).
        num_tokens: Tokens per layer (4 in the paper).
        mean: Per-dimension mean of the initial tokens, shape ``(width,)``.
        std: Per-dimension standard deviation of the initial tokens, shape ``(width,)``.
        alpha: Weight of the previous layer's output (α ≪ 1; 0.01).
        progressive: Carry the previous output over (eq. 10) or replace the slots (plain prefix).

    """

    def __init__(
        self,
        depth: int,
        num_tokens: int,
        mean: torch.Tensor,
        std: torch.Tensor,
        alpha: float = 0.01,
        progressive: bool = True,
    ) -> None:
        super().__init__()
        self.tokens = nn.Parameter(mean + std * torch.randn(depth, num_tokens, mean.shape[-1]))
        self.alpha = alpha
        self.progressive = progressive

    @property
    def depth(self) -> int:
        """Number of prompted layers."""
        return self.tokens.shape[0]

    @property
    def num_tokens(self) -> int:
        """Prompt slots per layer."""
        return self.tokens.shape[1]

    def slot_input(self, layer: int, previous: torch.Tensor) -> torch.Tensor:
        """Tokens written to the prompt slots before ``layer`` (0-based), eq. 10.

        Args:
            layer: Index of the layer about to run.
            previous: ``O_{j-1}``, the slots' current content, shape ``(B, num_tokens, width)``.

        """
        tokens = self.tokens[layer].to(previous.dtype).expand_as(previous)
        if layer == 0 or not self.progressive:
            return tokens
        return (1 - self.alpha) * tokens + self.alpha * previous


def run_prompted_blocks(
    blocks: Sequence[nn.Module],
    x: torch.Tensor,
    prompts: ProgressivePrompts,
    slot_start: int,
    taps: Sequence[int] = (),
    attn_mask: torch.Tensor | None = None,
    gradient_checkpointing: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run transformer ``blocks`` with progressive prompts spliced into ``x[:, slot_start:slot_start + n]``.

    Args:
        blocks: The frozen residual blocks, batch-first.
        x: Token sequence with room for the prompt slots, shape ``(B, L, width)``.
        prompts: The learnable per-layer tokens.
        slot_start: Position of the first prompt slot in the sequence.
        taps: 1-based layer numbers whose outputs are returned (the adapter stages).
        attn_mask: Additive attention mask (the text encoder's causal mask).
        gradient_checkpointing: Recompute block activations in the backward pass to save memory.

    Returns:
        The last layer's output and the outputs of the tapped layers, in ``taps`` order.

    """
    slots = slice(slot_start, slot_start + prompts.num_tokens)
    tapped: dict[int, torch.Tensor] = {}
    for index, block in enumerate(blocks):
        if index < prompts.depth:
            x = torch.cat([x[:, : slots.start], prompts.slot_input(index, x[:, slots]), x[:, slots.stop :]], dim=1)
        if gradient_checkpointing and torch.is_grad_enabled():
            x = checkpoint(block, x, attn_mask=attn_mask, use_reentrant=False)
        else:
            x = block(x, attn_mask=attn_mask)
        if index + 1 in taps:
            tapped[index + 1] = x
    return x, [tapped[layer] for layer in taps]
