"""Calibration on the data under test when Lightning restores a checkpoint (``--ckpt_path``); anomalib 2.7.

anomalib's ``Engine.test`` and ``Engine.predict`` validate zero- and few-shot models first, which computes
thresholds and normalisation on the target's validation data, but only when no checkpoint path is given
(``Engine._should_run_validation``): it assumes a checkpoint holds the calibration of the data it is used on.
A Dapo checkpoint holds the calibration of its *training* run's data, so ``--ckpt_path W`` would score a new
target with the source's thresholds while ``--model.weights W`` recalibrates on the target. :func:`calibrate`
runs the validation pass anomalib skipped, so both give the same zero-shot result.
"""

import torch
from anomalib.data import AnomalibDataModule
from anomalib.models import AnomalibModule
from lightning.fabric.utilities.apply_func import move_data_to_device


def needs_calibration(model: AnomalibModule) -> bool:
    """Whether Lightning restored a checkpoint for this run on a datamodule with validation data."""
    datamodule = model.trainer.datamodule
    return (
        model.trainer.ckpt_path is not None
        and model.post_processor is not None
        and isinstance(datamodule, AnomalibDataModule)
        and getattr(datamodule, "val_data", None) is not None  # set up unless val_split_mode is none
    )


def calibrate(model: AnomalibModule) -> None:
    """Recompute thresholds and normalisation on the datamodule's validation data, as anomalib's validation does.

    The batches go through the same hooks as in ``Trainer.validate``: the pre-processor's transform,
    ``validation_step``, and the post-processor's batch and epoch ends.
    """
    trainer = model.trainer
    pre_processor, post_processor = model.pre_processor, model.post_processor
    with torch.no_grad():
        for index, batch in enumerate(trainer.datamodule.val_dataloader()):
            batch = move_data_to_device(batch, model.device)
            if pre_processor is not None:
                pre_processor.on_validation_batch_start(trainer, model, batch, index)
            outputs = model.validation_step(batch, index)
            post_processor.on_validation_batch_end(trainer, model, outputs, batch, index)
    post_processor.on_validation_epoch_end(trainer, model)
