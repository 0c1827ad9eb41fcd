"""The same seed gives the same learned weights and the same test metrics on CPU.

``seed_everything`` seeds the random frozen backbone of ``dapo-tiny``, the prompt and adapter initialisation and
the order of the training batches alike, so two short fits must agree bit for bit.
"""

from pathlib import Path

import pytest
import torch
from anomalib.engine import Engine
from lightning.pytorch import seed_everything

from anomalib_dapo import Dapo
from anomalib_dapo.data import CrossDataset
from tiny import TINY


@pytest.fixture(scope="module")
def data(tmp_path_factory, synthetic) -> Path:
    return synthetic(categories=("grid",), n_train=1)


def fit(data: Path, root: Path, seed: int, test: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Seed, fit one epoch (shuffled batches of 4) and test; the learned tensors and the test metrics."""
    seed_everything(seed)
    model = Dapo(**TINY)
    datamodule = CrossDataset("synthetic", data, "synthetic", data, "grid", train_batch_size=4, eval_batch_size=4)
    engine = Engine(logger=False, default_root_dir=root, max_epochs=1, devices=1, accelerator="cpu")
    engine.fit(model=model, datamodule=datamodule)
    metrics = engine.test(model=model, datamodule=datamodule)[0] if test else {}
    weights = {name: value.detach().clone() for name, value in model.model.named_parameters() if value.requires_grad}
    return weights, metrics


def test_same_seed_same_weights_and_metrics(data, tmp_path):
    first_weights, first_metrics = fit(data, tmp_path / "first", seed=0)
    second_weights, second_metrics = fit(data, tmp_path / "second", seed=0)
    assert first_weights.keys() == second_weights.keys()
    for name, value in first_weights.items():
        assert torch.equal(value, second_weights[name]), name
    assert {"image_AUROC", "pixel_AUROC", "pixel_TypeAUROC"} <= first_metrics.keys()
    assert first_metrics == second_metrics

    other_weights, _ = fit(data, tmp_path / "other", seed=1, test=False)  # the check can tell runs apart
    assert any(not torch.equal(value, other_weights[name]) for name, value in first_weights.items())
