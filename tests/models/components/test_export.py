"""The export path both models share: exports for stock inferencers, refusals.

The parity of both models' typed exports with PyTorch, and that an ONNX export leaves no traced class behind:
tests/deploy/test_export.py. Tolerances: tests/parity.py.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.deploy import ExportType, OpenVINOInferencer, TorchInferencer
from anomalib.engine import Engine

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.deploy import (
    DapoOpenVINOInferencer,
    DapoTorchInferencer,
    NotADapoExportError,
    engine_images,
)
from anomalib_dapo.models.components.export import UntrainedExportError
from parity import BINARY, F32, MODEL_KWARGS, assert_parity, reference
from tiny import PROMPT_OPTIONS, SYNTHETIC, cli_options


@pytest.fixture(scope="module")
def learned(learned_assets):
    """``learned(cls)``: the keyword arguments that build ``cls`` with learned weights (vocabulary [scratch, hole])."""

    def build(cls: type) -> dict:
        assets = learned_assets(cls)
        return {
            **MODEL_KWARGS[cls],
            "pretrained": str(assets["clip"]),
            "weights": str(assets["weights"]),
            "defect_types": ["scratch", "hole"],
        }

    return build


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


def fields(prediction: object, names: list[str]) -> dict[str, np.ndarray]:
    return {name: np.asarray(getattr(prediction, name)) for name in names}


@pytest.mark.parametrize(
    ("cls", "export_type"), [(Dapo, ExportType.TORCH), (MultiAds, ExportType.TORCH), (Dapo, ExportType.OPENVINO)]
)
def test_type_outputs_off_runs_through_anomalibs_stock_inferencers(
    learned, learned_export, cls, export_type, images, tmp_path, monkeypatch
):
    """anomalib's own ``TorchInferencer``/``OpenVINOInferencer`` return its four fields, those of the typed export.

    ``type_outputs`` is the shared export path's (``TypedExport``): both models through torch, and the graph
    through OpenVINO once (a dynamo export costs 10-20 s; MultiAds' OpenVINO export is checked in tests/deploy).
    """
    kwargs = learned(cls)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    path = learned_export(cls, export_type, kwargs["defect_types"], type_outputs=False)
    if export_type == ExportType.TORCH:
        prediction = TorchInferencer(path, device="cpu").predict(images)
        with pytest.raises(NotADapoExportError, match=r"type_outputs false.*TorchInferencer"):
            DapoTorchInferencer(path, device="cpu")
    else:
        prediction = OpenVINOInferencer(path, device="CPU", config=F32).predict(images.numpy())
        with pytest.raises(NotADapoExportError, match=r"type_outputs false.*OpenVINOInferencer"):
            DapoOpenVINOInferencer(path, device="CPU")
    assert_parity(fields(prediction, BINARY), reference(cls(**kwargs), images))


@pytest.mark.parametrize("cls", [Dapo, MultiAds])
def test_an_untrained_export_is_refused_unless_asked_for(cls, tmp_path):
    model = cls(**MODEL_KWARGS[cls], pretrained=None)
    with pytest.raises(UntrainedExportError, match=rf"no learned weights.*--model.weights.*{cls.__name__}.*untrained"):
        model.to_torch(tmp_path)
    assert not (tmp_path / "weights").exists()
    path = cls(**MODEL_KWARGS[cls], pretrained=None, export_untrained=True).to_torch(tmp_path)
    assert path.is_file()


def test_a_trained_model_exports(tmp_path, synthetic):
    """Trained in this process (no weights file): the export is allowed."""
    from anomalib_dapo.data import SyntheticDefects

    model = Dapo(**MODEL_KWARGS[Dapo], pretrained=None)
    datamodule = SyntheticDefects(root=synthetic(), **SYNTHETIC)
    engine = Engine(default_root_dir=tmp_path, logger=False, max_steps=1, accelerator="cpu")
    engine.fit(model, datamodule=datamodule)
    assert model.to_torch(tmp_path).is_file()


@pytest.mark.slow
def test_anomalib_export_without_weights_fails_with_the_fix_in_the_last_lines(tmp_path):
    command = [
        str(Path(sys.executable).with_name("anomalib")),
        "export",
        "--model=MultiAds",
        *cli_options(drop=["visualizer", *PROMPT_OPTIONS]),
        "--export_type=torch",
        f"--export_root={tmp_path}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    last = " ".join((result.stdout + result.stderr).strip().splitlines()[-4:])  # the message, wrapped
    assert "no learned weights" in last
    assert "--model.export_untrained true" in last
    assert not (tmp_path / "weights").exists()


def test_the_inferencers_resize_as_the_engine_does():
    """A 300 x 200 image: the antialiased resize of the models' pre-processing, not the graph's plain one."""
    image = torch.rand(3, 300, 200, generator=torch.Generator().manual_seed(0))
    model = Dapo(**MODEL_KWARGS[Dapo], pretrained=None)
    resized = engine_images(image, 64)
    assert resized.shape == (1, 3, 64, 64)
    normalised = model.pre_processor.transform(image.unsqueeze(0))
    torch.testing.assert_close(model.pre_processor(resized), normalised, atol=1e-6, rtol=0)


def test_a_multiads_export_names_its_class_name(tmp_path, monkeypatch):
    """With no datamodule, the exported prompts name ``class_name`` (the product), as at test time."""
    model = MultiAds(**MODEL_KWARGS[MultiAds], pretrained=None, class_name="bottle", export_untrained=True)
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    assert DapoTorchInferencer(model.to_torch(tmp_path), device="cpu").model.model.class_names == ("bottle",)
