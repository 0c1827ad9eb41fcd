"""Each workaround of :mod:`anomalib_dapo.compat` is still needed: anomalib 2.7 behaves as described there.

A test failing here means anomalib changed: the workaround it names can go (and the test with it). Beside each
such check, tests of what the workaround does.
"""

import errno
import io
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import fsspec
import numpy as np
import pytest
import torch
from anomalib import LearningType
from anomalib.cli import AnomalibCLI
from anomalib.data import ImageBatch, MVTecAD, PredictDataset
from anomalib.engine import Engine
from anomalib.loggers import configure_logger
from anomalib.metrics import AUROC, Evaluator
from anomalib.models import UnknownModelError, get_model
from lightning import seed_everything
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from PIL import Image

from anomalib_dapo import Dapo, compat
from anomalib_dapo.data import CrossDataset, SyntheticDefects
from anomalib_dapo.data.images import FolderImages
from tiny import ONE_DISC, TINY, TINY_ARGS


@pytest.fixture
def cli_args(tmp_path) -> list[str]:
    """``anomalib fit`` of the tiny Dapo on a folder datamodule (built, never set up)."""
    data = ["--data", "anomalib.data.Folder", "--data.name", "x", "--data.root", str(tmp_path)]
    data += ["--data.normal_dir", "n"]
    return ["fit", *TINY_ARGS, *data, "--trainer.logger", "false", "--default_root_dir", str(tmp_path)]


@pytest.fixture
def anomalib_cli(monkeypatch) -> type[AnomalibCLI]:
    """anomalib's CLI without the plugin's workarounds."""
    wrapped = AnomalibCLI.before_instantiate_classes
    assert getattr(wrapped, compat.SEEDED, False), "the start-up hook applies the CLI workarounds"
    monkeypatch.setattr(AnomalibCLI, "before_instantiate_classes", wrapped.__wrapped__)
    return AnomalibCLI


def test_anomalib_cli_still_ignores_seed_everything(anomalib_cli, cli_args):
    torch.manual_seed(1)
    anomalib_cli([*cli_args, "--seed_everything", "7"], run=False)
    assert torch.initial_seed() == 1  # anomalib's CLI parsed the seed and dropped it


def test_the_plugin_cli_applies_seed_everything(cli_args):
    torch.manual_seed(1)
    AnomalibCLI([*cli_args, "--seed_everything", "7"], run=False)
    assert torch.initial_seed() == 7


def test_anomalib_cli_still_buries_a_model_error_in_its_union_report(anomalib_cli, cli_args):
    with pytest.raises(ValueError, match="Does not validate against any of the Union subtypes") as error:
        anomalib_cli([*cli_args, "--model.image_size", "63"], run=False)
    assert not str(error.value).startswith("BackboneError")


def test_the_plugin_cli_ends_with_the_model_error(cli_args):
    with pytest.raises(compat.PluginInputError, match=r"^BackboneError: image_size 63 does not fit dapo-tiny"):
        AnomalibCLI([*cli_args, "--model.image_size", "63"], run=False)


def test_anomalib_engine_still_trains_only_one_class_models(tmp_path, tiny_kwargs, monkeypatch):
    """A zero-shot model is only validated by ``Engine.fit``: a model that learns must report ``ONE_CLASS``."""
    steps = []
    monkeypatch.setattr(Dapo, "learning_type", property(lambda _: LearningType.ZERO_SHOT))
    monkeypatch.setattr(Dapo, "training_step", lambda *args, **kwargs: steps.append(args))
    datamodule = SyntheticDefects(tmp_path / "data", "disc", image_size=64, n_train=2, n_test_good=1)
    engine = Engine(default_root_dir=tmp_path, accelerator="cpu", logger=False, max_epochs=1)
    engine.fit(Dapo(**tiny_kwargs), datamodule=datamodule)
    assert not steps
    assert compat.learning_type(trained=False, k_shot=0) == LearningType.ONE_CLASS


def test_anomalib_engine_still_validates_before_predicting_on_an_image_folder(tmp_path, tiny_kwargs, monkeypatch):
    """Without the model's empty validation loader, ``Engine.predict(data_path=...)`` fails in that validation."""
    image = tmp_path / "image.png"
    Image.new("RGB", (64, 64)).save(image)
    model = Dapo(**tiny_kwargs)
    monkeypatch.setattr(Dapo, "learning_type", property(lambda _: LearningType.ZERO_SHOT))
    monkeypatch.setattr(Dapo, "val_dataloader", LightningModule.val_dataloader)
    engine = Engine(default_root_dir=tmp_path, accelerator="cpu", logger=False)
    with pytest.raises(MisconfigurationException, match="val_dataloader"):
        engine.predict(model, data_path=image)


def test_anomalib_batches_still_refuse_the_type_fields_and_its_evaluator_reads_the_batch():
    with pytest.raises(TypeError, match="pred_type_mask"):
        ImageBatch(image=torch.rand(1, 3, 8, 8), pred_type_mask=torch.zeros(1, 8, 8, dtype=torch.long))
    labels = torch.tensor([0, 1])
    batch = ImageBatch(image=torch.rand(2, 3, 8, 8), gt_label=labels, pred_score=torch.tensor([0.1, 0.9]))
    outputs = ImageBatch(image=batch.image, gt_label=labels, pred_score=torch.tensor([0.9, 0.1]))
    evaluator = Evaluator(test_metrics=[AUROC(fields=["pred_score", "gt_label"])])
    evaluator.on_test_batch_end(None, None, outputs, batch, 0)
    (metric,) = evaluator.test_metrics
    assert metric.compute() == 1  # the batch's scores, not the outputs' (0): the batch itself must be typed


def test_anomalib_predict_dataset_still_clips_16_bit_images(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((8, 8), 30000, dtype=np.uint16)).save(path)
    assert PredictDataset(path)[0].image.max() == 1  # 30000 / 65535 clipped to white
    assert FolderImages(path)[0].image.max() == pytest.approx(30000 / 65535)


def test_anomalib_engine_still_skips_the_calibration_when_given_a_checkpoint_path(tiny_kwargs, tiny_checkpoint):
    model = Dapo(weights=str(tiny_checkpoint), **tiny_kwargs)
    assert Engine._should_run_validation(model, ckpt_path=None)
    assert not Engine._should_run_validation(model, ckpt_path=str(tiny_checkpoint))


# ``--ckpt_path W`` and ``--model.weights W`` give the same zero-shot result on a target (compat.calibrate).

CALIBRATION = ("image_threshold", "pixel_threshold", "image_min", "image_max", "pixel_min", "pixel_max")


@pytest.fixture(scope="module")
def target(synthetic):
    return synthetic(categories=("grid",), n_test_per_defect=1)


def _run(verb, target, tmp_path, tiny_kwargs, checkpoint, by_path):
    seed_everything(0)  # the same random tiny CLIP in both models (checkpoints hold no frozen weights)
    model = Dapo(**tiny_kwargs) if by_path else Dapo(weights=str(checkpoint), **tiny_kwargs)
    engine = Engine(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False)
    datamodule = MVTecAD(root=target, category="grid", eval_batch_size=4, num_workers=0)
    ckpt_path = str(checkpoint) if by_path else None
    result = getattr(engine, verb)(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
    calibration = {name: getattr(model.post_processor, name).clone() for name in CALIBRATION}
    return result, calibration


@pytest.mark.parametrize("verb", ["test", "predict"])
def test_ckpt_path_recalibrates_on_the_target_like_weights(verb, target, tmp_path, tiny_kwargs, tiny_checkpoint):
    by_weights, calibrated = _run(verb, target, tmp_path / "w", tiny_kwargs, tiny_checkpoint, by_path=False)
    by_path, restored = _run(verb, target, tmp_path / "p", tiny_kwargs, tiny_checkpoint, by_path=True)
    assert torch.isfinite(calibrated["image_threshold"])  # calibrated on the target, not the checkpoint's default
    for name in CALIBRATION:
        torch.testing.assert_close(restored[name], calibrated[name], msg=name)
    if verb == "test":
        assert by_path[0].keys() == by_weights[0].keys()
        for name, value in by_weights[0].items():
            assert by_path[0][name] == pytest.approx(value, abs=1e-6), name
    else:
        for one, other in zip(by_weights, by_path, strict=True):
            torch.testing.assert_close(one.pred_score, other.pred_score)
            assert torch.equal(one.pred_label, other.pred_label)


# A run's own version folder, and checkpoints written whole or not at all (compat.prepare_run).


def test_anomalib_engine_still_points_a_test_run_at_the_latest_training_folder(tmp_path, tiny_kwargs):
    earlier = tmp_path / "Dapo/SyntheticDefects/disc/v0"
    earlier.mkdir(parents=True)
    (earlier / "config.yaml").write_text("the training run's")
    (earlier.parent / "latest").symlink_to("v0")
    engine = Engine(default_root_dir=tmp_path, accelerator="cpu", logger=False)
    datamodule = SyntheticDefects(tmp_path / "data", "disc")
    engine._setup_workspace(Dapo(**tiny_kwargs), datamodule=datamodule, versioned_dir=False)
    assert Path(engine._cache.args["default_root_dir"]) == earlier  # a test run would write into the training run


def test_lightning_still_writes_a_checkpoint_in_the_system_temp_folder_and_moves_it(tmp_path):
    fs = fsspec.filesystem("file")
    with fs.transaction, fs.open(str(tmp_path / "model.ckpt"), "wb") as file:
        assert Path(file.temp).parent == Path(tempfile.gettempdir())  # then shutil.move: a copy across file systems


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


# Finding the models by name (compat.name_on_anomalib).


def test_anomalib_get_model_still_imports_class_paths_from_its_whitelist_only(monkeypatch):
    assert compat.PACKAGE in compat.importlib.import_module("anomalib.models").ALLOWED_MODULES
    assert isinstance(get_model({"class_path": "anomalib_dapo.Dapo", "init_args": dict(TINY)}), Dapo)
    monkeypatch.setattr("anomalib.models.ALLOWED_MODULES", {"anomalib.models"})
    with pytest.raises(UnknownModelError) as refused:
        get_model({"class_path": "anomalib_dapo.Dapo", "init_args": dict(TINY)})
    assert str(refused.value.__cause__) == "Module import from 'anomalib_dapo' is not allowed."


# One console line per log record under the console script (compat.single_console_handler).


def clear(root: logging.Logger) -> None:
    for handler in root.handlers[:]:
        root.removeHandler(handler)


def test_anomalib_console_pair_keeps_the_rich_handler_only(root_handlers, tiny_kwargs):
    clear(root_handlers)
    configure_logger()  # what `anomalib` runs first: basicConfig's plain handler and a RichHandler
    assert len(root_handlers.handlers) == 2
    plain, rich = root_handlers.handlers
    Dapo(**tiny_kwargs)
    assert root_handlers.handlers == [rich if rich.console.is_terminal else plain]


def test_a_terminal_keeps_the_rich_handler(root_handlers, monkeypatch):
    clear(root_handlers)
    configure_logger()
    _, rich = root_handlers.handlers
    monkeypatch.setattr(rich.console, "_force_terminal", True)
    compat.single_console_handler()
    assert root_handlers.handlers == [rich]


def test_other_logging_set_ups_are_left_alone(root_handlers):
    clear(root_handlers)
    mine = [logging.StreamHandler(sys.stderr), logging.FileHandler("/dev/null")]
    for handler in mine:
        root_handlers.addHandler(handler)
    compat.single_console_handler()
    assert root_handlers.handlers == mine
