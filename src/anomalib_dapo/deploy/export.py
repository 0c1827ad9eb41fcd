"""What Dapo's exports hold: a fixed vocabulary, its cached state embeddings, no text side, and metadata.

The state embeddings depend only on the vocabulary and the learned prompts, so an exported model scores the
vocabulary it was exported with, from a constant tensor: the tokenizer and text encoder are left out of every
export format. The vocabulary is recorded in the exported file (ONNX ``metadata_props``, which OpenVINO keeps in
the model's ``rt_info``; the pickled module itself for ``torch``) so that an inferencer can refuse another one.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch
from torch import nn

if TYPE_CHECKING:
    from anomalib_dapo.models.dapo.lightning_model import Dapo
    from anomalib_dapo.models.dapo.torch_model import DapoModel

METADATA_KEY = "dapo"
"""The ONNX metadata key (and OpenVINO ``rt_info`` entry under ``framework``) holding the export's metadata."""
EXPORT_OPSET = 18
"""The ONNX opset exported by default: the dynamo exporter's lowest, so no lossy down-conversion is attempted."""
CLIP_TEXT_SIDE = ("transformer", "token_embedding", "positional_embedding", "ln_final", "text_projection", "attn_mask")
"""The attributes of an open_clip ``CLIP`` that only the text encoder uses."""


def reexport_hint(defect_types: str = "[scratch, dent]") -> str:
    """The command that exports a learned Dapo for another vocabulary."""
    return (
        f'anomalib export --model Dapo --model.weights <learned.ckpt> --model.defect_types "{defect_types}" '
        "--export_type <torch|onnx|openvino>"
    )


class TextSideRemovedError(RuntimeError):
    """An exported Dapo was asked to encode text: it holds the state embeddings of one vocabulary only."""


class TextSideRemoved(nn.Module):
    """Stands in for the tokenizer and text encoder modules in an exported Dapo; using it raises.

    Args:
        defect_types: The vocabulary the model was exported with, for the error message.

    """

    def __init__(self, defect_types: tuple[str, ...]) -> None:
        super().__init__()
        self.defect_types = defect_types

    def forward(self, *args, **kwargs) -> NoReturn:
        """Raise :class:`TextSideRemovedError`: an exported model cannot change or recompute its vocabulary."""
        del args, kwargs
        msg = (
            f"This exported Dapo scores the defect types [{', '.join(self.defect_types)}] only: its tokenizer and "
            f"text encoder were left out of the export. For other defect types re-export: {reexport_hint()}"
        )
        raise TextSideRemovedError(msg)


def _container(module: nn.Module, name: str) -> dict[str, Any]:
    """The dictionary that holds attribute ``name`` of ``module`` (parameters, buffers, submodules or plain)."""
    for container in (module._parameters, module._buffers, module._modules, module.__dict__):
        if name in container:
            return container
    msg = f"{type(module).__name__} has no attribute {name!r} to leave out of the export."
    raise AttributeError(msg)


@contextmanager
def text_side_removed(model: "DapoModel") -> Iterator[None]:
    """Within the block, ``model`` has no tokenizer, text encoder or token table: what is exported then lacks them.

    Tensors are set to ``None`` and modules (the tokenizer included) replaced by a :class:`TextSideRemoved`, in
    the dictionaries that hold them, so nothing is copied; everything is put back on exit. The state embeddings
    must be cached before (``model.states()`` in eval mode).
    """
    placeholder = TextSideRemoved(model.vocabulary)
    targets = [(model.clip, name) for name in CLIP_TEXT_SIDE] + [(model.prompts, "tokenizer")]
    removed: list[tuple[dict[str, Any], str, Any]] = []
    try:
        for owner, name in targets:
            container = _container(owner, name)
            value = container[name]
            removed.append((container, name, value))
            container[name] = None if isinstance(value, torch.Tensor) else placeholder
        yield
    finally:
        for container, name, value in reversed(removed):
            container[name] = value


def dapo_metadata(dapo: "Dapo") -> dict[str, Any]:
    """What an export records: the vocabulary (type channel ``k`` = ``defect_types[k - 1]``), backbone, size."""
    return {
        "defect_types": list(dapo.model.vocabulary),
        "backbone": dapo.learned.backbone,
        "image_size": dapo.image_size,
    }


def write_onnx_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Store ``metadata`` as JSON under :data:`METADATA_KEY` in the ONNX file's ``metadata_props``.

    External weight files (models over 2 GB) are neither loaded nor rewritten: their references are kept.
    """
    import onnx  # optional: only exporting needs it

    proto = onnx.load(str(path), load_external_data=False)
    for prop in [prop for prop in proto.metadata_props if prop.key == METADATA_KEY]:
        proto.metadata_props.remove(prop)
    proto.metadata_props.add(key=METADATA_KEY, value=json.dumps(metadata))
    onnx.save(proto, str(path))
