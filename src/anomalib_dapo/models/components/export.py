"""The export path the plugin's models share (``anomalib export``, ``to_torch``/``to_onnx``/``to_openvino``).

An export holds one vocabulary: its state embeddings depend only on the vocabulary and the learned prompts, so
the exported model scores it from a constant tensor, and the tokenizer and text encoder are left out of every
format. The vocabulary and model are recorded in the exported file (ONNX ``metadata_props``, which OpenVINO keeps
in the model's ``rt_info``; the pickled module itself for ``torch``) so that an inferencer can refuse another one.

By default the exported graph returns the defect-type outputs beside anomalib's four fields; with
``type_outputs=False`` it returns anomalib's fields alone, which anomalib's stock ``TorchInferencer``,
``OpenVINOInferencer`` and its ``tools/inference`` scripts accept (they refuse any other output name).
"""

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, Protocol

import torch
from anomalib.data import InferenceBatch
from torch import nn

from anomalib_dapo.data.dataclasses import TypedInferenceBatch
from anomalib_dapo.exported import METADATA_KEY, reexport_hint
from anomalib_dapo.model_input import check_images

EXPORT_OPSET = 18
"""The ONNX opset exported by default: the dynamo exporter's lowest, so no lossy down-conversion is attempted."""
CLIP_TEXT_SIDE = ("transformer", "token_embedding", "positional_embedding", "ln_final", "text_projection", "attn_mask")
"""The attributes of an open_clip ``CLIP`` that only the text encoder uses."""


class UntrainedExportError(RuntimeError):
    """An export of a model whose prompts and adapters were never learned (no weights loaded, no training run)."""


class TextSideRemovedError(RuntimeError):
    """An exported model was asked to encode text: it holds the state embeddings of one vocabulary only."""


class TextSideRemoved(nn.Module):
    """Stands in for the tokenizer and text encoder modules in an exported model; using it raises.

    Args:
        model: The exported model's class name, for the error message.
        defect_types: The vocabulary the model was exported with, for the error message.

    """

    def __init__(self, model: str, defect_types: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.defect_types = defect_types

    def __getattr__(self, name: str) -> Any:
        """Any other attribute (``tokenizer.context_length``, ``transformer.resblocks``) raises."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name.startswith("__"):  # copy, pickle and hasattr probes of special names
                raise
            self.forward()

    def forward(self, *args, **kwargs) -> NoReturn:
        """Raise :class:`TextSideRemovedError`: an exported model cannot change or recompute its vocabulary."""
        del args, kwargs
        msg = (
            f"This exported {self.model} scores the defect types [{', '.join(self.defect_types)}] only: its "
            f"tokenizer and text encoder were left out of the export. For other defect types re-export: "
            f"{reexport_hint(self.model)}"
        )
        raise TextSideRemovedError(msg)


class TextSided(Protocol):
    """What a torch model of the plugin offers its export: the vocabulary and the parts only text encoding uses."""

    vocabulary: tuple[str, ...]

    def export_text_side(self) -> list[tuple[nn.Module, str]]:
        """Cache the state embeddings of the vocabulary; return the ``(owner, attribute)`` pairs of the text side."""
        ...


def _container(module: nn.Module, name: str) -> dict[str, Any]:
    """The dictionary that holds attribute ``name`` of ``module`` (parameters, buffers, submodules or plain)."""
    for container in (module._parameters, module._buffers, module._modules, module.__dict__):
        if name in container:
            return container
    msg = f"{type(module).__name__} has no attribute {name!r} to leave out of the export."
    raise AttributeError(msg)


@contextmanager
def text_side_removed(owner: str, model: TextSided) -> Iterator[None]:
    """Within the block, ``model`` has no tokenizer, text encoder or token table: what is exported then lacks them.

    Tensors are set to ``None`` and modules (the tokenizer included) replaced by a :class:`TextSideRemoved`, in
    the dictionaries that hold them, so nothing is copied; everything is put back on exit. ``owner`` names the
    anomalib model (``Dapo``, ``MultiAds``) in the errors of the exported model.
    """
    targets = model.export_text_side()
    placeholder = TextSideRemoved(owner, model.vocabulary)
    removed: list[tuple[dict[str, Any], str, Any]] = []
    try:
        for module, name in targets:
            container = _container(module, name)
            value = container[name]
            removed.append((container, name, value))
            container[name] = None if isinstance(value, torch.Tensor) else placeholder
        yield
    finally:
        for container, name, value in reversed(removed):
            container[name] = value


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


def flag_non_finite(outputs: TypedInferenceBatch, images: torch.Tensor) -> TypedInferenceBatch:
    """Images with NaN or infinite pixels get a NaN score and map and an anomalous label and mask (fail-safe).

    Eagerly such images never get here (the models refuse them, ``NonFiniteInputError``). An exported graph
    cannot raise, and its clamping would turn a NaN score into 0, a confident "normal".
    """
    invalid = ~torch.isfinite(images.flatten(1)).all(dim=1)

    def mark(value: torch.Tensor | None, fill: float | bool) -> torch.Tensor | None:
        if value is None:
            return None
        flagged = invalid.view(-1, *[1] * (value.ndim - 1))
        if value.dtype == torch.bool:  # ONNX Runtime has no boolean Where; with fill True, "or" is the same
            return value | flagged
        return torch.where(flagged, fill, value)

    return outputs._replace(
        pred_score=mark(outputs.pred_score, torch.nan),
        anomaly_map=mark(outputs.anomaly_map, torch.nan),
        pred_label=mark(outputs.pred_label, True),
        pred_mask=mark(outputs.pred_mask, True),
    )


class TypedExport:
    """Export methods of the plugin's anomalib models (a base of ``TypedPromptModule``).

    Its exports offer what :class:`anomalib_dapo.exported.ExportedModel` names, which the inferencers rely on.

    The host builds ``self.model`` (a :class:`TextSided` torch model), ``self.learned`` and ``self.image_size``,
    defines ``stage_vocabulary``, ``apply_vocabulary`` and ``collect_references``, calls :meth:`set_export_options` in
    its ``__init__`` and calls :meth:`mark_learned` when learned weights are loaded.
    """

    model: Any
    vocabulary: Any
    learned: Any
    image_size: int
    type_outputs: bool = True
    export_untrained: bool = False
    has_learned_weights: bool = False

    def set_export_options(self, type_outputs: bool, export_untrained: bool) -> None:
        """Keep the export options (see ``Dapo``'s arguments ``type_outputs`` and ``export_untrained``)."""
        self.type_outputs = type_outputs
        self.export_untrained = export_untrained

    def mark_learned(self) -> None:
        """Record that the prompts and adapters hold learned values (weights loaded, or a training run)."""
        self.has_learned_weights = True

    def on_train_end(self) -> None:
        """A training run learned the prompts and adapters: the model may be exported."""
        super().on_train_end()  # type: ignore[misc]
        self.mark_learned()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A Lightning checkpoint (``--ckpt_path``) holds learned prompts and adapters."""
        super().on_load_checkpoint(checkpoint)  # type: ignore[misc]
        self.mark_learned()

    def forward(self, batch: torch.Tensor, *args, **kwargs) -> TypedInferenceBatch | InferenceBatch:
        """Pre-process, model, post-process (what exports run); non-finite images are flagged.

        Returns anomalib's four fields alone when ``type_outputs`` is off, for anomalib's stock inferencers.
        """
        check_images(batch, type(self).__name__, unit_range=True)
        return self.unchecked_forward(batch, *args, **kwargs)

    def unchecked_forward(self, batch: torch.Tensor, *args, **kwargs) -> TypedInferenceBatch | InferenceBatch:
        """``forward`` without the range check, for images already resized as the Engine does.

        An antialiased bicubic resize may overshoot ``[0, 1]`` slightly, as it does in the Engine's pre-processing.
        """
        outputs = flag_non_finite(super().forward(batch, *args, **kwargs), batch)  # type: ignore[misc]
        return outputs if self.type_outputs else InferenceBatch(*outputs[: len(InferenceBatch._fields)])

    def export_metadata(self) -> dict[str, Any]:
        """What an export records: model, vocabulary (type channel ``k`` = ``defect_types[k - 1]``), backbone, size."""
        return {
            "model": type(self).__name__,
            "defect_types": list(self.vocabulary.defect_types),
            "backbone": self.learned.backbone,
            "image_size": self.image_size,
            "type_outputs": self.type_outputs,
        }

    def check_exportable(self) -> None:
        """Refuse to export random prompts and adapters unless ``export_untrained`` asks for it."""
        if self.has_learned_weights or self.export_untrained:
            return
        name = type(self).__name__
        msg = (
            f"This {name} has no learned weights: its export would score with random prompts and adapters. Pass "
            f"--model.weights <learned.ckpt> (or --ckpt_path) with the checkpoint 'anomalib train --model {name}' "
            "wrote, or --model.export_untrained true to export the untrained model on purpose."
        )
        raise UntrainedExportError(msg)

    @contextmanager
    def exportable(self) -> Iterator[None]:
        """Fix the vocabulary and cache its states, then leave the text side and gradients out while exporting.

        The vocabulary is resolved as for ``predict`` (``defect_types``, else the datamodule's when a trainer
        holds one, else the generic state), so exporting needs no datamodule. The export scores it from a
        constant tensor: exporting again is how the vocabulary changes.
        """
        self.check_exportable()
        self.apply_vocabulary(self.stage_vocabulary("predict"))  # type: ignore[attr-defined]
        self.eval()  # type: ignore[attr-defined]
        self.collect_references()  # type: ignore[attr-defined]  # few-shot: the references become constants too
        parameters = list(self.parameters())  # type: ignore[attr-defined]
        flags = {parameter: parameter.requires_grad for parameter in parameters}
        self.requires_grad_(False)  # type: ignore[attr-defined]  # nothing learns in an export
        try:
            with text_side_removed(type(self).__name__, self.model):
                yield
        finally:
            for parameter, flag in flags.items():
                parameter.requires_grad_(flag)

    def to_torch(self, export_root: Path | str, model_file_name: str = "model") -> Path:
        """Pickle this module for the vocabulary, without tokenizer or text encoder.

        Load it with :class:`anomalib_dapo.deploy.DapoTorchInferencer` (the plugin must be importable there), or
        with anomalib's ``TorchInferencer`` when exported with ``type_outputs=False``.
        """
        with self.exportable():
            return super().to_torch(export_root, model_file_name)  # type: ignore[misc]

    def to_onnx(
        self,
        export_root: Path | str,
        model_file_name: str = "model",
        input_size: tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> Path:
        """Export the graph for the vocabulary (its state embeddings a constant) and record it in the metadata.

        ``to_openvino`` converts this export; OpenVINO keeps the metadata in the model's ``rt_info``. The opset
        defaults to the dynamo exporter's own (18) rather than anomalib's 14, which it cannot convert to.
        """
        kwargs.setdefault("opset_version", EXPORT_OPSET)
        try:
            with self.exportable():
                path = super().to_onnx(export_root, model_file_name, input_size, **kwargs)  # type: ignore[misc]
        finally:
            # torch.fx's tracer makes AttrProxy subclasses of every traced module class, named like it, held in
            # reference cycles: until a collection, jsonargparse sees two classes named e.g. "Dapo" and refuses
            # ``--model Dapo`` in the same process.
            gc.collect()
        write_onnx_metadata(path, self.export_metadata())
        return path
