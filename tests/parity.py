"""What the export tests share: a learned tiny model on disk, its PyTorch reference outputs and the parity check.

Tolerances (float32 everywhere, OpenVINO with ``INFERENCE_PRECISION_HINT=f32``): float outputs within
``ATOL``; labels and masks equal except where the reference value is within ``EPS`` of the threshold; type
masks equal except where the reference's two most probable states are within ``EPS`` of each other.
"""

from pathlib import Path

import numpy as np
import open_clip
import torch
from lightning.pytorch import Trainer

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.backbone.clip import _register_tiny_config
from tiny import PROMPT_OPTIONS, tiny_config

ATOL = 1e-4
EPS = 1e-4
BINARY = ["pred_score", "pred_label", "anomaly_map", "pred_mask"]
OUTPUTS = [*BINARY, "pred_type_map", "pred_type_mask", "pred_type_probs"]
F32 = {"INFERENCE_PRECISION_HINT": "f32"}
MODEL_KWARGS = {Dapo: tiny_config(drop=["pretrained"]), MultiAds: tiny_config(drop=["pretrained", *PROMPT_OPTIONS])}
"""The tiny configuration of each model, less the CLIP weights (each export test names its file)."""


def write_tiny_clip(path: Path) -> Path:
    """The tiny CLIP's weights (seed 0) at ``path``: every model and process loading them builds the same backbone,
    and a learned checkpoint names the file (``--model.pretrained``) as a real CLIP's would be named."""
    _register_tiny_config()
    torch.manual_seed(0)
    torch.save(open_clip.create_model("dapo-tiny", force_image_size=64).state_dict(), path)
    return path


def write_assets(root: Path, model_class: type, kwargs: dict) -> dict[str, Path]:
    """A tiny CLIP weights file (so that other processes build the same backbone) and a learned checkpoint."""
    clip_file = write_tiny_clip(root / "tiny_clip.pt")
    model = model_class(pretrained=str(clip_file), **kwargs)
    with torch.no_grad():  # learned values that differ from the initialisation
        model.model.adapters.weight.add_(0.05 * torch.randn_like(model.model.adapters.weight))
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(model)
    trainer.save_checkpoint(root / "learned.ckpt")
    return {"clip": clip_file, "weights": root / "learned.ckpt"}


def reference(model: torch.nn.Module, images: torch.Tensor) -> dict[str, np.ndarray]:
    """The PyTorch outputs (``forward``, what exports run) for the vocabulary the model would be exported with."""
    model.apply_vocabulary(model.stage_vocabulary("predict"))
    model.eval()
    with torch.no_grad():
        # unchecked: images resized as the Engine does may overshoot [0, 1] a little, as they do there
        return {name: value.numpy() for name, value in model.unchecked_forward(images)._asdict().items()}


def assert_parity(got: dict[str, np.ndarray], ref: dict[str, np.ndarray], threshold: float = 0.5) -> None:
    """``got`` (the fields it has) matches ``ref`` within the tolerances above."""
    for name in ("pred_score", "anomaly_map", "pred_type_map", "pred_type_probs"):
        if name in got:
            np.testing.assert_allclose(got[name].reshape(ref[name].shape), ref[name], atol=ATOL, err_msg=name)
    for name, values in (("pred_label", "pred_score"), ("pred_mask", "anomaly_map")):
        differs = got[name].reshape(ref[name].shape) != ref[name]
        assert np.all(np.abs(ref[values][differs] - threshold) < EPS), name
    if "pred_type_mask" in got:
        top2 = np.sort(ref["pred_type_map"], axis=1)[:, -2:]
        differs = got["pred_type_mask"].reshape(ref["pred_type_mask"].shape) != ref["pred_type_mask"]
        assert np.all((top2[:, 1] - top2[:, 0])[differs] < EPS)
