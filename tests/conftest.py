"""Shared fixtures: the tiny CLIP and small Dapo configurations (CPU, random weights)."""

import pytest

TINY = {
    "backbone": "dapo-tiny",
    "pretrained": None,
    "image_size": 64,
    "text_depth": 4,
    "adapter_layers": [2, 4],
    "num_prompts": 2,
    "visualizer": False,
}
"""A Dapo small enough for CPU tests: 4-layer 64-wide CLIP, 8×8 patch grid, two stages, E = 2."""


@pytest.fixture
def tiny_kwargs() -> dict:
    return dict(TINY)
