"""anomalib's evaluator, logging only the metrics whose fields the data had.

A non-strict metric (pixel metrics, type metrics) skips batches without its fields, e.g. ``gt_mask`` of a
classification set or ``gt_type_mask`` of an untyped datamodule. anomalib 2.7 computes it anyway at the epoch
end, and torchmetrics then warns that ``compute`` was called before ``update``; here such a metric is left out
of the results, as it holds no value.
"""

from anomalib.metrics import Evaluator
from lightning.pytorch import LightningModule, Trainer
from torch.nn import ModuleList


class DapoEvaluator(Evaluator):
    """:class:`~anomalib.metrics.Evaluator` whose test results hold only the metrics the data updated."""

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compute and log the test metrics that saw at least one batch with their fields."""
        every = self.test_metrics
        self.test_metrics = ModuleList(metric for metric in every if metric.update_called)
        try:
            super().on_test_epoch_end(trainer, pl_module)
        finally:
            self.test_metrics = every
