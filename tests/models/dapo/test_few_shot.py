"""Few-shot Dapo: normal references from the train split reveal missing parts that prompts cannot see.

A missing sector of the synthetic disc, or bar of the grid, shows background: locally normal-looking, so no
prompt flags it, while the same position of a normal reference shows the part. The weights are untrained, so
the zero-shot map is at chance level; the reference map works on any patch embeddings, and the paper finds
trained prompts blind to such absences too (DAPO §6.2).
"""

import pytest
import torch
from anomalib import LearningType
from anomalib.engine import Engine
from lightning.pytorch import Trainer
from PIL import Image
from torchmetrics.classification import BinaryAUROC

from anomalib_dapo import Dapo
from anomalib_dapo.data import SyntheticDefects

SIZES = {"image_size": 64, "n_train": 4, "n_test_good": 4, "n_test_per_defect": 6, "seed": 1}


@pytest.fixture
def weights(tmp_path, tiny_kwargs):
    torch.manual_seed(0)
    path = tmp_path / "weights.ckpt"
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(Dapo(**tiny_kwargs))
    trainer.save_checkpoint(path)
    return path


def missing_pixel_auroc(model: Dapo, data, root, categories=("disc", "grid")) -> float:
    """Pixel AUROC of the anomaly map over the held-out test images with a missing part and the normal ones."""
    metric = BinaryAUROC()
    for category in categories:
        datamodule = SyntheticDefects(data, category, **SIZES, eval_batch_size=32)
        engine = Engine(default_root_dir=root / "results", accelerator="cpu", logger=False, enable_progress_bar=False)
        for batch in engine.predict(model, datamodule=datamodule, return_predictions=True):
            keep = torch.tensor([path.split("/")[-2] in {"missing", "good"} for path in batch.image_path])
            metric.update(batch.anomaly_map[keep].flatten(), batch.gt_mask[keep].flatten().int())
    return metric.compute().item()


def test_k_shot_references_raise_pixel_auroc_on_missing_parts(weights, tiny_kwargs, tmp_path, synthetic):
    # One model for both runs: the tiny CLIP's random frozen weights are not in the checkpoint. Raw maps: the
    # post-processor's normalisation clamps the maps' tails (ties), which would blur the comparison.
    model = Dapo(weights=str(weights), post_processor=False, **tiny_kwargs)
    assert model.learning_type == LearningType.ZERO_SHOT
    data = synthetic(**SIZES)
    zero = missing_pixel_auroc(model, data, tmp_path)
    assert model.model.references.num_references == 0
    model.k_shot = 4
    assert model.learning_type == LearningType.FEW_SHOT
    few = missing_pixel_auroc(model, data, tmp_path)
    assert model.model.references.num_references == 4  # collected from the train split by the Engine
    print(f"missing-part pixel AUROC on held-out images: zero-shot {zero:.3f} -> 4-shot {few:.3f}")
    assert few >= zero + 0.2


def test_references_from_a_folder_and_their_errors(weights, tiny_kwargs, tmp_path):
    Image.new("RGB", (80, 80), "gray").save(tmp_path / "good.png")
    model = Dapo(weights=str(weights), k_shot=1, few_shot_source=tmp_path, **tiny_kwargs)
    model.collect_references()  # resized by the model's pre-processor: 8×8 patches of the 64-px input
    assert model.model.references.patches.shape[1:3] == (1, 64)
    model.k_shot = 2
    with pytest.raises(ValueError, match="holds only 1 normal images"):
        model.collect_references()
    with pytest.raises(ValueError, match="k_shot must be 0"):
        Dapo(k_shot=-1, **tiny_kwargs)
