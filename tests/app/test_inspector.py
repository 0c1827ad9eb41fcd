"""The inspection page's numbers are those of ``anomalib predict`` with the same weights and names."""

import numpy as np
import pytest
from anomalib.engine import Engine
from PIL import Image

from anomalib_dapo import Dapo, knowledge
from anomalib_dapo.app import load_inspector
from anomalib_dapo.deploy import VocabularyMismatchError

NAMES = ["scratch", "dent", "rust"]


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "part.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    return path


def test_inspection_agrees_with_anomalib_predict(tiny_checkpoint, tiny_kwargs, image, tmp_path):
    inspector = load_inspector(tiny_checkpoint)
    assert inspector.set_defect_types(NAMES) == tuple(NAMES)
    result = inspector.inspect(Image.open(image))

    model = Dapo(weights=str(tiny_checkpoint), defect_types=NAMES, **tiny_kwargs)
    engine = Engine(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False)
    (batch,) = engine.predict(model, data_path=image)
    assert result.score == pytest.approx(float(batch.pred_score), abs=1e-5)
    assert result.anomalous == bool(batch.pred_label)
    type_mask = batch.pred_type_mask[0].numpy()
    for index, name in enumerate(NAMES, start=1):
        assert result.type_shares[name] == pytest.approx(np.mean(type_mask == index)), name
    assert [entry.name for entry in result.legend] == NAMES
    assert result.type_overlay.width == type_mask.shape[1]
    assert result.anomaly_map.size == (type_mask.shape[1], type_mask.shape[0])


def test_bad_names_and_files_are_refused(tiny_checkpoint, tmp_path):
    inspector = load_inspector(tiny_checkpoint)
    with pytest.raises(knowledge.KnowledgeBaseError):
        inspector.set_defect_types([])
    with pytest.raises(FileNotFoundError, match="anomalib train"):
        load_inspector(tmp_path / "missing.ckpt")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"\.ckpt"):
        load_inspector(tmp_path / "notes.txt")


def test_an_export_takes_its_own_names_and_refuses_others(tiny_checkpoint, tiny_kwargs, tmp_path):
    path = Dapo(weights=str(tiny_checkpoint), defect_types=NAMES, **tiny_kwargs).to_onnx(tmp_path)
    inspector = load_inspector(path)
    assert inspector.set_defect_types(NAMES) == tuple(NAMES)  # the page's textbox holds the export's names
    with pytest.raises(VocabularyMismatchError, match=r"re-export"):
        inspector.set_defect_types(NAMES[::-1])
