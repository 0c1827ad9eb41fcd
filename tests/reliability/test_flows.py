"""anomalib's flows for each built-in model, run for Dapo on a dummy MVTec-layout dataset.

anomalib's integration tests (``tests/integration/model/test_models.py``, ``tests/integration/deploy/
test_inferencer.py``) fit each model, then test, train, validate, predict and export (torch, onnx, openvino) from
its checkpoint and predict with the exported files. The same flows here, through ``Engine`` and the inferencers,
on the synthetic dataset (MVTec-AD's layout) with the tiny backbone. One fit is shared by the module.

Every model built here has the same frozen backbone: the tiny CLIP's random weights are drawn from a fixed seed,
so a checkpoint (which holds only what Dapo learns) reproduces its predictions in a new instance.
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from anomalib.data import MVTecAD
from anomalib.deploy import ExportType
from anomalib.engine import Engine
from lightning.pytorch import seed_everything
from PIL import Image

from anomalib_dapo import Dapo
from anomalib_dapo.data import CrossDataset, TypedImageBatch
from anomalib_dapo.deploy import DapoTorchInferencer
from tiny import TINY

CATEGORY = "disc"
TOL = 1e-4  # anomalib's TORCH_ENGINE_TOL
COMPARED = ("pred_score", "anomaly_map", "pred_type_map", "pred_type_probs")


@dataclass(frozen=True)
class Trained:
    """What the shared fit leaves: the dataset, the model arguments, the results folder and the checkpoint."""

    data: Path
    kwargs: dict
    results: Path
    ckpt: Path
    before: dict[str, torch.Tensor]


def engine(root: Path) -> Engine:
    """An engine as anomalib's model tests build it (one CPU device, one epoch, no logger)."""
    return Engine(logger=False, default_root_dir=root, max_epochs=1, devices=1, accelerator="cpu")


def cross(data: Path) -> CrossDataset:
    return CrossDataset("synthetic", data, "synthetic", data, CATEGORY, train_batch_size=4, eval_batch_size=4)


def mvtec(data: Path) -> MVTecAD:
    return MVTecAD(root=data, category=CATEGORY, eval_batch_size=4)


def learned(model: Dapo) -> dict[str, torch.Tensor]:
    return {name: value.detach().clone() for name, value in model.model.named_parameters() if value.requires_grad}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic) -> Trained:
    root = tmp_path_factory.mktemp("flows")
    data = synthetic(categories=(CATEGORY,))
    kwargs = dict(TINY)
    seed_everything(0)
    model = Dapo(**kwargs)
    before = learned(model)
    fit = engine(root / "results")
    fit.fit(model=model, datamodule=cross(data))
    return Trained(data, kwargs, root / "results", Path(fit.best_model_path), before)


def test_fit_writes_a_versioned_checkpoint_of_the_learned_weights(trained):
    assert trained.ckpt == trained.results / "Dapo/CrossDataset/disc/v0/weights/lightning/model.ckpt"
    restored = learned(Dapo(weights=str(trained.ckpt), **trained.kwargs))
    assert restored.keys() == trained.before.keys()
    assert any(not torch.equal(restored[name], trained.before[name]) for name in restored), "nothing was learned"


@pytest.mark.parametrize("datamodule", [cross, mvtec], ids=["CrossDataset", "MVTecAD"])
def test_test(trained, datamodule):
    model = Dapo(**trained.kwargs)
    (metrics,) = engine(trained.results).test(model=model, datamodule=datamodule(trained.data), ckpt_path=trained.ckpt)
    expected = {"image_AUROC", "image_AUPR", "image_F1Max", "pixel_AUROC", "pixel_AUPRO", "pixel_F1Max"}
    if datamodule is cross:  # typed target: the multi-type metrics too
        expected |= {"pixel_TypeAUROC", "pixel_TypeAveragePrecision", "pixel_TypeF1Score", "image_MultiLabelF1"}
        assert model.model.vocabulary == ("scratch", "hole", "stain", "missing")
    else:  # "disc" is no MVTec-AD category the knowledge base knows: the generic state is scored (documented)
        assert model.model.vocabulary == ("anomaly",)
    assert expected <= metrics.keys()
    assert all(0.0 <= metrics[name] <= 1.0 for name in expected), metrics


def test_zero_shot_weights_with_another_vocabulary(trained, tmp_path):
    """A checkpoint holds no vocabulary: its prompts score any defect types named by text (here, unseen ones)."""
    model = Dapo(weights=str(trained.ckpt), defect_types=["crack", "dent", "scratch"], **trained.kwargs)
    image = trained.data / CATEGORY / "test/hole/000.png"
    (batch,) = engine(tmp_path).predict(model=model, data_path=image)
    assert model.model.vocabulary == ("crack", "dent", "scratch")
    assert batch.pred_type_map.shape == (1, 4, 64, 64)
    assert batch.pred_type_probs.shape == (1, 3)


def test_validate(trained):
    model = Dapo(**trained.kwargs)
    engine(trained.results).validate(model=model, datamodule=mvtec(trained.data), ckpt_path=trained.ckpt)
    thresholds = model.post_processor.image_threshold, model.post_processor.pixel_threshold
    assert all(torch.isfinite(threshold) for threshold in thresholds)


def test_predict(trained):
    predictions = engine(trained.results).predict(
        model=Dapo(**trained.kwargs), datamodule=mvtec(trained.data), ckpt_path=trained.ckpt
    )
    assert all(isinstance(batch, TypedImageBatch) for batch in predictions)
    assert sum(len(batch.image) for batch in predictions) == 2 + 4 * 2  # test/good + 4 defects
    batch = predictions[0]
    assert batch.pred_type_map.shape[1:] == (2, 64, 64)  # normal + the generic state
    assert torch.isfinite(batch.pred_score).all()
    assert batch.pred_label.dtype == torch.bool


def test_train_into_the_same_folder_adds_a_version(trained):
    checkpoint = trained.ckpt.read_bytes()
    versions = trained.results / "Dapo/CrossDataset/disc"
    earlier = {path.name for path in versions.iterdir()}  # v0, and the folders of the test runs above
    (metrics,) = engine(trained.results).train(
        model=Dapo(**trained.kwargs), datamodule=cross(trained.data), ckpt_path=trained.ckpt
    )
    assert 0.0 <= metrics["image_AUROC"] <= 1.0
    (new,) = {path.name for path in versions.iterdir()} - earlier  # resumed at its last epoch: no new checkpoint
    assert (versions / "latest").resolve() == (versions / new).resolve()
    assert trained.ckpt.read_bytes() == checkpoint, "the first run's checkpoint was rewritten"


def write_mixed_folder(folder: Path, source: Path) -> dict[str, str]:
    """Images of several sizes, aspects and modes; returns ``name -> name of its 8-bit RGB twin`` where one is."""
    folder.mkdir()
    rgb = np.asarray(Image.open(source).convert("RGB"))
    gray = np.asarray(Image.open(source).convert("L"))
    Image.fromarray(rgb).save(folder / "rgb.png")
    Image.fromarray(np.asarray(Image.fromarray(rgb).resize((150, 40)))).save(folder / "wide.png")
    Image.fromarray(rgb[:, :20]).save(folder / "tall.jpg")
    Image.fromarray(rgb[:3]).save(folder / "sliver.bmp")  # 3 x 64
    Image.fromarray(np.dstack([gray] * 3)).save(folder / "gray_as_rgb.png")
    Image.fromarray(gray).save(folder / "gray.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(folder / "gray16.png")  # PIL mode I;16, same intensities
    Image.fromarray(np.dstack([rgb, np.full_like(gray, 7)])).save(folder / "rgba.png")
    assert cv2.imwrite(str(folder / "rgb16.png"), rgb[..., ::-1].astype(np.uint16) * 257)  # 48-bit RGB
    return {
        "gray.png": "gray_as_rgb.png",
        "gray16.png": "gray_as_rgb.png",
        "rgba.png": "rgb.png",
        "rgb16.png": "rgb.png",
    }


def test_predict_a_folder_of_any_size_aspect_and_mode(trained, tmp_path):
    """``anomalib predict --data <folder>``: mixed sizes, grayscale, RGBA, 16-bit gray and RGB all load as RGB.

    Each converted image must predict like its 8-bit RGB twin; a 16-bit image clipped to white would not.
    """
    folder = tmp_path / "images"
    twins = write_mixed_folder(folder, trained.data / CATEGORY / "test/hole/000.png")
    predictions = engine(tmp_path / "results").predict(
        model=Dapo(weights=str(trained.ckpt), **trained.kwargs), data_path=folder
    )
    by_name = {Path(batch.image_path[0]).name: batch for batch in predictions}
    assert sorted(by_name) == sorted(path.name for path in folder.iterdir())
    for name, batch in by_name.items():
        assert torch.isfinite(batch.pred_score).all(), name
        assert batch.pred_type_map.shape[-2:] == batch.anomaly_map.shape[-2:], name
    for name, twin in twins.items():
        for field in COMPARED:
            torch.testing.assert_close(getattr(by_name[name], field), getattr(by_name[twin], field), msg=name)


@pytest.fixture(scope="module")
def engine_reference(trained, tmp_path_factory) -> tuple[Path, TypedImageBatch]:
    """Engine.predict on one image from the checkpoint: what every export must reproduce."""
    image = trained.data / CATEGORY / "test/scratch/000.png"
    root = tmp_path_factory.mktemp("reference")
    (batch,) = engine(root).predict(model=Dapo(**trained.kwargs), data_path=image, ckpt_path=trained.ckpt)
    return image, batch


# The graph forms of this flow are tests/deploy/test_export.py's: Engine.export to OpenVINO of learned weights,
# ONNX and OpenVINO within 1e-4 of PyTorch, NaN pixels flagged (each dynamo export costs 10-20 s).
def test_export_and_predict_from_the_exported_files(trained, engine_reference, tmp_path, monkeypatch):
    path = engine(tmp_path).export(
        model=Dapo(**trained.kwargs),
        export_type=ExportType.TORCH,
        ckpt_path=trained.ckpt,
        export_root=tmp_path / "export",
    )
    assert path.is_file()
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")  # anomalib's torch exports are pickles
    inferencer = DapoTorchInferencer(path, device="cpu")
    assert inferencer.defect_types == ("anomaly",)  # no datamodule, no defect_types: the generic state
    image, reference = engine_reference
    prediction = inferencer.predict(image)
    for field in COMPARED:
        got = torch.as_tensor(np.asarray(getattr(prediction, field))).reshape(getattr(reference, field).shape)
        torch.testing.assert_close(got, getattr(reference, field), atol=TOL, rtol=0, msg=field)


def stamps(folder: Path) -> dict[Path, int]:
    return {path: path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


def test_where_predictions_are_written(trained, tmp_path):
    """Pictures go to ``<root>/Dapo/latest/images/<folder>/``, never beside the inputs or into a checkpoint folder.

    anomalib versions the folders of ``fit``/``train`` only (test_train_into_the_same_folder_adds_a_version) and
    ``test``/``predict`` write into ``latest``: Dapo's visualizer gives each later run a new picture folder
    (``images_2``, …), so the first run's pictures stay as they were.
    """
    images = shutil.copytree(trained.data / CATEGORY / "test/hole", tmp_path / "images")
    inputs, checkpoints = stamps(images), stamps(trained.results)
    model = {**trained.kwargs, "visualizer": True}
    written = []
    for _ in range(2):
        engine(tmp_path / "results").predict(model=Dapo(weights=str(trained.ckpt), **model), data_path=images)
        written.append(stamps(tmp_path / "results/Dapo/latest/images/images"))
    assert len(written[0]) == len(inputs)
    assert written[1] == written[0], "the second run must not touch the first run's pictures"
    assert len(stamps(tmp_path / "results/Dapo/latest/images_2/images")) == len(inputs)
    assert stamps(images) == inputs
    assert stamps(trained.results) == checkpoints
