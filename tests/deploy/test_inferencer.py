"""The plugin's inferencers give ``Engine.predict``'s outputs for image files of every kind (tolerances: parity.py).

``Engine.predict`` reads 16-bit images scaled (the plugin's reader) and resizes with antialiasing before the model;
an exported graph resizes without it. The inferencers read and resize as the Engine does.
"""

from pathlib import Path

import numpy as np
import pytest
from anomalib.deploy import ExportType
from anomalib.engine import Engine
from PIL import Image

from anomalib_dapo import Dapo
from anomalib_dapo.deploy import DapoOpenVINOInferencer, DapoTorchInferencer
from parity import F32, MODEL_KWARGS, OUTPUTS, assert_parity


def write_images(folder: Path) -> None:
    """One file per kind, each with structure at several scales (so that resizing with or without antialias differs)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (90, 70, 3), dtype=np.uint8)  # non-square, not 64 px
    Image.fromarray(rgb).save(folder / "rgb_90x70.png")
    Image.fromarray(rgb[:64, :64]).save(folder / "rgb_64.png")
    gray = rng.integers(0, 256, (80, 80), dtype=np.uint8)
    Image.fromarray(gray).save(folder / "gray.png")
    Image.fromarray(rng.integers(0, 65536, (64, 64), dtype=np.uint16)).save(folder / "gray16.png")  # mode I;16
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 90, np.uint8)])).save(folder / "rgba.png")


@pytest.fixture(scope="module")
def setup(learned_assets, learned_export, tmp_path_factory) -> tuple[dict, dict[str, object]]:
    """A learned Dapo's exports, and ``Engine.predict``'s outputs for each image (by file name).

    The OpenVINO export is the one tests/deploy/test_export.py checks (vocabulary [crack]), shared by the session.
    """
    root = tmp_path_factory.mktemp("inferencer")
    assets = learned_assets(Dapo)
    defect_types = ["crack"]
    kwargs = {
        **MODEL_KWARGS[Dapo],
        "pretrained": str(assets["clip"]),
        "weights": str(assets["weights"]),
        "defect_types": defect_types,
    }
    write_images(root / "images")
    engine = Engine(default_root_dir=root / "results", logger=False, accelerator="cpu")
    predictions = engine.predict(model=Dapo(**kwargs), data_path=root / "images")
    by_name = {Path(batch.image_path[0]).name: batch for batch in predictions}
    exports = {
        ExportType.TORCH: engine.export(Dapo(**kwargs), ExportType.TORCH, export_root=root / "torch"),
        ExportType.OPENVINO: learned_export(Dapo, ExportType.OPENVINO, defect_types),
    }
    return exports, by_name


@pytest.mark.parametrize("export_type", [ExportType.TORCH, ExportType.OPENVINO])
@pytest.mark.parametrize("name", ["rgb_90x70.png", "rgb_64.png", "gray.png", "gray16.png", "rgba.png"])
def test_an_image_file_predicts_as_with_the_engine(setup, name, export_type, tmp_path, monkeypatch):
    exports, by_name = setup
    monkeypatch.chdir(tmp_path)  # anomalib's OpenVINO inferencer writes a cache folder in the working directory
    monkeypatch.setenv("TRUST_REMOTE_CODE", "1")
    path = exports[export_type]
    if export_type == ExportType.TORCH:
        inferencer = DapoTorchInferencer(path, device="cpu")
    else:
        inferencer = DapoOpenVINOInferencer(path, device="CPU", config=F32)
    image = Path(by_name[name].image_path[0])
    engine = {field: getattr(by_name[name], field).numpy() for field in OUTPUTS}
    for given in (image, Image.open(image)):  # a file, and the PIL image opened from it
        prediction = inferencer.predict(given)
        assert_parity({field: np.asarray(getattr(prediction, field)) for field in OUTPUTS}, engine)
