"""The tiny Dapo configuration shared by the tests (importable from any test module)."""

from types import MappingProxyType

TINY = MappingProxyType(
    {
        "backbone": "dapo-tiny",
        "pretrained": None,
        "image_size": 64,
        "text_depth": 4,
        "adapter_layers": [2, 4],
        "num_prompts": 2,
        "visualizer": False,
    }
)
"""A Dapo small enough for CPU tests: 4-layer 64-wide CLIP, 8×8 patch grid, two stages, E = 2."""
