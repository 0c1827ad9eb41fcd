"""A failed checkpoint write leaves the previous checkpoint as it was (a full disk during ``anomalib train``)."""

import errno
import io
import os
import shutil
from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch import Callback, Trainer

from anomalib_dapo import Dapo
from anomalib_dapo.data import CrossDataset
from tiny import ONE_DISC, TINY


def full_disk(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Simulate a full disk under ``folder``, with the system's temp folder on another file system (tmpfs).

    Every writer a checkpoint can take stops half-way through with ``ENOSPC`` when its target lies under
    ``folder``: ``torch.save`` to a path or an open file, and ``shutil.copyfile`` (what a move across file
    systems does); a rename into ``folder`` from another folder fails with ``EXDEV``, as across file systems.
    """
    save, copy, rename = torch.save, shutil.copyfile, os.rename

    def target(file: object) -> Path | None:
        if isinstance(file, str | os.PathLike):
            return Path(file)
        if isinstance(file, io.IOBase) and not isinstance(file, io.BytesIO):
            return Path(os.readlink(f"/proc/self/fd/{file.fileno()}"))
        return None

    def write_half(data: bytes, file: io.IOBase) -> None:
        file.write(data[: len(data) // 2])
        file.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def full_save(obj: object, file: object, *args, **kwargs) -> None:
        path = target(file)
        if path is None or not path.is_relative_to(folder):
            save(obj, file, *args, **kwargs)
            return
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        if isinstance(file, io.IOBase):
            write_half(buffer.getvalue(), file)
        with path.open("wb") as opened:
            write_half(buffer.getvalue(), opened)

    def full_copy(source: str, destination: str, *args, **kwargs) -> str:
        if not Path(destination).is_relative_to(folder):
            return copy(source, destination, *args, **kwargs)
        with Path(destination).open("wb") as opened:
            write_half(Path(source).read_bytes(), opened)
        return destination

    def cross_device(source: str, destination: str, *args, **kwargs) -> None:
        if Path(source).parent != Path(destination).parent and Path(destination).is_relative_to(folder):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        rename(source, destination, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_save)
    monkeypatch.setattr(shutil, "copyfile", full_copy)
    monkeypatch.setattr(os, "rename", cross_device)


class DiskFillsAfterFirstEpoch(Callback):
    """Keeps the first epoch's checkpoint, then fills the disk of the run folder."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.first: bytes = b""

    def on_train_epoch_start(self, trainer: Trainer, pl_module: Dapo) -> None:
        del pl_module
        if trainer.current_epoch == 1:
            self.first = Path(trainer.checkpoint_callback.best_model_path).read_bytes()
            full_disk(self.monkeypatch, Path(trainer.default_root_dir))


@pytest.mark.slow
def test_a_failed_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, synthetic):
    data = synthetic(**ONE_DISC)
    disk = DiskFillsAfterFirstEpoch(monkeypatch)
    results = tmp_path / "results"
    engine = Engine(logger=False, default_root_dir=results, max_epochs=2, accelerator="cpu", callbacks=[disk])
    with pytest.raises(OSError, match="No space left on device"):
        engine.fit(model=Dapo(**TINY), datamodule=CrossDataset("synthetic", data, "synthetic", data, "disc"))
    monkeypatch.undo()
    weights = results / "Dapo/CrossDataset/disc/latest/weights/lightning"
    assert disk.first, "the first epoch wrote no checkpoint"
    assert sorted(path.name for path in weights.iterdir()) == ["model.ckpt"]  # no partial file left
    assert (weights / "model.ckpt").read_bytes() == disk.first
    Dapo(weights=str(weights / "model.ckpt"), **TINY)  # and it loads
