"""``--ckpt_path W`` and ``--model.weights W`` give the same zero-shot result on a target."""

import pytest
import torch
from anomalib.data import MVTecAD
from anomalib.engine import Engine
from lightning import seed_everything

from anomalib_dapo import Dapo

CALIBRATION = ("image_threshold", "pixel_threshold", "image_min", "image_max", "pixel_min", "pixel_max")


@pytest.fixture(scope="module")
def target(tmp_path_factory, synthetic):
    return synthetic(categories=("grid",), n_test_per_defect=1)


def _run(verb, target, tmp_path, tiny_kwargs, checkpoint, by_path):
    seed_everything(0)  # the same random tiny CLIP in both models (checkpoints hold no frozen weights)
    model = Dapo(**tiny_kwargs) if by_path else Dapo(weights=str(checkpoint), **tiny_kwargs)
    engine = Engine(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False)
    datamodule = MVTecAD(root=target, category="grid", eval_batch_size=4, num_workers=0)
    ckpt_path = str(checkpoint) if by_path else None
    result = getattr(engine, verb)(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
    calibration = {name: getattr(model.post_processor, name).clone() for name in CALIBRATION}
    return result, calibration


@pytest.mark.parametrize("verb", ["test", "predict"])
def test_ckpt_path_recalibrates_on_the_target_like_weights(verb, target, tmp_path, tiny_kwargs, tiny_checkpoint):
    by_weights, calibrated = _run(verb, target, tmp_path / "w", tiny_kwargs, tiny_checkpoint, by_path=False)
    by_path, restored = _run(verb, target, tmp_path / "p", tiny_kwargs, tiny_checkpoint, by_path=True)
    assert torch.isfinite(calibrated["image_threshold"])  # calibrated on the target, not the checkpoint's default
    for name in CALIBRATION:
        torch.testing.assert_close(restored[name], calibrated[name], msg=name)
    if verb == "test":
        assert by_path[0].keys() == by_weights[0].keys()
        for name, value in by_weights[0].items():
            assert by_path[0][name] == pytest.approx(value, abs=1e-6), name
    else:
        for one, other in zip(by_weights, by_path, strict=True):
            torch.testing.assert_close(one.pred_score, other.pred_score)
            assert torch.equal(one.pred_label, other.pred_label)
