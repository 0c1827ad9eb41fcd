"""Workarounds for what anomalib 2.7 does not yet offer the plugin, in one place; each with its reason.

They target **anomalib 2.7** (:data:`ANOMALIB_VERSION`). ``tests/test_compat.py`` checks, for each one, that
anomalib still behaves as described here: a failing test there says a workaround can go.

The models (``TypedPromptModule``, the base of ``Dapo`` and ``MultiAds``) use :func:`learning_type`,
:func:`no_validation_data`, :func:`collate_typed_batches`, :func:`read_predict_folders_with`,
:func:`needs_calibration` with :func:`calibrate`, :func:`prepare_run` (a run's own version folder, atomic
checkpoint writes) and :func:`single_console_handler`; their package names them on anomalib with
:func:`name_on_anomalib`. Each says why.

The CLI (``AnomalibCLI``), applied by the start-up hook once ``anomalib.cli.cli`` is imported
(:func:`apply_cli_workarounds`):

- **The seed.** anomalib 2.7's CLI declares ``seed_everything`` but never applies it: ``anomalib train --config
  configs/demo.yaml`` with ``seed_everything: 0`` draws other prompt and adapter initialisations and another batch
  order at every run (Lightning's own CLI seeds before instantiating the classes; ``AnomalibCLI`` parses the option
  and drops it). The CLI now seeds as Lightning's does, once the configuration is parsed and before any class is
  built, when the seed is an integer. ``True`` (anomalib's default, "a random seed") and ``False`` leave the run
  unseeded, as before. Applying the same seed again, should a later anomalib do it too, changes nothing.
- **The plugin's errors in the last lines.** jsonargparse builds ``--model`` and ``--data`` inside their
  ``X | None`` type checks, so an error of the plugin's (weights that are no checkpoint, an image size that does
  not fit the backbone …) reaches the user buried in "Does not validate against any of the Union subtypes" and a
  dump of every argument. A CLI instantiator of the plugin's classes ends the program with the plugin's own
  message instead, as an argument error would. The Python API is unchanged: there the error is raised as it is.

The benchmark command, applied once ``anomalib.cli.pipelines`` is imported (:func:`register_benchmark_command`):
``anomalib benchmark`` runs the plugin's benchmark, which writes every job's row and exits non-zero when one failed.
"""

import importlib
import logging
import os
import re
import sys
import tempfile
import weakref
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from anomalib import LearningType
from anomalib.data import AnomalibDataModule, PredictDataset
from anomalib.engine.plugins.checkpoint_io import AnomalibCheckpointIO
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from rich.logging import RichHandler

from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.metrics.type_results import new_version_dir

if TYPE_CHECKING:
    from anomalib.cli import AnomalibCLI
    from anomalib.models import AnomalibModule

logger = logging.getLogger(__name__)

ANOMALIB_VERSION = "2.7"
"""The anomalib version whose limits these workarounds answer."""


def learning_type(trained: bool, k_shot: int) -> LearningType:
    """The learning type a model reports: ``ONE_CLASS`` while it trains, else zero-shot (few-shot with ``k_shot``).

    **Training reports ONE_CLASS.** anomalib 2.7's ``Engine.fit`` and ``Engine.train`` run Lightning's ``fit``
    only for models that are neither zero- nor few-shot (those they merely validate), and ``LearningType`` has no
    kind for a model that learns from labelled anomalies of other data. So until its prompts and adapters are
    learned (``trained``: learned weights given), a model of the plugin presents itself as ``ONE_CLASS``.
    """
    if not trained:
        return LearningType.ONE_CLASS
    return LearningType.FEW_SHOT if k_shot else LearningType.ZERO_SHOT


def no_validation_data() -> list:
    """An empty list of validation loaders: a model's ``val_dataloader`` when it has no data of its own.

    **The empty validation loader.** anomalib 2.7's ``Engine.predict`` validates zero- and few-shot models before
    predicting, even when it was given an image folder alone, and Lightning refuses a validation without a
    ``val_dataloader``. With nothing to validate on, the model keeps the calibration loaded with its weights. A
    datamodule's validation data, whenever given, takes precedence over this.
    """
    return []


def collate_typed_batches(datamodule: object) -> None:
    """Make an anomalib datamodule collate into :class:`TypedImageBatch`, unless it has a collate function set.

    **Typed batches.** anomalib 2.7's own datasets collate into ``ImageBatch``, whose fixed fields refuse the
    defect-type outputs, and its ``Evaluator`` updates the metrics with the batch (not with the step's outputs),
    which the steps fill in place. So the batch itself must be typed. Lightning's ``on_after_batch_transfer``
    could convert it, but Lightning warns at every run whose model overrides it beside a datamodule; anomalib's
    own hook for this is the datamodule's ``external_collate_fn`` (its tiled ensemble sets it the same way).
    """
    if isinstance(datamodule, AnomalibDataModule) and datamodule.external_collate_fn is None:
        datamodule.external_collate_fn = TypedImageBatch.collate


def read_predict_folders_with(trainer: Trainer, dataset_class: type[PredictDataset]) -> None:
    """Make the ``PredictDataset`` that anomalib's engine built for an image folder read with ``dataset_class``.

    **The image folder's reader.** For ``anomalib predict --data <folder or image>`` anomalib 2.7's engine builds
    a ``PredictDataset`` itself, with no way to pass another reader, and its reader clips 16-bit images to white.
    ``dataset_class`` (a subclass that only reads differently) takes its place, on the same object.
    """
    loaders = trainer.predict_dataloaders
    for loader in loaders if isinstance(loaders, list | tuple) else [loaders]:
        if type(getattr(loader, "dataset", None)) is PredictDataset:
            loader.dataset.__class__ = dataset_class


def needs_calibration(model: "AnomalibModule") -> bool:
    """Whether Lightning restored a checkpoint for this run on a datamodule with validation data.

    **Calibration after** ``--ckpt_path``. anomalib 2.7's ``Engine.test`` and ``Engine.predict`` validate zero-
    and few-shot models first, which computes thresholds and normalisation on the target's validation data, but
    only when no checkpoint path is given (``Engine._should_run_validation``): it assumes a checkpoint holds the
    calibration of the data it is used on. A checkpoint of the plugin's models holds the calibration of its
    *training* run's data, so ``--ckpt_path W`` would score a new target with the source's thresholds while
    ``--model.weights W`` recalibrates on the target. :func:`calibrate` runs the validation pass anomalib
    skipped, so both give the same zero-shot result.
    """
    datamodule = model.trainer.datamodule
    return (
        model.trainer.ckpt_path is not None
        and model.post_processor is not None
        and isinstance(datamodule, AnomalibDataModule)
        and getattr(datamodule, "val_data", None) is not None  # set up unless val_split_mode is none
    )


def calibrate(model: "AnomalibModule") -> None:
    """Recompute thresholds and normalisation on the datamodule's validation data, as anomalib's validation does.

    The batches go through the same hooks as in ``Trainer.validate``: the pre-processor's transform,
    ``validation_step``, and the post-processor's batch and epoch ends.
    """
    trainer = model.trainer
    pre_processor, post_processor = model.pre_processor, model.post_processor
    with torch.no_grad():
        for index, batch in enumerate(trainer.datamodule.val_dataloader()):
            batch = move_data_to_device(batch, model.device)
            if pre_processor is not None:
                pre_processor.on_validation_batch_start(trainer, model, batch, index)
            outputs = model.validation_step(batch, index)
            post_processor.on_validation_batch_end(trainer, model, outputs, batch, index)
    post_processor.on_validation_epoch_end(trainer, model)


SEEDED = "_anomalib_dapo_seeds"
"""Marks the wrapped method, so that it is wrapped once."""
PLUGIN = "anomalib_dapo"


class PluginInputError(SystemExit):
    """The plugin's own error while the CLI builds one of its classes: exits with that error's message alone."""


def config_seed(cli: "AnomalibCLI") -> int | None:
    """The integer ``seed_everything`` of the parsed configuration of the running subcommand, else ``None``."""
    seed = cli.config.get(str(cli.subcommand), cli.config).get("seed_everything")
    return None if isinstance(seed, bool) else seed


def is_plugin_error(error: BaseException) -> bool:
    """Whether the plugin raised ``error`` for the user: one of its own exceptions, or a ``ValueError`` it raised.

    Anything else (a bug, or an error of another library) keeps its traceback.
    """
    if type(error).__module__.split(".")[0] == PLUGIN:
        return True
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    raised_by_plugin = frame is not None and frame.tb_frame.f_globals.get("__name__", "").split(".")[0] == PLUGIN
    return isinstance(error, ValueError) and raised_by_plugin


def build_plugin_class(class_type: type, *args: Any, **kwargs: Any) -> Any:
    """Instantiator for jsonargparse: build ``class_type``; a plugin class's own error ends the run with its message."""
    try:
        return class_type(*args, **kwargs)
    except Exception as error:
        if class_type.__module__.split(".")[0] != PLUGIN or not is_plugin_error(error):
            raise
        raise PluginInputError(f"{type(error).__name__}: {error}") from error


def apply_cli_workarounds(cli_module: ModuleType) -> None:
    """Make ``cli_module.AnomalibCLI`` seed and report the plugin's errors plainly before it builds the classes."""
    cli_class = cli_module.AnomalibCLI
    original = cli_class.before_instantiate_classes
    if getattr(original, SEEDED, False):
        return

    def before_instantiate_classes(self: "AnomalibCLI") -> None:
        original(self)
        from anomalib.data import AnomalibDataModule
        from anomalib.models import AnomalibModule

        # the subcommand's parser builds the classes, and jsonargparse's subparsers do not inherit instantiators
        parser = self.subcommand_parsers.get(self.config["subcommand"], self.parser)
        for base in (AnomalibModule, AnomalibDataModule):
            parser.add_instantiator(build_plugin_class, base)
        if (seed := config_seed(self)) is not None:
            from lightning.pytorch import seed_everything

            seed_everything(seed, workers=True)

    before_instantiate_classes.__doc__ = original.__doc__
    before_instantiate_classes.__wrapped__ = original  # type: ignore[attr-defined]  # anomalib's own, for tests
    setattr(before_instantiate_classes, SEEDED, True)
    cli_class.before_instantiate_classes = before_instantiate_classes


# ---------------------------------------------------------------------------------------------------------------
# `anomalib benchmark`: every job's row, failures visible (hook on ``anomalib.cli.pipelines``)
#
# anomalib 2.7's benchmark builds every model before any job runs (a model that cannot be built, such as WinClip
# without its CLIP weights, stops the whole grid: no results.csv), fits zero-shot models without validation data
# (WinClip fails), keeps only the first job's columns, reports no throughput, and swallows every failure: its
# runners catch the job's exception, ``Pipeline.run`` catches the runner's, and the command exits 0.
# ---------------------------------------------------------------------------------------------------------------

BENCHMARK = "benchmark"
"""anomalib's pipeline subcommand of the benchmark."""


def register_benchmark_command(pipelines: ModuleType) -> None:
    """Make ``anomalib benchmark`` run the plugin's benchmark command instead of anomalib 2.7's pipeline.

    :class:`~anomalib_dapo.pipelines.benchmark.BenchmarkCommand` reads the same config and writes the same
    ``runs/benchmark/<date-time>/results.csv``, with one row per job (a failed one marked ``status: failed``,
    with its error), the union of the jobs' metrics and the throughput; a failed job makes the command exit with
    status 1 and the errors as its last lines. anomalib's CLI runs whichever pipeline its registry names for the
    subcommand, so the plugin names its own there, before the CLI builds its parser.

    Args:
        pipelines: The imported ``anomalib.cli.pipelines``, whose ``PIPELINE_REGISTRY`` is ``None`` when
            anomalib's pipelines are not installed (then there is no ``benchmark`` command to fix).

    """
    registry = pipelines.PIPELINE_REGISTRY
    if registry is None:
        return
    from anomalib_dapo.pipelines.benchmark import BenchmarkCommand  # imports anomalib.pipelines

    registry[BENCHMARK] = BenchmarkCommand


# ---------------------------------------------------------------------------------------------------------------
# Where and how a run writes (the models' ``configure_callbacks``, through :func:`prepare_run`)
#
# * anomalib versions the folders of ``fit``/``train`` runs only and writes ``test``, ``validate`` and ``predict``
#   into the folder of the latest run (``Engine._setup_workspace``): testing a training run's weights replaced its
#   ``config.yaml`` and added ``model-v1.ckpt`` beside them. :func:`separate_run` gives such a run a new version
#   folder of its own and leaves ``latest`` on the training run.
# * Lightning 2.6 (the release anomalib 2.7 runs on) writes a checkpoint through an fsspec transaction, to a
#   temporary file in the system's temp folder that is then moved: across file systems the move is a copy over the
#   destination, so a full disk left a truncated ``model.ckpt`` (the earlier good one gone).
#   :class:`AtomicCheckpointIO` writes a temporary file in the checkpoint's own folder and renames it.
# ---------------------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------------------
# Finding the models, and one console line per log record (the models' package and their constructor)
# ---------------------------------------------------------------------------------------------------------------

PACKAGE = "anomalib_dapo"
"""The module that saved configs name (``class_path: anomalib_dapo.Dapo``): jsonargparse writes the shortest path."""


def name_on_anomalib(*models: type) -> None:
    """Name the plugin's models on ``anomalib.models``, and let ``get_model`` import configs that name this package.

    **Finding the models by name.** anomalib 2.7's ``get_model`` looks dict configs (``{"class_path": "Dapo"}``, the
    form of ``anomalib benchmark`` configs) up on ``anomalib.models`` alone, and imports a dotted ``class_path``
    only from the modules in its ``ALLOWED_MODULES`` whitelist: the ``config.yaml`` that ``anomalib train`` saves
    says ``anomalib_dapo.Dapo``, which anomalib's ``tools/inference/lightning_inference.py`` would refuse. anomalib
    has no registry for plugins' models, so the models are set on ``anomalib.models`` and this package is added to
    that whitelist; nothing of anomalib's is replaced or removed.
    """
    anomalib_models = importlib.import_module("anomalib.models")
    for model in models:
        if not hasattr(anomalib_models, model.__name__):
            setattr(anomalib_models, model.__name__, model)
    anomalib_models.ALLOWED_MODULES.add(PACKAGE)


def single_console_handler() -> None:
    """Keep one of anomalib's plain and rich root handlers: rich on a terminal, plain in logs and pipes.

    **One console line per log record.** anomalib 2.7's ``configure_logger`` (run by its CLI) calls
    ``logging.basicConfig``, which puts a plain stderr handler on the root logger, and then adds a ``RichHandler``
    next to it: every record that reaches the root logger is printed twice. One of the two is kept when, and only
    when, the root logger holds exactly that pair, so any other logging set-up is left alone (rich wraps lines at
    80 columns in files and pipes, hence the plain one there).
    """
    root = logging.getLogger()
    if len(root.handlers) != len(("plain", "rich")):
        return
    plain, rich = root.handlers
    if type(plain) is logging.StreamHandler and plain.stream is sys.stderr and type(rich) is RichHandler:
        root.removeHandler(plain if rich.console.is_terminal else rich)
