"""Shared fixtures: the tiny CLIP and small Dapo configurations (CPU, random weights), the synthetic datasets."""

import gc
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files holding slow tests first, each file's tests in their order.

    ``make test`` hands whole files to the workers in this order (``--no-loadscope-reorder``): the long ones
    start first and the many short ones fill in after them, so both workers end together. pytest-xdist's own
    order, most tests first, started the one-test files of a minute each (the demo, DDP) last.
    """
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


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


def _session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder all xdist workers of this session share (each one's basetemp is in it); basetemp serially."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _written_once(folder: Path, write: Callable[[Path], object]) -> Path:
    """``folder``, filled by ``write(folder)`` in the first process of the session that asks for it (the others wait).

    Written in place (a checkpoint records the paths it was written beside) and marked complete at the end, so a
    write that failed is redone by the next asker.
    """
    from filelock import FileLock

    complete = folder / ".complete"
    with FileLock(f"{folder}.lock"):
        if not complete.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            write(folder)
            complete.touch()
    return folder


@pytest.fixture(scope="session")
def learned_assets(tmp_path_factory) -> Callable[[type], dict[str, Path]]:
    """``learned_assets(cls)``: ``parity.write_assets`` of ``cls`` (a tiny CLIP file and a learned checkpoint, both
    deterministic), written once per session and shared by the xdist workers, so read-only."""
    from parity import MODEL_KWARGS, write_assets

    root = _session_root(tmp_path_factory) / "learned"

    def get(cls: type) -> dict[str, Path]:
        folder = _written_once(root / cls.__name__, lambda folder: write_assets(folder, cls, MODEL_KWARGS[cls]))
        return {"clip": folder / "tiny_clip.pt", "weights": folder / "learned.ckpt"}

    return get


@pytest.fixture(scope="session")
def learned_export(tmp_path_factory, learned_assets) -> Iterator[Callable[..., Path]]:
    """``learned_export(cls, export_type, defect_types, type_outputs=True)``: the file ``Engine.export`` (what
    ``anomalib export`` runs, no datamodule) writes for ``cls`` built on :func:`learned_assets` with these options.

    An export of the tiny models takes 15-20 s: each is written once per session and shared by the tests and the
    xdist workers, so read-only (a test that changes files copies them first). The session fails at its end if a
    test changed one.
    """
    from anomalib.deploy import ExportType
    from anomalib.engine import Engine

    from parity import MODEL_KWARGS

    root = _session_root(tmp_path_factory) / "exports"
    suffix = {ExportType.TORCH: ".pt", ExportType.ONNX: ".onnx", ExportType.OPENVINO: ".xml"}
    used: dict[Path, dict[str, tuple[int, int]]] = {}

    def get(cls: type, export_type: ExportType, defect_types: Sequence[str] | None, type_outputs: bool = True) -> Path:
        def write(folder: Path) -> None:
            assets = learned_assets(cls)
            model = cls(
                pretrained=str(assets["clip"]),
                weights=str(assets["weights"]),
                defect_types=defect_types,
                type_outputs=type_outputs,
                **MODEL_KWARGS[cls],
            )
            Engine(default_root_dir=folder, logger=False).export(model, export_type, export_root=folder)

        vocabulary = "-".join(defect_types) if defect_types else "generic"
        name = f"{cls.__name__}-{export_type.value}-{vocabulary}-{'typed' if type_outputs else 'untyped'}"
        folder = _written_once(root / name, write)
        used.setdefault(folder, _listing(folder))
        return folder / "weights" / export_type.value / f"model{suffix[export_type]}"

    yield get
    changed = [str(folder) for folder, listing in used.items() if _listing(folder) != listing]
    assert not changed, f"tests changed the shared exports {changed}: copy one before changing it"
