"""Learning check: MultiAds' adapters, trained with eq. 2, localise held-out synthetic defects far better.

The loop runs the model's own loss and optimiser without the Engine (whose loops test_lightning_model covers):
the encoder is frozen and the prompts are fixed text, so a hundred steps take seconds.
"""

import torch
from anomalib.data.utils import Split
from torch.utils.data import ConcatDataset, DataLoader
from torchmetrics.classification import BinaryAUROC

from anomalib_dapo import MultiAds
from anomalib_dapo.data import TypedImageBatch, typed_dataset
from anomalib_dapo.knowledge import categories, vocabulary

TYPES = vocabulary("synthetic")


def loader(model: MultiAds, root, batch_size: int, shuffle: bool) -> DataLoader:
    datasets = [typed_dataset("synthetic", root, category, Split.TEST, TYPES) for category in categories("synthetic")]
    for dataset in datasets:
        dataset.augmentations = model.pre_processor.transform
    return DataLoader(ConcatDataset(datasets), batch_size, shuffle=shuffle, collate_fn=TypedImageBatch.collate)


def held_out_pixel_auroc(model: MultiAds, root) -> float:
    metric = BinaryAUROC()
    model.model.eval()
    with torch.no_grad():
        for batch in loader(model, root, 32, shuffle=False):
            metric.update(model.model(batch.image).anomaly_map[:, 0].flatten(), batch.gt_mask.flatten().int())
    return metric.compute().item()


def test_training_the_adapters_moves_held_out_pixel_auroc_far_above_the_untrained_model(
    tmp_path, multiads_kwargs, synthetic
):
    torch.manual_seed(0)
    source = synthetic(n_train=8, n_test_good=6, n_test_per_defect=10)
    held_out = synthetic(n_train=8, n_test_good=6, n_test_per_defect=6, seed=1)
    model = MultiAds(**{**multiads_kwargs, "learning_rate": 1e-2})
    model.use_vocabulary(TYPES)
    untrained = held_out_pixel_auroc(model, held_out)

    optimizer = model.configure_optimizers()
    model.model.train()
    steps = 0
    while steps < 100:
        for batch in loader(model, source, 8, shuffle=True):
            loss = model.training_loss(batch, model.training_type_mask(batch))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if steps == 100:
                break
    trained = held_out_pixel_auroc(model, held_out)
    print(f"held-out pixel AUROC: untrained {untrained:.3f} -> trained {trained:.3f}")
    assert trained >= untrained + 0.12
