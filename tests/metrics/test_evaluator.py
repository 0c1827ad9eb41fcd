"""Metrics whose fields no batch had are left out of the results, without torchmetrics' warning."""

import warnings

import torch
from anomalib.data import ImageBatch
from anomalib.metrics import AUROC
from lightning.pytorch import LightningModule, Trainer
from torch.utils.data import DataLoader

from anomalib_dapo.metrics import TypeAUROC
from anomalib_dapo.metrics.evaluator import DapoEvaluator


class Scores(LightningModule):
    """Test steps that return a batch with image scores and labels but no masks or type masks."""

    def __init__(self, evaluator: DapoEvaluator) -> None:
        super().__init__()
        self.evaluator = evaluator

    def configure_callbacks(self) -> list:
        return [self.evaluator]

    def test_step(self, batch: ImageBatch, _index: int) -> ImageBatch:
        labels = torch.tensor([0, 1, 0, 1])  # the evaluator reads the batch, which anomalib's steps update
        return batch.update(gt_label=labels, pred_score=labels * 0.5 + batch.image.mean())


def test_untouched_metrics_are_left_out_quietly(tmp_path):
    evaluator = DapoEvaluator(
        test_metrics=[
            AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
            AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            TypeAUROC(num_classes=3, prefix="pixel_", strict=False),
        ]
    )
    trainer = Trainer(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loader = DataLoader(
            torch.rand(8, 3, 4, 4), batch_size=4, collate_fn=lambda images: ImageBatch(torch.stack(images))
        )
        (results,) = trainer.test(Scores(evaluator), loader)
    assert results == {"image_AUROC": 1.0}
    assert not [w for w in caught if "before the ``update``" in str(w.message)], [str(w.message) for w in caught]
    assert len(evaluator.test_metrics) == 3  # all kept for the next run
