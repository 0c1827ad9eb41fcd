"""Dapo inside anomalib's Engine: the type outputs reach the user with stock datamodules and image folders."""

import pytest
from anomalib.data import MVTecAD
from anomalib.engine import Engine

from anomalib_dapo import Dapo, knowledge
from anomalib_dapo.data import SyntheticDefects, TypedImageBatch
from tiny import SYNTHETIC


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, tiny_checkpoint, synthetic):
    """Synthetic data in MVTec layout and an untrained Dapo checkpoint (these tests are about plumbing)."""
    root = tmp_path_factory.mktemp("engine")
    (root / "data").symlink_to(synthetic())  # the tests read it through this name
    (root / "weights.ckpt").symlink_to(tiny_checkpoint)
    return root


def _engine(root) -> Engine:
    return Engine(default_root_dir=root / "results", accelerator="cpu", logger=False, enable_progress_bar=False)


def test_stock_datamodule_batches_carry_the_type_outputs(workspace, tiny_kwargs):
    model = Dapo(weights=str(workspace / "weights.ckpt"), **tiny_kwargs)
    datamodule = MVTecAD(root=workspace / "data", category="grid", eval_batch_size=4, num_workers=0)
    predictions = _engine(workspace).predict(model, datamodule=datamodule, return_predictions=True)
    # the vocabulary of MVTec-AD's grid, from the knowledge base (product-filtered)
    vocabulary = knowledge.vocabulary("mvtec_ad", "grid")
    assert model.model.vocabulary == vocabulary == ("bent", "broken", "glue", "contamination", "thread")
    for batch in predictions:
        assert isinstance(batch, TypedImageBatch)
        size = batch.image.shape[0]
        assert batch.pred_type_map.shape == (size, len(vocabulary) + 1, 64, 64)
        assert batch.pred_type_mask.shape == (size, 64, 64)
        assert batch.pred_type_probs.shape == (size, len(vocabulary))
        assert batch.pred_label.dtype == batch.pred_mask.dtype  # calibrated and thresholded by anomalib


def test_folder_prediction_with_a_text_vocabulary(workspace, tiny_kwargs):
    model = Dapo(weights=str(workspace / "weights.ckpt"), defect_types=["scratch", "rust"], **tiny_kwargs)
    folder = workspace / "data/tile/test/stain"
    predictions = _engine(workspace).predict(model, data_path=folder, return_predictions=True)
    assert len(predictions) == len(list(folder.glob("*.png")))
    batch = predictions[0]
    assert batch.pred_score.shape == (1,)
    assert batch.anomaly_map.shape[-2:] == (64, 64)
    assert batch.pred_mask is not None
    assert batch.pred_type_mask.max() <= 2  # normal, scratch, rust
    assert model.model.vocabulary == ("scratch", "rust")


def test_a_second_checkpoint_is_scored_with_its_own_prompts(workspace, tiny_kwargs, tmp_path):
    """test(ckpt A) then test(ckpt B) on one model: B's metrics are those of a model that never saw A.

    The fresh model is built in this process (the tiny CLIP's random weights are fixed): what must not go stale is
    the model's own state, its cached text features.
    """
    from lightning.pytorch import Trainer, seed_everything

    checkpoints = []
    for seed in (0, 1):  # two sets of learned prompts
        seed_everything(seed)
        trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
        trainer.strategy.connect(Dapo(**tiny_kwargs))
        checkpoints.append(tmp_path / f"{seed}.ckpt")
        trainer.save_checkpoint(checkpoints[-1])
    datamodule = SyntheticDefects(workspace / "data", "disc", **SYNTHETIC)
    model = Dapo(**tiny_kwargs)
    first = _engine(tmp_path).test(model, datamodule=datamodule, ckpt_path=checkpoints[0])[0]
    second = _engine(tmp_path).test(model, datamodule=datamodule, ckpt_path=checkpoints[1])[0]
    assert first != second
    fresh_data = SyntheticDefects(workspace / "data", "disc", **SYNTHETIC)
    fresh = _engine(tmp_path / "fresh").test(Dapo(**tiny_kwargs), datamodule=fresh_data, ckpt_path=checkpoints[1])[0]
    assert second == pytest.approx(fresh, abs=1e-6)
