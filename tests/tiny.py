"""The tiny Dapo configuration and the small synthetic dataset shared by the tests (importable from any test module)."""

import json
from collections.abc import Collection
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


PROMPT_OPTIONS = ("text_depth", "num_prompts")
"""Dapo's prompt-learning options, which MultiAds has not."""


def tiny_config(drop: Collection[str] = ()) -> dict:
    """:data:`TINY` less the names in ``drop`` (those a test sets itself, or a model has not)."""
    return {key: value for key, value in TINY.items() if key not in drop}


def cli_options(drop: Collection[str] = ()) -> tuple[str, ...]:
    """:func:`tiny_config` as ``--model.<name> <value>`` options (of anomalib, dapo-report)."""
    return tuple(
        arg
        for key, value in tiny_config(drop).items()
        for arg in (f"--model.{key}", value if isinstance(value, str) else json.dumps(value))
    )


TINY_ARGS = ("--model", "Dapo", *cli_options())
"""The same model as options of the ``anomalib`` console script."""

SYNTHETIC = MappingProxyType({"image_size": 64, "n_train": 2, "n_test_good": 2, "n_test_per_defect": 2})
"""The sizes of the synthetic dataset that tests about plumbing share (all categories, seed 0): the ``synthetic``
fixture's defaults, and the sizes to give ``SyntheticDefects`` on its root."""

ONE_DISC = MappingProxyType(
    {"categories": ("disc",), "image_size": 32, "n_train": 1, "n_test_good": 1, "n_test_per_defect": 1}
)
"""One image per folder of the synthetic disc at 32 px: for tests about inputs and messages, not outputs."""
