import torch
from torch import nn

from anomalib_dapo.models.dapo.progressive import ProgressivePrompts, run_prompted_blocks


class AddBlock(nn.Module):
    """A stand-in transformer block: x -> x + c, so every layer's output is known in closed form."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x, attn_mask=None):
        return x + self.c


def _prompts(depth: int, alpha: float, progressive: bool) -> ProgressivePrompts:
    prompts = ProgressivePrompts(depth, 2, torch.zeros(3), torch.ones(3), alpha=alpha, progressive=progressive)
    with torch.no_grad():
        prompts.tokens.copy_(torch.arange(depth, dtype=torch.float).view(depth, 1, 1).expand(depth, 2, 3) * 10)
    return prompts


def test_progressive_connection_matches_eq_10_by_hand():
    # tokens U_1 = 0, U_2 = 10, U_3 = 20; each block adds 1; alpha = 0.5.
    prompts = _prompts(depth=3, alpha=0.5, progressive=True)
    x = torch.zeros(1, 4, 3)  # 2 content tokens, then 2 slots
    out, taps = run_prompted_blocks([AddBlock(1.0)] * 4, x, prompts, slot_start=2, taps=(1, 2, 3, 4))
    # Layer 1: slots = U_1 = 0 -> O_1 = 1. Layer 2: 0.5*10 + 0.5*1 = 5.5 -> O_2 = 6.5.
    # Layer 3: 0.5*20 + 0.5*6.5 = 13.25 -> O_3 = 14.25. Layer 4 is past the depth: 15.25.
    expected_slots = [1.0, 6.5, 14.25, 15.25]
    for tap, value in zip(taps, expected_slots, strict=True):
        assert torch.allclose(tap[0, 2:], torch.full((2, 3), value))
    assert torch.allclose(out[0, :2], torch.full((2, 3), 4.0))  # content tokens untouched by the splice
    assert torch.equal(out, taps[-1])


def test_plain_prefix_replaces_slots():
    prompts = _prompts(depth=3, alpha=0.5, progressive=False)
    _, taps = run_prompted_blocks([AddBlock(1.0)] * 3, torch.zeros(1, 4, 3), prompts, slot_start=2, taps=(1, 2, 3))
    assert [tap[0, 2, 0].item() for tap in taps] == [1.0, 11.0, 21.0]


def test_slots_in_the_middle_keep_the_sequence_order():
    prompts = _prompts(depth=1, alpha=0.01, progressive=True)
    x = torch.arange(5, dtype=torch.float).view(1, 5, 1).expand(1, 5, 3).clone()
    out, _ = run_prompted_blocks([AddBlock(0.0)], x, prompts, slot_start=1)
    assert out[0, :, 0].tolist() == [0.0, 0.0, 0.0, 3.0, 4.0]


def test_gradient_checkpointing_gives_the_same_gradients():
    prompts = _prompts(depth=2, alpha=0.1, progressive=True)
    blocks = [nn.Linear(3, 3) for _ in range(2)]

    def wrap(linear):
        class Block(nn.Module):
            def forward(self, x, attn_mask=None):
                return linear(x)

        return Block()

    grads = []
    for checkpointing in (False, True):
        prompts.tokens.grad = None
        out, _ = run_prompted_blocks(
            [wrap(b) for b in blocks], torch.ones(1, 4, 3), prompts, 2, gradient_checkpointing=checkpointing
        )
        out.sum().backward()
        grads.append(prompts.tokens.grad.clone())
    assert torch.allclose(grads[0], grads[1])
    assert grads[0].abs().sum() > 0
