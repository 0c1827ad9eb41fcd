"""Shared fixtures: the tiny CLIP and small Dapo configurations (CPU, random weights), the synthetic datasets."""

import gc
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tiny import SYNTHETIC, TINY


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``make test``) the workers share the cores: one thread each, and in the processes they start.

    Without it, each worker's torch (and each console script it starts) takes every core, and they contend.
    """
    del config
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Exempt what collection imported (torch, Lightning, anomalib: some 600 000 objects) from the garbage collector.

    Each full collection would walk them all again, and the tests' model building, runs and pictures trigger
    many: about a tenth of the CPU time of an in-process test file. They are module-level objects, alive to the
    end anyway; reference counting still frees any of them that goes out of use.
    """
    del session
    gc.freeze()


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


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in sorted(root.rglob("*"))}


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> Iterator[Callable[..., Path]]:
    """``synthetic(**params)``: the root of the synthetic dataset ``generate_synthetic_dataset`` writes with
    ``params`` over :data:`tiny.SYNTHETIC`, written once per session and shared, so read-only: a test that changes
    files copies the dataset first. The session fails at its end if a test changed one."""
    from anomalib_dapo.data import generate_synthetic_dataset

    written: dict[str, tuple[Path, dict]] = {}

    def get(**params: object) -> Path:
        params = {**SYNTHETIC, **params}
        key = repr(sorted((name, tuple(v) if isinstance(v, list) else v) for name, v in params.items()))
        if key not in written:
            root = generate_synthetic_dataset(tmp_path_factory.mktemp("synthetic") / "data", **params)
            written[key] = (root, _listing(root))
        return written[key][0]

    yield get
    changed = [str(root) for root, listing in written.values() if _listing(root) != listing]
    assert not changed, f"tests changed the shared synthetic datasets {changed}: copy one before changing it"
