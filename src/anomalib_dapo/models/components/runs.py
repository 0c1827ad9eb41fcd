"""Where and how a run writes: workarounds for anomalib 2.7's engine on Lightning 2.6, applied by the plugin's models.

* anomalib versions the folders of ``fit``/``train`` runs only and writes ``test``, ``validate`` and ``predict``
  into the folder of the latest run: testing a training run's weights replaced its ``config.yaml`` and added
  ``model-v1.ckpt`` beside them. :func:`separate_run` gives such a run a new version folder of its own and leaves
  ``latest`` on the training run.
* Lightning writes a checkpoint to a temporary file in the system's temp folder and moves it: across file systems
  the move is a copy over the destination, so a full disk left a truncated ``model.ckpt`` (the earlier good one
  gone). :class:`AtomicCheckpointIO` writes a temporary file in the checkpoint's own folder and renames it.
"""

import logging
import os
import re
import tempfile
import weakref
from pathlib import Path
from typing import Any

import torch
from anomalib.engine.plugins.checkpoint_io import AnomalibCheckpointIO
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from anomalib_dapo.metrics.type_results import new_version_dir

logger = logging.getLogger(__name__)

VERSION = re.compile(r"v(\d+)")
"""anomalib's version folders: ``<root>/<model>/<dataset>/<category>/v0``, ``v1``, … beside the ``latest`` link."""

_PREPARED: "weakref.WeakSet[Trainer]" = weakref.WeakSet()


def prepare_run(trainer: Trainer) -> None:
    """Once per trainer, before its callbacks set up: :func:`separate_run` and :func:`atomic_checkpoints`.

    An ``Engine`` runs ``validate`` then ``test`` (``fit`` then ``test`` for ``train``) on one trainer: one run.
    """
    if trainer in _PREPARED:
        return
    _PREPARED.add(trainer)
    separate_run(trainer)
    atomic_checkpoints(trainer)


class AtomicCheckpointIO(AnomalibCheckpointIO):
    """anomalib's checkpoint reader; the writer puts the whole file in place at once, or leaves the old one.

    The checkpoint is written to a temporary file in the destination folder, synced, and renamed over the
    destination (``os.replace``, atomic on one file system). A failed write removes the temporary file.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically (remote paths: Lightning's writer)."""
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def atomic_checkpoints(trainer: Trainer) -> None:
    """Make the trainer write checkpoints with :class:`AtomicCheckpointIO`, unless the user chose another writer."""
    current = trainer.strategy.checkpoint_io
    if type(current) in {AnomalibCheckpointIO, TorchCheckpointIO}:
        extras = getattr(current, "extra_safe_globals", [])
        trainer.strategy.checkpoint_io = AtomicCheckpointIO(extra_safe_globals=extras)


def separate_run(trainer: Trainer) -> None:
    """Move a run that anomalib points at an earlier run's version folder to a new version folder of its own.

    anomalib creates a fresh, empty version folder for ``fit`` and ``train``; ``test``, ``validate`` and
    ``predict`` get the folder ``latest`` names, with the earlier run's files in it. Such a run gets the next
    ``v<N>`` instead: its config, checkpoint callback and pictures go there; ``latest`` keeps naming the training
    run (the demo's ``latest/weights/...`` path stays valid).
    """
    run = Path(trainer.default_root_dir)
    if not VERSION.fullmatch(run.name) or not run.is_dir() or not any(run.iterdir()):
        return
    own = new_version_dir(run.parent)
    trainer._default_root_dir = str(own)  # Lightning has no setter; nothing has read it yet
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath and Path(callback.dirpath).is_relative_to(run):
            callback.dirpath = str(own / Path(callback.dirpath).relative_to(run))
    logger.info("This run writes to %s; the earlier run in %s is left as it was.", own, run)
