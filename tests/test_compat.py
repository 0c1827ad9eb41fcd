"""Each workaround of :mod:`anomalib_dapo.compat` is still needed: anomalib 2.7 behaves as described there.

A test failing here means anomalib changed: the workaround it names can go (and the test with it).
"""

import numpy as np
import pytest
import torch
from anomalib import LearningType
from anomalib.cli import AnomalibCLI
from anomalib.data import ImageBatch, MVTecAD, PredictDataset
from anomalib.engine import Engine
from anomalib.metrics import AUROC, Evaluator
from lightning import seed_everything
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from PIL import Image

from anomalib_dapo import Dapo, compat
from anomalib_dapo.data import SyntheticDefects
from anomalib_dapo.data.images import FolderImages
from tiny import TINY_ARGS


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
