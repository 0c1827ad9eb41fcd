"""Exports of a learned Dapo or MultiAds: fixed vocabulary, no text side, parity with PyTorch, re-targeting, metadata.

The parity tests run for both models (torch, ONNX and OpenVINO through the plugin's inferencers).
Tolerances: see tests/parity.py.
"""

import gc
import json
import logging
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
import torch
from anomalib.deploy import ExportType
from anomalib.models.components import AnomalibModule
from PIL import Image

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.deploy import (
    DapoOpenVINOInferencer,
    DapoTorchInferencer,
    NotADapoExportError,
    VocabularyMismatchError,
    engine_images,
)
from anomalib_dapo.exported import METADATA_KEY
from anomalib_dapo.models.components.export import TextSideRemovedError
from console import anomalib_in_process
from parity import F32, MODEL_KWARGS, OUTPUTS, assert_parity, reference
from tiny import cli_options

TINY = MODEL_KWARGS[Dapo]
LEARNED = {Dapo: "prompts.normal_context", MultiAds: "adapters.weight"}
"""A learned parameter of each model."""


@pytest.fixture(scope="module")
def assets(learned_assets) -> dict[str, Path]:
    """Dapo's, for the tests of one model."""
    return learned_assets(Dapo)


@pytest.fixture(scope="module", params=[Dapo, MultiAds], ids=["Dapo", "MultiAds"])
def cls(request) -> type:
    """The model of the parity tests, which run for both."""
    return request.param


def learned(assets: dict[str, Path], defect_types: list[str] | None, cls: type = Dapo) -> Dapo | MultiAds:
    return cls(
        pretrained=str(assets["clip"]), weights=str(assets["weights"]), defect_types=defect_types, **MODEL_KWARGS[cls]
    )


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))


class OnnxExport(NamedTuple):
    model: Dapo | MultiAds
    path: Path
    tracer_log: list[str]
    """What torch.fx's tracer logged during the export."""
    same_name: list[type]
    """The subclasses of ``AnomalibModule`` named like the model right after the export, before any collection."""


def named_subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *named_subclasses(sub)]
    return found


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def onnx_export(cls, learned_assets, tmp_path_factory) -> OnnxExport:
    """``to_onnx`` in this process with the collector off (as between two automatic collections)."""
    model = learned(learned_assets(cls), ["scratch", "hole"], cls)
    tracer = logging.getLogger("torch.fx.experimental.proxy_tensor")
    handler, level = _Messages(), tracer.level
    tracer.addHandler(handler)
    tracer.setLevel(logging.INFO)
    gc.collect()
    gc.disable()
    try:
        path = model.to_onnx(tmp_path_factory.mktemp("onnx"))
        same_name = [sub for sub in named_subclasses(AnomalibModule) if sub.__name__ == cls.__name__]
    finally:
        gc.enable()
        tracer.removeHandler(handler)
        tracer.setLevel(level)
    return OnnxExport(model, path, handler.messages, same_name)


@pytest.mark.slow  # a dynamo ONNX export: 10-20 s
def test_an_onnx_export_leaves_no_traced_class_behind(cls, onnx_export):
    """torch.fx's AttrProxy classes, named like the model, live in reference cycles: jsonargparse would see two."""
    assert any("AttrProxy is enabled" in message for message in onnx_export.tracer_log)  # the tracer did make them
    assert onnx_export.same_name == [cls]


@pytest.mark.slow  # a dynamo ONNX export: 10-20 s
def test_onnx_graph_holds_fixed_states_and_no_text_encoder(onnx_export):
    import onnx  # here, not at collection: every worker would pay its import

    model, path = onnx_export.model, onnx_export.path
    graph = onnx.load(str(path), load_external_data=False).graph
    assert [output.name for output in graph.output] == OUTPUTS
    table = model.model.clip.token_embedding.weight  # the live model got its text side back
    shapes = [list(tensor.dims) for tensor in graph.initializer]
    assert list(table.shape) not in shapes
    assert sum(int(np.prod(shape)) for shape in shapes) < table.numel() / 5
    exported_bytes = path.stat().st_size + path.with_name(path.name + ".data").stat().st_size
    assert exported_bytes < table.numel() * table.element_size() / 5


@pytest.mark.slow  # a dynamo ONNX export: 10-20 s
def test_onnx_runtime_matches_pytorch(cls, onnx_export, images):
    import onnxruntime as ort

    model, path = onnx_export.model, onnx_export.path
    session = ort.InferenceSession(str(path))
    assert json.loads(session.get_modelmeta().custom_metadata_map[METADATA_KEY]) == {
        "defect_types": ["scratch", "hole"],
        "model": cls.__name__,
        "backbone": "dapo-tiny",
        "image_size": 64,
        "type_outputs": True,
    }
    for batch in (images, torch.rand(1, 3, 80, 72)):  # dynamic batch and size: the graph resizes to 64
        got = dict(zip(OUTPUTS, session.run(OUTPUTS, {"input": batch.numpy()}), strict=True))
        assert_parity(got, reference(model, batch))
        assert got["pred_type_map"].shape == (len(batch), 3, 64, 64)


@pytest.mark.slow  # a dynamo ONNX export: 10-20 s
def test_the_onnx_file_runs_through_the_openvino_inferencer(onnx_export, images, tmp_path, monkeypatch):
    model, path = onnx_export.model, onnx_export.path
    monkeypatch.chdir(tmp_path)  # anomalib's OpenVINO inferencer writes a cache folder in the working directory
    prediction = DapoOpenVINOInferencer(path, device="CPU", config=F32, defect_types=["scratch", "hole"]).predict(
        images
    )
    got = {name: getattr(prediction, name) for name in OUTPUTS}
    assert_parity(got, reference(model, engine_images(images, 64)))
    # A graph cannot raise: NaN pixels give a NaN score (no score) and an anomalous label (fail-safe); the eager
    # model refuses them (tests/reliability/test_inputs.py).
    broken = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    broken[1, 0, 5, 5] = np.nan
    prediction = DapoOpenVINOInferencer(path, device="CPU", config=F32).predict(broken)
    assert np.isfinite(prediction.pred_score[0]).all()
    assert np.isnan(prediction.pred_score[1]).all()
    assert np.isnan(prediction.anomaly_map[1]).all()
    assert prediction.pred_label[1].all()


@pytest.fixture(scope="module")
def openvino_export(cls, learned_export) -> Path:
    """``Engine.export`` (what ``anomalib export`` runs) to OpenVINO for another vocabulary, with no datamodule."""
    return learned_export(cls, ExportType.OPENVINO, ["crack"])


@pytest.mark.slow  # a dynamo ONNX export: 10-20 s
def test_openvino_export_matches_pytorch(cls, openvino_export, learned_assets, images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anomalib's OpenVINO inferencer writes a cache folder in the working directory
    inferencer = DapoOpenVINOInferencer(openvino_export, device="CPU", config=F32, defect_types=[" Crack"])
    assert inferencer.defect_types == ("crack",)
    assert inferencer.metadata == {
        "model": cls.__name__,
        "defect_types": ["crack"],
        "backbone": "dapo-tiny",
        "image_size": 64,
        "type_outputs": True,
    }
    for batch in (images, torch.rand(1, 3, 80, 72)):
        prediction = inferencer.predict(batch)
        got = {name: getattr(prediction, name) for name in OUTPUTS}
        # the inferencer resizes as the Engine does (antialiased), before the graph
        assert_parity(got, reference(learned(learned_assets(cls), ["crack"], cls), engine_images(batch, 64)))


@pytest.mark.slow  # a dynamo ONNX export: 10-20 s
def test_exporting_another_vocabulary_retargets_the_model(onnx_export, openvino_export, images, tmp_path, monkeypatch):
    """The same learned model exported for [scratch, hole] (ONNX) and then for [crack] (OpenVINO)."""
    monkeypatch.chdir(tmp_path)
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_export.path))
    old = dict(zip(OUTPUTS, session.run(OUTPUTS, {"input": images.numpy()}), strict=True))
    new = DapoOpenVINOInferencer(openvino_export, device="CPU", config=F32).predict(images)
    assert old["pred_type_map"].shape == (2, 3, 64, 64)
    assert new.pred_type_map.shape == (2, 2, 64, 64)
    assert new.pred_type_probs.shape == (2, 1)
    assert not np.allclose(old["anomaly_map"].reshape(new.anomaly_map.shape), new.anomaly_map, atol=1e-3)


@pytest.mark.slow  # a dynamo ONNX export: 10-20 s
def test_an_exported_vocabulary_cannot_be_swapped(openvino_export, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(VocabularyMismatchError, match=r"\[crack\].*re-export.*--model.defect_types \"\[dent\]\""):
        DapoOpenVINOInferencer(openvino_export, device="CPU", defect_types=["dent"])


def test_a_model_that_is_not_a_dapo_export_is_refused(tmp_path, monkeypatch):
    import onnx

    monkeypatch.chdir(tmp_path)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["input"], ["pred_score"])],
        "other",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("pred_score", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save(onnx.helper.make_model(graph), tmp_path / "other.onnx")
    with pytest.raises(NotADapoExportError):
        DapoOpenVINOInferencer(tmp_path / "other.onnx", device="CPU")


def test_torch_export_holds_no_text_side_and_matches(cls, learned_assets, images, tmp_path, monkeypatch):
    model = learned(learned_assets(cls), ["scratch", "hole"], cls)
    path = model.to_torch(tmp_path)
    table = model.model.clip.token_embedding.weight
    assert path.stat().st_size < table.numel() * table.element_size() / 5
    assert model.model.get_parameter(LEARNED[cls]).requires_grad  # the live model is left as it was
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    inferencer = DapoTorchInferencer(path, device="cpu", defect_types=["scratch", "hole"])
    assert inferencer.defect_types == ("scratch", "hole")
    got = {name: getattr(inferencer.predict(images), name).numpy() for name in OUTPUTS}
    assert_parity(got, reference(model, images))
    with torch.enable_grad():  # gradients on, as in anomalib's own TorchInferencer: still the cached states
        assert inferencer.model(images).pred_type_map.shape == (2, 3, 64, 64)
    with pytest.raises(TextSideRemovedError, match=rf"exported {cls.__name__}.*re-export"):
        inferencer.model.model.set_vocabulary(["dent"], ["dent"])
    with pytest.raises(VocabularyMismatchError, match="scratch, hole"):
        DapoTorchInferencer(path, device="cpu", defect_types=["dent"])


def test_export_without_defect_types_or_datamodule_scores_the_generic_state(assets, tmp_path, monkeypatch):
    path = learned(assets, None).to_torch(tmp_path)
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    assert DapoTorchInferencer(path, device="cpu").defect_types == ("anomaly",)


def test_checkpoint_saved_on_gpu_loads_on_cpu(assets, tmp_path, monkeypatch):
    """A checkpoint whose tensors are tagged ``cuda:0`` (as written on a GPU) loads on a CPU-only machine."""
    checkpoint = torch.load(assets["weights"], weights_only=False)
    path = tmp_path / "gpu.ckpt"
    with monkeypatch.context() as patch:
        patch.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        torch.save(checkpoint, path)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            torch.load(path, weights_only=False)
    expected = checkpoint["state_dict"]["model.adapters.weight"]
    for model in (  # --model.weights, and --ckpt_path (Lightning's loading)
        Dapo(pretrained=str(assets["clip"]), weights=str(path), **TINY),
        Dapo.load_from_checkpoint(path),
    ):
        assert model.model.adapters.weight.device.type == "cpu"
        assert torch.equal(model.model.adapters.weight, expected)


def test_anomalib_export_needs_no_datamodule(assets, images, tmp_path, monkeypatch):
    """``anomalib export --model Dapo --model.weights ... --model.defect_types ...`` needs no datamodule.

    What the console script runs, in this process; its last lines: test_export.py in tests/models/components.
    """
    anomalib_in_process(
        "export",
        "--model=Dapo",
        *cli_options(drop=["pretrained"]),
        f"--model.pretrained={assets['clip']}",
        f"--model.weights={assets['weights']}",
        "--model.defect_types=[scratch, dent]",
        "--export_type=torch",
        f"--export_root={tmp_path}",
        cwd=tmp_path,
    )
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    inferencer = DapoTorchInferencer(tmp_path / "weights" / "torch" / "model.pt", device="cpu")
    assert inferencer.defect_types == ("scratch", "dent")
    got = {name: getattr(inferencer.predict(images), name).numpy() for name in OUTPUTS}
    assert_parity(got, reference(learned(assets, ["scratch", "dent"]), images))


def test_few_shot_export_holds_its_references(assets, images, tmp_path, monkeypatch):
    folder = tmp_path / "normal"
    folder.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / "a.png")
    model = Dapo(
        pretrained=str(assets["clip"]), weights=str(assets["weights"]), k_shot=1, few_shot_source=folder, **TINY
    )
    path = model.to_torch(tmp_path)
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    inferencer = DapoTorchInferencer(path, device="cpu")
    assert inferencer.model.model.references.num_references == 1
    got = {name: getattr(inferencer.predict(images), name).numpy() for name in OUTPUTS}
    assert_parity(got, reference(model, images))
