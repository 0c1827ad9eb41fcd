"""Behaviour shared by the plugin's models (TypedPromptModule): learning type, and the object-agnostic mode."""

import logging

import pytest
import torch
from anomalib import LearningType
from anomalib.data import ImageBatch
from anomalib.engine import Engine
from anomalib.metrics import AUROC, Evaluator
from lightning.pytorch import Trainer

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.data import CrossDataset, SyntheticDefects, TypedImageBatch
from anomalib_dapo.metrics import TypeAUROC
from tiny import SYNTHETIC


def test_learning_type_follows_weights_and_k_shot(tiny_kwargs):
    model = Dapo(**tiny_kwargs)
    assert model.learning_type == LearningType.ONE_CLASS  # no weights: it trains
    model.weights = "learned.ckpt"
    assert model.learning_type == LearningType.ZERO_SHOT
    model.k_shot = 2
    assert model.learning_type == LearningType.FEW_SHOT


def test_both_models_are_direct_anomalib_modules():
    from anomalib.models.components import AnomalibModule

    assert {Dapo, MultiAds} <= set(AnomalibModule.__subclasses__())


def test_object_agnostic_scores_one_generic_state_whatever_the_data(tiny_kwargs):
    model = Dapo(object_agnostic=True, **tiny_kwargs)
    assert model.resolve_vocabulary("fit") == model.resolve_vocabulary("test") == ("anomaly",)
    with pytest.raises(ValueError, match="no defect_types"):
        Dapo(object_agnostic=True, defect_types=["scratch"], **tiny_kwargs)


def test_object_agnostic_training_targets_are_binary_and_need_no_types(tiny_kwargs):
    model = Dapo(object_agnostic=True, **tiny_kwargs)
    image = torch.zeros(2, 3, 8, 8)
    typed = TypedImageBatch(image=image, gt_type_mask=torch.tensor([0, 3]).view(2, 1, 1).expand(2, 8, 8))
    assert model.training_type_mask(typed).unique().tolist() == [0, 1]
    binary = ImageBatch(image=image, gt_mask=torch.ones(2, 8, 8, dtype=torch.bool))
    assert model.training_type_mask(binary).unique().tolist() == [1]
    with pytest.raises(ValueError, match="object_agnostic=True"):
        Dapo(**tiny_kwargs).training_type_mask(binary)


def test_object_agnostic_test_run_has_one_type_and_binary_type_metrics(tmp_path, tiny_kwargs, synthetic):
    weights = tmp_path / "weights.ckpt"
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(Dapo(**tiny_kwargs))
    trainer.save_checkpoint(weights)
    model = Dapo(weights=str(weights), object_agnostic=True, **tiny_kwargs)
    datamodule = SyntheticDefects(synthetic(), "disc", **SYNTHETIC)
    engine = Engine(default_root_dir=tmp_path / "results", accelerator="cpu", logger=False, enable_progress_bar=False)
    metrics = engine.test(model, datamodule=datamodule)[0]
    assert model.model.vocabulary == ("anomaly",)
    assert "pixel_TypeAUROC" in metrics  # the four disc types scored as the one anomaly state
    batch = engine.predict(model, datamodule=datamodule, return_predictions=True)[0]
    assert batch.pred_type_map.shape[1] == 2
    assert batch.pred_type_probs.shape[1] == 1
    assert batch.gt_type_mask.max() == 1


def test_each_vocabulary_is_announced_once(tmp_path, tiny_kwargs, caplog, synthetic):
    root = synthetic(categories=("disc",), n_train=8, n_test_good=6, n_test_per_defect=1)
    datamodule = CrossDataset("synthetic", root, "synthetic", root, "disc", train_batch_size=2, eval_batch_size=2)
    engine = Engine(
        default_root_dir=tmp_path,
        accelerator="cpu",
        logger=False,
        max_epochs=2,
        enable_progress_bar=False,
        limit_train_batches=1,
        limit_val_batches=1,
    )
    with caplog.at_level(logging.INFO, logger="anomalib_dapo"):
        engine.fit(Dapo(**tiny_kwargs), datamodule=datamodule)
    announced = [record.getMessage() for record in caplog.records if "defect types" in record.getMessage()]
    assert len(announced) == len(set(announced)) == 1, announced  # disc shows every type: one vocabulary


def test_a_users_evaluator_keeps_its_metrics_beside_the_type_metrics(tmp_path, tiny_kwargs, tiny_checkpoint):
    """Each setup adds the type metrics of its vocabulary; it replaces only those it added itself."""
    mine = [AUROC(fields=["pred_score", "gt_label"], prefix="mine_"), TypeAUROC(num_classes=5, prefix="mine_")]
    evaluator = Evaluator(test_metrics=mine)
    model = Dapo(weights=str(tiny_checkpoint), evaluator=evaluator, **tiny_kwargs)
    datamodule = SyntheticDefects(tmp_path / "data", "disc", image_size=64, n_train=2, n_test_good=2)
    engine = Engine(default_root_dir=tmp_path / "results", accelerator="cpu", logger=False, enable_progress_bar=False)
    for _ in range(2):  # a second run does not add the type metrics twice
        metrics = engine.test(model, datamodule=datamodule)[0]
        assert model.evaluator is evaluator
        assert list(evaluator.test_metrics)[:2] == mine
        assert [metric.name for metric in evaluator.test_metrics][2:] == [
            "pixel_TypeAUROC",
            "pixel_TypeAveragePrecision",
            "pixel_TypeF1Score",
            "image_MultiLabelPrecision",
            "image_MultiLabelRecall",
            "image_MultiLabelF1",
        ]
    assert {"mine_AUROC", "mine_TypeAUROC", "pixel_TypeAUROC"} <= metrics.keys()
