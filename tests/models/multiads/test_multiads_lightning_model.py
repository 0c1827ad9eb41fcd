"""MultiAds as an anomalib model: registration, checkpoints, the product filter, and the Engine's loops."""

import pytest
import torch
from anomalib.data import MVTecAD
from anomalib.engine import Engine
from anomalib.models import get_model
from lightning.pytorch import Trainer

from anomalib_dapo import MultiAds, knowledge
from anomalib_dapo.data import CrossDataset
from anomalib_dapo.models.components.checkpoint import CheckpointMismatchError


def _save(model: MultiAds, path) -> None:
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)


def _engine(root, **kwargs) -> Engine:
    options = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False, **kwargs}
    return Engine(default_root_dir=root / "results", **options)


def test_anomalib_finds_multiads_by_name_and_by_class_path(multiads_kwargs):
    assert isinstance(get_model("multiads", **multiads_kwargs), MultiAds)
    assert isinstance(get_model({"class_path": "MultiAds", "init_args": multiads_kwargs}), MultiAds)  # as in configs


@pytest.mark.parametrize("call", ["model(images)", "model.model(images)"])
def test_a_vocabulary_given_at_construction_scores_without_a_trainer(call, tmp_path, multiads_kwargs):
    weights = tmp_path / "learned.ckpt"
    _save(MultiAds(**multiads_kwargs), weights)
    model = MultiAds(weights=str(weights), defect_types=["scratch", "dent"], **multiads_kwargs).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        outputs = model(images) if call == "model(images)" else model.model(images)
    assert outputs.pred_score.shape == (2,)
    assert outputs.anomaly_map.shape == (2, 1, 64, 64)
    assert outputs.pred_type_map.shape == (2, 3, 64, 64)
    assert outputs.pred_type_probs.shape == (2, 2)
    assert model.model.vocabulary == ("scratch", "dent")
    assert model.model.class_names == ("object",)  # no class_name, no datamodule


def test_without_a_vocabulary_the_generic_state_of_the_named_product(multiads_kwargs):
    model = MultiAds(class_name="bottle", **multiads_kwargs).eval()
    with torch.no_grad():
        outputs = model.model(torch.rand(1, 3, 64, 64))
    assert outputs.pred_type_map.shape[1] == 2
    assert (model.model.vocabulary, model.model.class_names) == (("anomaly",), ("bottle",))


def test_checkpoint_holds_the_adapters_only_and_loads_back(tmp_path, multiads_kwargs):
    model = MultiAds(**multiads_kwargs)
    with torch.no_grad():
        model.model.adapters.weight.add_(1.0)
    path = tmp_path / "learned.ckpt"
    _save(model, path)
    checkpoint = torch.load(path, weights_only=False)
    assert sorted(key for key in checkpoint["state_dict"] if key.startswith("model.")) == [
        "model.adapters.bias",
        "model.adapters.weight",
    ]
    restored = MultiAds(weights=str(path), **multiads_kwargs)
    assert torch.equal(restored.model.adapters.weight, model.model.adapters.weight)
    with pytest.raises(CheckpointMismatchError, match="adapter_layers"):
        MultiAds(weights=str(path), **{**multiads_kwargs, "adapter_layers": [1, 2, 4]})


@pytest.mark.parametrize(("product_filter", "category"), [(True, "grid"), (False, None)])
def test_test_run_scores_the_product_types_named_with_the_product(
    tmp_path, multiads_kwargs, product_filter, category, synthetic
):
    """MultiADS-F scores the product's own defect types; MultiADS every type of the dataset (knowledge base)."""
    root = synthetic()
    weights = tmp_path / "weights.ckpt"
    _save(MultiAds(**multiads_kwargs), weights)
    model = MultiAds(weights=str(weights), product_filter=product_filter, **multiads_kwargs)
    datamodule = MVTecAD(root=root, category="grid", eval_batch_size=8, num_workers=0)
    metrics = _engine(tmp_path).test(model, datamodule=datamodule)[0]
    assert model.model.vocabulary == knowledge.vocabulary("mvtec_ad", category)
    assert model.model.class_names == ("grid",)
    assert {"image_AUROC", "pixel_AUROC", "pixel_AUPRO"} <= set(metrics)


def test_training_names_each_images_product(tmp_path, multiads_kwargs, synthetic):
    root = synthetic()
    model = MultiAds(**multiads_kwargs)
    datamodule = CrossDataset("synthetic", root, "synthetic", root, "disc", train_batch_size=4)
    _engine(tmp_path, max_steps=2, limit_val_batches=0).fit(model, datamodule=datamodule)
    assert model.model.vocabulary == knowledge.vocabulary("synthetic")  # the source's union vocabulary
    assert model.model.class_names == ("disc", "grid", "tile")  # each source category's prompts
    assert set(model.train_product_of.values()) == {0, 1, 2}
    assert model.trainer.callback_metrics["train_loss"] > 0
