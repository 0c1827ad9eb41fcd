"""anomalib's inferencers for exported Dapo and MultiAds models, returning the defect-type outputs.

anomalib's :class:`~anomalib.deploy.TorchInferencer` and :class:`~anomalib.deploy.OpenVINOInferencer` put the
model's outputs into ``ImageBatch`` / ``NumpyImageBatch``, which have no defect-type fields and refuse them (an
export made with ``type_outputs=False`` suits them). These subclasses keep anomalib's loading, read and resize
images as ``Engine.predict`` does, and return typed batches; they also expose the exported vocabulary
(``defect_types``) and refuse a requested vocabulary that differs from it.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from anomalib.deploy import OpenVINOInferencer, TorchInferencer
from PIL.Image import Image as PILImage
from torchvision.transforms.v2.functional import to_dtype, to_image

from anomalib_dapo import knowledge
from anomalib_dapo.data.dataclasses import NumpyTypedImageBatch, TypedImageBatch
from anomalib_dapo.data.images import pil_to_rgb, read_rgb_image
from anomalib_dapo.exported import METADATA_KEY, ExportedModel, reexport_hint
from anomalib_dapo.model_input import check_images, clip_resize

ImageInput = str | Path | np.ndarray | PILImage | torch.Tensor
"""What ``predict`` takes: an image file, a PIL image, an ``(H, W[, C])`` or ``([B,] C, H, W)`` array or tensor."""


class VocabularyMismatchError(ValueError):
    """An exported Dapo was asked for other defect types than those it was exported with."""


class NotADapoExportError(ValueError):
    """The file given to a Dapo inferencer is not an exported Dapo model."""


def check_vocabulary(exported: Sequence[str], requested: Sequence[str] | None, source: str, model: str) -> None:
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
        f"the k-th, 0 is normal), not [{', '.join(requested)}]. An exported {model} holds the text embeddings of "
        f"its vocabulary only; re-export it for the one you need: "
        f"{reexport_hint(model, '[' + ', '.join(requested) + ']')}"
    )
    raise VocabularyMismatchError(msg)


def check_type_outputs(metadata: dict[str, Any], source: str, stock: str) -> None:
    """Refuse an export made with ``type_outputs=False``: it has no defect-type outputs to return."""
    if metadata.get("type_outputs", True):
        return
    model = metadata.get("model", "Dapo")
    msg = (
        f"{source} was exported with --model.type_outputs false: it returns anomalib's fields only. Run it with "
        f"anomalib's {stock}, or re-export without that option for the defect types: {reexport_hint(model)}"
    )
    raise NotADapoExportError(msg)


def engine_images(image: ImageInput, image_size: int) -> torch.Tensor:
    """``(B, 3, S, S)`` float images in [0, 1], read and resized as ``Engine.predict`` does before the model.

    Files and PIL images are read as the plugin's datasets read them (16-bit scaled, grayscale replicated, alpha
    dropped); arrays and tensors as anomalib's inferencers take them. The resize is the models' own
    pre-processing resize (antialiased, which exported graphs cannot do): the graph's resize then has nothing
    left to do, and the outputs are the Engine's for every image size.
    """
    if isinstance(image, str | Path):
        image = read_rgb_image(image)
    elif isinstance(image, PILImage):
        image = pil_to_rgb(image, "The image")
    elif isinstance(image, np.ndarray):  # (H, W[, C]) like TorchInferencer; ([B,] C, H, W) like OpenVINOInferencer
        channels_last = image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (1, 3, 4))
        image = to_dtype(to_image(image) if channels_last else torch.from_numpy(image), torch.float32, scale=True)
    if image.dim() == 3:
        image = image.unsqueeze(0)
    check_images(
        image.float(), "The inferencer", unit_range=True
    )  # before the resize, which may overshoot [0, 1] as the Engine's does
    return clip_resize((image_size, image_size))(image.float())


class DapoTorchInferencer(TorchInferencer):
    """:class:`~anomalib.deploy.TorchInferencer` for ``anomalib export --export_type torch`` files of Dapo or MultiAds.

    The ``.pt`` file pickles the model, so this package must be importable where it is loaded (and, as for every
    anomalib torch export, ``TRUST_REMOTE_CODE=1`` set). The module holds no text encoder.

    Args:
        path: The exported ``model.pt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``xpu``.
        defect_types: The vocabulary the caller expects; refused unless the export's. ``None``: no check.

    Raises:
        NotADapoExportError: The file holds another anomalib model, or one exported without type outputs.
        VocabularyMismatchError: ``defect_types`` differs from the exported vocabulary.

    """

    def __init__(self, path: str | Path, device: str = "auto", defect_types: Sequence[str] | None = None) -> None:
        super().__init__(path, device)
        if not isinstance(self.model, ExportedModel):
            msg = f"{path} holds a {type(self.model).__name__}, not an exported Dapo: use anomalib's TorchInferencer."
            raise NotADapoExportError(msg)
        self.metadata = self.model.export_metadata()
        check_type_outputs(self.metadata, str(path), "TorchInferencer")
        self.defect_types: tuple[str, ...] = tuple(self.metadata["defect_types"])
        check_vocabulary(self.defect_types, defect_types, str(path), self.metadata["model"])

    @torch.no_grad()
    def predict(self, image: ImageInput) -> TypedImageBatch:  # type: ignore[override]
        """Predict as ``Engine.predict`` does, with ``pred_type_map``, ``pred_type_mask`` and ``pred_type_probs``."""
        image = self.pre_process(engine_images(image, self.metadata["image_size"]))
        return TypedImageBatch(image=image, **self.model.unchecked_forward(image)._asdict())


def read_metadata(path: str | Path | tuple[bytes, bytes]) -> dict[str, Any]:
    """The metadata of an exported ONNX or OpenVINO model (see ``TypedExport.export_metadata``).

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
    """:class:`~anomalib.deploy.OpenVINOInferencer` for the OpenVINO (``.xml``) or ONNX (``.onnx``) exports.

    Only OpenVINO and anomalib are needed to run it, no text side. On CPUs with bfloat16 support OpenVINO
    computes in bfloat16 by default; pass ``config={"INFERENCE_PRECISION_HINT": "f32"}`` for PyTorch's results.

    Args:
        path: The exported ``model.xml`` (or ``model.onnx``), or the xml and weights as bytes.
        device: OpenVINO device (``AUTO``, ``CPU``, ``GPU``, ``NPU``).
        config: OpenVINO compilation properties.
        defect_types: The vocabulary the caller expects; refused unless the export's. ``None``: no check.

    Raises:
        NotADapoExportError: The model is not a Dapo or MultiAds export, or one exported without type outputs.
        VocabularyMismatchError: ``defect_types`` differs from the exported vocabulary.

    """

    def __init__(
        self,
        path: str | Path | tuple[bytes, bytes],
        device: str | None = "AUTO",
        config: dict | None = None,
        defect_types: Sequence[str] | None = None,
    ) -> None:
        source = "The model" if isinstance(path, tuple) else str(path)
        self.metadata = read_metadata(path)
        check_type_outputs(self.metadata, source, "OpenVINOInferencer")
        self.defect_types: tuple[str, ...] = tuple(self.metadata["defect_types"])
        check_vocabulary(self.defect_types, defect_types, source, self.metadata.get("model", "Dapo"))
        super().__init__(path, device, config)

    def predict(self, image: ImageInput) -> NumpyTypedImageBatch:  # type: ignore[override]
        """Predict as ``Engine.predict`` does, with ``pred_type_map``, ``pred_type_mask`` and ``pred_type_probs``."""
        image = engine_images(image, self.metadata["image_size"]).numpy()
        predictions = self.model({self.input_blob.any_name: image})
        return NumpyTypedImageBatch(image=image, **self.post_process(predictions))
