"""The contract between an exported model and the inferencers that run it (:mod:`anomalib_dapo.deploy`).

The export side (:mod:`anomalib_dapo.models.components.export`) writes it; the deploy side reads it, without
importing the models: the metadata key and what it records, the command that re-exports, and what a pickled
(``torch``) export offers.
"""

from typing import Any, Protocol, runtime_checkable

import torch

METADATA_KEY = "dapo"
"""The ONNX metadata key (and OpenVINO ``rt_info`` entry under ``framework``) holding the export's metadata.

Its value is a JSON object: ``model`` (``Dapo``, ``MultiAds``), ``defect_types`` (type channel ``k`` is the
``k``-th), ``backbone``, ``image_size`` and ``type_outputs``.
"""


def reexport_hint(model: str = "Dapo", defect_types: str = "[scratch, dent]") -> str:
    """The command that exports a learned model for another vocabulary."""
    return (
        f'anomalib export --model {model} --model.weights <learned.ckpt> --model.defect_types "{defect_types}" '
        "--export_type <torch|onnx|openvino>"
    )


@runtime_checkable
class ExportedModel(Protocol):
    """What a ``torch`` export of the plugin offers (the pickled anomalib model, as ``TypedExport`` defines it)."""

    def export_metadata(self) -> dict[str, Any]:
        """The metadata an export records (see :data:`METADATA_KEY`)."""
        ...

    def unchecked_forward(self, batch: torch.Tensor) -> Any:
        """Pre-process, model and post-process images already resized as the Engine does."""
        ...
