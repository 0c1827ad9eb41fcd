"""Shared fixtures: the tiny CLIP and small Dapo configurations (CPU, random weights)."""

import logging
from collections.abc import Mapping
from pathlib import Path

import pytest

from tiny import TINY


@pytest.fixture(scope="session")
def tiny_kwargs() -> Mapping:
    """Read-only, so that tests build variants with ``{**tiny_kwargs, ...}`` and cannot leak changes."""
    return TINY


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_kwargs) -> Path:
    """A learned-weights checkpoint of the untrained tiny Dapo, for tests about plumbing rather than accuracy."""
    from lightning.pytorch import Trainer

    from anomalib_dapo import Dapo

    path = tmp_path_factory.mktemp("weights") / "tiny.ckpt"
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(Dapo(**tiny_kwargs))
    trainer.save_checkpoint(path)
    return path


@pytest.fixture
def root_handlers():
    """The root logger, its handlers and level restored afterwards (tests empty it: pytest adds capture handlers)."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    yield root
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in saved:
        root.addHandler(handler)
    root.setLevel(level)
