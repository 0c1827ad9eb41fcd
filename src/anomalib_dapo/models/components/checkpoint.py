"""Learned-weights checkpoints: only what a model learns travels, checked against the model it is loaded into.

A Lightning checkpoint of Dapo or MultiAds keeps the learned parameters (prompts, adapters) and anomalib's
component state, never the frozen CLIP weights, and records the model's layout under :data:`META_KEY`.
"""

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from anomalib.utils.serialization import anomalib_safe_globals
from torch import nn

from anomalib_dapo.models.components.adapters import AdapterInit
from anomalib_dapo.models.components.options import OptionEnum
from anomalib_dapo.models.components.predictions import ImageScore

FROZEN_PREFIX = "model.clip."
META_KEY = "dapo"
"""The checkpoint entry holding the layout (the same key for every model of the plugin)."""


MOVED_OPTIONS = (
    (ImageScore, "anomalib_dapo.models.dapo.torch_model.ImageScore"),
    (AdapterInit, "anomalib_dapo.models.dapo.torch_model.AdapterInit"),
)
"""Option types that moved since 0.1 and the names under which 0.1's checkpoints hold them."""


def safe_globals() -> tuple[type | tuple[type, str], ...]:
    """The plugin's option types (every :class:`OptionEnum`), which checkpoints hold in their hyper-parameters.

    ``weights_only`` loading allows them, and the types of :data:`MOVED_OPTIONS` under their 0.1 names too, so
    that checkpoints trained with 0.1 keep loading. Importing this module imports :mod:`anomalib_dapo.models`,
    which defines every model's options, so that a Dapo checkpoint read for MultiAds (or the other way round) is
    read and refused with the model it belongs to.
    """
    found, pending = [], list(OptionEnum.__subclasses__())
    while pending:
        option = pending.pop(0)
        found.append(option)
        pending += option.__subclasses__()
    return (*found, *MOVED_OPTIONS)


class CheckpointMismatchError(ValueError):
    """A checkpoint was trained for another backbone or prompt layout than the model it is loaded into."""


class LearnedWeights:
    """Strips the frozen CLIP weights from checkpoints, records the model layout, and checks it on load.

    A learned checkpoint holds the learned parameters and anomalib's component state, plus
    ``checkpoint["dapo"]``: the model, the backbone and the shape of every learned tensor.

    Args:
        model: The torch model (its ``clip`` is the frozen part; ``adapter_layers`` is recorded).
        model_name: The anomalib model (``Dapo``, ``MultiAds``), recorded and named in the messages.
        backbone: The OpenCLIP model name.
        image_size: The input resolution.
        layout_options: The model's options that shape its learned tensors, named when they differ. Defaults to
            ``("adapter_layers",)``.

    """

    def __init__(
        self,
        model: nn.Module,
        model_name: str,
        backbone: str,
        image_size: int,
        layout_options: Sequence[str] = ("adapter_layers",),
    ) -> None:
        self.model = model
        self.model_name = model_name
        self.backbone = backbone
        self.image_size = image_size
        self.layout_options = tuple(layout_options)

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
                f"{source} has another layout of learned tensors (adapter_layers {layout['adapter_layers']}, "
                f"differing tensors {differing}) than this {ours['model']} (adapter_layers {ours['adapter_layers']}). "
                f"Use the same {', '.join(self.layout_options)} as in training (the config.yaml beside the checkpoint)."
            )
            raise CheckpointMismatchError(msg)

    def restore(self, checkpoint: dict[str, Any], source: str = "The checkpoint") -> None:
        """Check a stripped checkpoint and put this model's frozen CLIP weights back for a strict load."""
        self.check(checkpoint, source)
        state = checkpoint["state_dict"]
        for key, value in self.model.clip.state_dict().items():
            state.setdefault(FROZEN_PREFIX + key, value)

    def load_file(self, path: str | Path) -> dict[str, torch.Tensor]:
        """Load the learned parameters of a checkpoint file into the model (on CPU, whatever it was trained on).

        Returns:
            The checkpoint's whole state dict, for the caller's other components.

        """
        path, name = Path(path), self.model_name
        if not path.is_file():
            msg = f"{name} weights not found: {path}. Pass the .ckpt written by 'anomalib train --model {name}'."
            raise FileNotFoundError(msg)
        try:
            with anomalib_safe_globals(extra=safe_globals()):
                checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch.load fails in many ways on other files (text: KeyError, IndexError)
            msg = (
                f"{path} is not a readable {name} checkpoint ({type(error).__name__}{_reason(error)}). Pass the .ckpt "
                f"written by 'anomalib train --model {name}' (results/{name}/.../weights/lightning/model.ckpt)."
            )
            raise CheckpointMismatchError(msg) from error
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            msg = f"{path} is not a {name} checkpoint (no Lightning state dict): pass the .ckpt it wrote."
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
