"""The tiny Dapo configuration shared by the tests (importable from any test module)."""

import json
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

TINY_ARGS = (
    "--model",
    "Dapo",
    *(
        arg
        for key, value in TINY.items()
        for arg in (f"--model.{key}", value if isinstance(value, str) else json.dumps(value))
    ),
)
"""The same model as options of the ``anomalib`` console script."""
