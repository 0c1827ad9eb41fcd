"""Which encoder layers the CLIP-prompt models use, relative to the backbone's depth, and their checks.

DAPO (§5.1) and MultiADS (§5.1) adapt the patch tokens of layers 6, 12, 18 and 24 of ViT-L's 24: the quarter
points ``⌈i · L / 4⌉``, ``i = 1..4``, of an ``L``-layer vision tower, the default for every backbone. DAPO's
prompt tokens go into every layer of both encoders (12 of 12 text layers, 24 of 24 vision layers).
"""

from collections.abc import Sequence

from open_clip.model import CLIP

STAGES = 4
"""``M``, the adapted stages of the papers."""


def quarter_layers(depth: int) -> tuple[int, ...]:
    """``⌈i · L / 4⌉`` for ``i = 1..4`` (distinct): (6, 12, 18, 24) for ``L = 24``, (3, 6, 9, 12) for 12."""
    return tuple(dict.fromkeys(-(-stage * depth // STAGES) for stage in range(1, STAGES + 1)))


def check_layers(name: str, layers: Sequence[int], available: int, minimum: int = 1) -> None:
    """Raise a ``ValueError`` naming the option unless every layer number lies in ``minimum..available``."""
    if not layers or any(not minimum <= layer <= available for layer in layers):
        msg = (
            f"{name}={list(layers)} does not fit a backbone with {available} layers (allowed: {minimum}..{available})."
        )
        raise ValueError(msg)


def resolve_adapter_layers(clip: CLIP, layers: Sequence[int] | None) -> tuple[int, ...]:
    """The checked 1-based vision layers to adapt: ``layers``, or with ``None`` the tower's :func:`quarter_layers`."""
    depth = len(clip.visual.transformer.resblocks)
    chosen = quarter_layers(depth) if layers is None else tuple(layers)
    check_layers("adapter_layers", chosen, depth)
    return chosen


def resolve_prompt_depth(name: str, depth: int | None, available: int) -> int:
    """The checked number of layers that receive prompt tokens: ``depth``, or with ``None`` all ``available``."""
    chosen = available if depth is None else depth
    check_layers(name, [chosen], available)
    return chosen
