"""anomalib's inferencers for exported Dapo models, returning the defect-type outputs and checking the vocabulary.

anomalib's :class:`~anomalib.deploy.TorchInferencer` and :class:`~anomalib.deploy.OpenVINOInferencer` put the
model's outputs into ``ImageBatch`` / ``NumpyImageBatch``, which have no defect-type fields and refuse them.
These subclasses keep anomalib's loading and pre-processing and return typed batches instead; they also expose
the exported vocabulary (``defect_types``) and refuse a requested vocabulary that differs from it.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from anomalib.data.utils import read_image
from anomalib.deploy import OpenVINOInferencer, TorchInferencer
from PIL.Image import Image as PILImage
from torchvision.transforms.v2.functional import to_dtype, to_image

from anomalib_dapo import knowledge
from anomalib_dapo.data.dataclasses import NumpyTypedImageBatch, TypedImageBatch
from anomalib_dapo.deploy.export import METADATA_KEY, reexport_hint


class VocabularyMismatchError(ValueError):
    """An exported Dapo was asked for other defect types than those it was exported with."""


class NotADapoExportError(ValueError):
    """The file given to a Dapo inferencer is not an exported Dapo model."""


def check_vocabulary(exported: Sequence[str], requested: Sequence[str] | None, source: str) -> None:
    """Refuse ``requested`` unless it is ``exported``, in the same order (type channel ``k`` is its ``k``-th name).

    Raises:
        VocabularyMismatchError: The vocabularies differ; the message gives the command that re-exports.

    """
    if requested is None:
        return
    requested = knowledge.validate_defect_list(requested)
    if requested == tuple(exported):
        return
    msg = (
        f"{source} was exported for the defect types [{', '.join(exported)}] (in this order: type channel k is "
        f"the k-th, 0 is normal), not [{', '.join(requested)}]. An exported Dapo holds the text embeddings of its "
        f"vocabulary only; re-export it for the one you need: {reexport_hint('[' + ', '.join(requested) + ']')}"
    )
    raise VocabularyMismatchError(msg)


class DapoTorchInferencer(TorchInferencer):
    """:class:`~anomalib.deploy.TorchInferencer` for ``anomalib export --export_type torch`` files of Dapo.

    The ``.pt`` file pickles the Dapo module, so this package must be importable where it is loaded (and, as
    for every anomalib torch export, ``TRUST_REMOTE_CODE=1`` set). The module holds no text encoder.

    Args:
        path: The exported ``model.pt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``xpu``.
        defect_types: The vocabulary the caller expects; refused unless the export's. ``None``: no check.

    Raises:
        NotADapoExportError: The file holds another anomalib model.
        VocabularyMismatchError: ``defect_types`` differs from the exported vocabulary.

    """

    def __init__(self, path: str | Path, device: str = "auto", defect_types: Sequence[str] | None = None) -> None:
        super().__init__(path, device)
        vocabulary = getattr(getattr(self.model, "model", None), "vocabulary", None)
        if not vocabulary:
            msg = f"{path} is not an exported Dapo (no vocabulary): use anomalib's TorchInferencer for it."
            raise NotADapoExportError(msg)
        self.defect_types: tuple[str, ...] = tuple(vocabulary)
        check_vocabulary(self.defect_types, defect_types, str(path))

    @torch.no_grad()
    def predict(self, image: str | Path | np.ndarray | PILImage | torch.Tensor) -> TypedImageBatch:  # type: ignore[override]
        """Predict like anomalib's inferencer, with ``pred_type_map``, ``pred_type_mask`` and ``pred_type_probs``."""
        if isinstance(image, str | Path):
            image = read_image(image, as_tensor=True)
        elif isinstance(image, np.ndarray | PILImage):
            image = to_dtype(to_image(image), torch.float32, scale=True)
        image = self.pre_process(image)
        return TypedImageBatch(image=image, **self.model(image)._asdict())


def read_metadata(path: str | Path | tuple[bytes, bytes]) -> dict[str, Any]:
    """The metadata of an exported Dapo ONNX or OpenVINO model (see :func:`~anomalib_dapo.deploy.dapo_metadata`).

    Raises:
        NotADapoExportError: The model has no Dapo metadata.

    """
    import openvino as ov  # optional dependency, like anomalib's OpenVINOInferencer

    core = ov.Core()
    model = core.read_model(model=path[0], weights=path[1]) if isinstance(path, tuple) else core.read_model(str(path))
    key = ["framework", METADATA_KEY]
    if not model.has_rt_info(key):
        msg = f"{path if not isinstance(path, tuple) else 'The model'} is not an exported Dapo (no Dapo metadata)."
        raise NotADapoExportError(msg)
    return json.loads(model.get_rt_info(key).astype(str))


class DapoOpenVINOInferencer(OpenVINOInferencer):
    """:class:`~anomalib.deploy.OpenVINOInferencer` for Dapo's OpenVINO (``.xml``) or ONNX (``.onnx``) exports.

    Only OpenVINO and anomalib are needed to run it, no text side. On CPUs with bfloat16 support OpenVINO
    computes in bfloat16 by default; pass ``config={"INFERENCE_PRECISION_HINT": "f32"}`` for PyTorch's results.

    Args:
        path: The exported ``model.xml`` (or ``model.onnx``), or the xml and weights as bytes.
        device: OpenVINO device (``AUTO``, ``CPU``, ``GPU``, ``NPU``).
        config: OpenVINO compilation properties.
        defect_types: The vocabulary the caller expects; refused unless the export's. ``None``: no check.

    Raises:
        NotADapoExportError: The model is not a Dapo export.
        VocabularyMismatchError: ``defect_types`` differs from the exported vocabulary.

    """

    def __init__(
        self,
        path: str | Path | tuple[bytes, bytes],
        device: str | None = "AUTO",
        config: dict | None = None,
        defect_types: Sequence[str] | None = None,
    ) -> None:
        self.metadata = read_metadata(path)
        self.defect_types: tuple[str, ...] = tuple(self.metadata["defect_types"])
        check_vocabulary(self.defect_types, defect_types, "The model" if isinstance(path, tuple) else str(path))
        super().__init__(path, device, config)

    def predict(self, image: str | Path | np.ndarray | PILImage | torch.Tensor) -> NumpyTypedImageBatch:  # type: ignore[override]
        """Predict like anomalib's inferencer, with ``pred_type_map``, ``pred_type_mask`` and ``pred_type_probs``."""
        if isinstance(image, str | Path):
            image = read_image(image, as_tensor=False)
        elif isinstance(image, PILImage):
            image = np.array(image) / 255.0
        elif isinstance(image, torch.Tensor):
            image = image.cpu().numpy()
        image = self.pre_process(image)
        predictions = self.model({self.input_blob.any_name: image})
        return NumpyTypedImageBatch(image=image, **self.post_process(predictions))
