"""Learned-weights checkpoints: only what DAPO learns travels, checked against the model it is loaded into."""

import pickle
from pathlib import Path
from typing import Any

import torch
from anomalib.utils.serialization import anomalib_safe_globals

from anomalib_dapo.models.dapo.prompts import TokenInit
from anomalib_dapo.models.dapo.torch_model import Aggregation, DapoModel, ImageScore

FROZEN_PREFIX = "model.clip."
META_KEY = "dapo"
SAFE_GLOBALS = (TokenInit, ImageScore, Aggregation)
"""The plugin's types that checkpoints hold in their hyper-parameters, allowed by ``weights_only`` loading."""


class CheckpointMismatchError(ValueError):
    """A checkpoint was trained for another backbone or prompt layout than the model it is loaded into."""


class LearnedWeights:
    """Strips the frozen CLIP weights from checkpoints, records the model layout, and checks it on load.

    A learned checkpoint holds the prompt contexts, the progressive tokens, the adapters and anomalib's
    component state, plus ``checkpoint["dapo"]``: the backbone and the shape of every learned tensor.
    """

    def __init__(self, model: DapoModel, backbone: str, image_size: int) -> None:
        self.model = model
        self.backbone = backbone
        self.image_size = image_size

    @property
    def model_name(self) -> str:
        """The anomalib model of these weights: ``Dapo`` for ``DapoModel``, ``MultiAds`` for ``MultiAdsModel``."""
        return type(self.model).__name__.removesuffix("Model")

    def layout(self) -> dict[str, Any]:
        """What a checkpoint must match: model, backbone, adapter layers and learned tensor shapes."""
        return {
            "model": self.model_name,
            "backbone": self.backbone,
            "image_size": self.image_size,
            "adapter_layers": list(self.model.adapter_layers),
            "shapes": {name: list(p.shape) for name, p in self.model.named_parameters() if p.requires_grad},
        }

    def strip(self, checkpoint: dict[str, Any]) -> None:
        """Drop the frozen CLIP weights from a Lightning checkpoint and record the layout."""
        state = checkpoint["state_dict"]
        for key in [key for key in state if key.startswith(FROZEN_PREFIX)]:
            del state[key]
        checkpoint[META_KEY] = self.layout()

    def check(self, checkpoint: dict[str, Any], source: str) -> None:
        """Raise :class:`CheckpointMismatchError` unless ``checkpoint`` was made for this model's layout."""
        layout = checkpoint.get(META_KEY)
        if layout is None:
            msg = (
                f"{source} is not a {self.model_name} checkpoint (no '{META_KEY}' entry). "
                f"Pass a checkpoint written by {self.model_name}."
            )
            raise CheckpointMismatchError(msg)
        ours = self.layout()
        if layout.get("model", ours["model"]) != ours["model"]:  # checkpoints before 0.2 do not record it
            msg = (
                f"{source} is a {layout['model']} checkpoint, not a {ours['model']} one: "
                f"use --model {layout['model']} to load it."
            )
            raise CheckpointMismatchError(msg)
        if layout["backbone"] != ours["backbone"]:
            msg = (
                f"{source} was trained with backbone {layout['backbone']}, this model uses {ours['backbone']}: "
                f"pass --model.backbone {layout['backbone']} (with its weights) to use it."
            )
            raise CheckpointMismatchError(msg)
        if layout["adapter_layers"] != ours["adapter_layers"] or layout["shapes"] != ours["shapes"]:
            differing = sorted(
                name
                for name in set(layout["shapes"]) | set(ours["shapes"])
                if layout["shapes"].get(name) != ours["shapes"].get(name)
            )
            msg = (
                f"{source} has another prompt/adapter layout (adapter_layers {layout['adapter_layers']}, "
                f"differing tensors {differing}) than this model (adapter_layers {ours['adapter_layers']}). "
                "Use the same prompt_length, num_prompts, prompt_tokens, text_depth, vision_depth and "
                "adapter_layers as in training."
            )
            raise CheckpointMismatchError(msg)

    def restore(self, checkpoint: dict[str, Any], source: str = "The checkpoint") -> None:
        """Check a stripped checkpoint and put this model's frozen CLIP weights back for a strict load."""
        self.check(checkpoint, source)
        state = checkpoint["state_dict"]
        for key, value in self.model.clip.state_dict().items():
            state.setdefault(FROZEN_PREFIX + key, value)

    def load_file(self, path: str | Path) -> dict[str, torch.Tensor]:
        """Load the learned parameters of a Dapo checkpoint file into the model (on CPU, whatever it was trained on).

        Returns:
            The checkpoint's whole state dict, for the caller's other components.

        """
        path = Path(path)
        if not path.is_file():
            msg = f"Dapo weights not found: {path}. Pass the .ckpt written by 'anomalib train --model Dapo'."
            raise FileNotFoundError(msg)
        try:
            with anomalib_safe_globals(extra=SAFE_GLOBALS):
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch.load fails in many ways on other files (text: KeyError, IndexError)
            name = self.model_name
            msg = (
                f"{path} is not a readable {name} checkpoint ({type(error).__name__}{_reason(error)}). Pass the .ckpt "
                f"written by 'anomalib train --model {name}' (results/{name}/.../weights/lightning/model.ckpt)."
            )
            raise CheckpointMismatchError(msg) from error
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            msg = f"{path} is not a {self.model_name} checkpoint (no Lightning state dict): pass the .ckpt it wrote."
            raise CheckpointMismatchError(msg)
        self.check(checkpoint, str(path))
        prefix = "model."
        learned = {
            key.removeprefix(prefix): value
            for key, value in checkpoint["state_dict"].items()
            if key.startswith(prefix) and not key.startswith(FROZEN_PREFIX)
        }
        missing, unexpected = self.model.load_state_dict(learned, strict=False)
        if unexpected or any(not key.startswith("clip.") for key in missing):
            msg = f"{path} does not match this model: missing {missing}, unexpected {unexpected}."
            raise CheckpointMismatchError(msg)
        return checkpoint["state_dict"]


def _reason(error: Exception) -> str:
    """A short reason: unpickling refusals say so (they never name a fix for the user), other errors their words."""
    if isinstance(error, pickle.UnpicklingError):
        return ": it holds Python objects besides tensors and the plugin's types, which are never unpickled"
    return ""
