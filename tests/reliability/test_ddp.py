"""Several processes: ``anomalib train`` with DDP on 2 CPU processes (gloo) works, and its test metrics equal those
of testing the checkpoint it wrote in one process.

The DDP run goes through the stock console script in a subprocess (DDP starts its second process by running the
same command again); the one-process test runs here, through the engine the console script drives, to save a
start-up. What is compared and why:

* One thread per process in both runs (``OMP_NUM_THREADS=1``; Lightning's DDP would otherwise give each process
  half the cores): float32 reductions split over another number of threads differ by a few ulp, and a pixel
  whose value moves across a bin edge of the type curves' histogram changes them in the 6th digit.
* Test set: 10 images (an even number), so DistributedSampler gives each process 5 and pads nothing; with an odd
  size it would repeat one image and the metrics would count it twice.
* Evaluation batches of one image, so each image's scores come from the same computation in both runs.
* Metrics built on counts (pixel type-curve histograms, F1 and multi-label counts, summed over processes) must be
  exactly equal. anomalib's exact AUROC, AUPR, F1-max and AUPRO gather every score from both processes and
  compute on the concatenation, whose order (rank 0's images, then rank 1's) differs from one process's: sums
  in float32 in another order differ by a few ulp, hence ``ATOL``.
* Training itself is not compared: under DDP each step sees two half batches drawn by DistributedSampler's
  shuffle and averages their gradients, a different (equally valid) run than one process's shuffle.
"""

import re

import pytest
import torch
from anomalib.engine import Engine

from anomalib_dapo import Dapo
from anomalib_dapo.data import CrossDataset
from console import anomalib
from tiny import TINY, TINY_ARGS

ATOL = 1e-6
EXACT = (
    "pixel_TypeAUROC",
    "pixel_TypeAveragePrecision",
    "pixel_TypeF1Score",
    "image_MultiLabelPrecision",
    "image_MultiLabelRecall",
    "image_MultiLabelF1",
)
ENV = {"COLUMNS": "200", "OMP_NUM_THREADS": "1"}  # COLUMNS: rich would wrap a narrow table
GATHERED = ("image_AUROC", "image_AUPR", "image_F1Max", "pixel_AUROC", "pixel_AUPRO", "pixel_F1Max")


def metrics(output: str) -> dict[str, float]:
    found = dict(re.findall(r"│\s*(\w+)\s*│\s*([0-9.]+)\s*│", output))
    assert set(EXACT + GATHERED) <= found.keys(), output[-3000:]
    return {name: float(value) for name, value in found.items()}


@pytest.mark.slow
def test_ddp_train_and_test_match_one_process(tmp_path, synthetic):
    data = synthetic(categories=("disc",), n_train=1)
    datamodule = {
        "source": "synthetic",
        "source_root": str(data),
        "target": "synthetic",
        "target_root": str(data),
        "target_category": "disc",
        "train_batch_size": 4,
        "eval_batch_size": 1,
    }
    # TINY's random weights are drawn from a fixed seed: every process builds the same frozen backbone.
    args = [*TINY_ARGS]
    args += ["--data", "anomalib_dapo.data.CrossDataset", *(f"--data.{key}={val}" for key, val in datamodule.items())]
    args += ["--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2"]
    args += ["--trainer.max_epochs", "1", "--seed_everything", "0", "--default_root_dir", str(tmp_path / "ddp")]
    two = metrics(anomalib("train", *args, cwd=tmp_path, env=ENV, timeout=300))
    # Only rank 0 writes the checkpoint. (anomalib's engine also makes a version folder in rank 1, where "latest"
    # may point: docs/reliability.md.)
    (checkpoint,) = (tmp_path / "ddp/Dapo/CrossDataset/disc").glob("v*/weights/lightning/model.ckpt")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engine = Engine(logger=False, default_root_dir=tmp_path / "single", accelerator="cpu", devices=1)
        (one,) = engine.test(model=Dapo(weights=str(checkpoint), **TINY), datamodule=CrossDataset(**datamodule))
    finally:
        torch.set_num_threads(threads)
    for name in EXACT:
        assert two[name] == one[name], name
    for name in GATHERED:
        assert two[name] == pytest.approx(one[name], abs=ATOL), name
