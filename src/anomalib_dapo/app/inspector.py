"""What the inspection page shows, computed from learned weights or from an export (no web framework here).

Learned weights (``anomalib train``'s ``.ckpt``) score any defect names typed in; an export (``anomalib
export``'s ``.pt``, ``.onnx`` or ``.xml``) scores the vocabulary it was exported with, and other names are
refused with the command that re-exports them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from anomalib.utils.serialization import anomalib_safe_globals
from anomalib.visualization.image.functional import visualize_anomaly_map
from PIL import Image
from torchvision.transforms.v2.functional import to_dtype, to_image

from anomalib_dapo import knowledge
from anomalib_dapo.deploy.inferencer import DapoOpenVINOInferencer, DapoTorchInferencer, check_vocabulary
from anomalib_dapo.models.components.checkpoint import safe_globals
from anomalib_dapo.models.dapo.lightning_model import Dapo
from anomalib_dapo.visualization import LegendEntry, render_type_overlay, type_legend_entries

EXPORT_SUFFIXES = (".pt", ".onnx", ".xml")


@dataclass(frozen=True)
class Inspection:
    """The page's results for one image: calibrated score and label, and the pictures."""

    score: float
    anomalous: bool
    anomaly_map: Image.Image
    type_overlay: Image.Image
    legend: list[LegendEntry]
    """Every defect type of the vocabulary, with its colour, present in the image or not."""
    type_shares: dict[str, float]
    """Fraction of the image's pixels given to each defect type."""


class WeightsPredictor:
    """A Dapo built from learned weights, in its training run's configuration; any vocabulary.

    Args:
        weights: The ``.ckpt`` written by ``anomalib train --model Dapo``.
        pretrained: CLIP weights (tag or file) instead of those named in the checkpoint, e.g. a local file offline.

    """

    def __init__(self, weights: str | Path, pretrained: str | None = None) -> None:
        with anomalib_safe_globals(extra=safe_globals()):
            hyper_parameters = torch.load(weights, map_location="cpu", weights_only=True)["hyper_parameters"]
        options = {**hyper_parameters, "weights": str(weights), "visualizer": False}
        if pretrained is not None:
            options["pretrained"] = pretrained
        self.model = Dapo(**options).eval()
        self.defect_types: tuple[str, ...] = ()

    def use(self, defect_types: Sequence[str]) -> None:
        """Score ``defect_types`` from now on."""
        self.defect_types = tuple(defect_types)
        self.model.use_vocabulary(self.defect_types)

    @torch.no_grad()
    def predict(self, image: torch.Tensor) -> object:
        """Pre-process, score and post-process (calibration of the weights' training run) one image."""
        return self.model(image.unsqueeze(0))


@dataclass
class Inspector:
    """Scores images with a predictor and renders what the page shows."""

    predictor: WeightsPredictor | DapoTorchInferencer | DapoOpenVINOInferencer
    source: str

    @property
    def accepts_any_names(self) -> bool:
        """Whether typed defect names choose the vocabulary (weights) or must match the export's."""
        return isinstance(self.predictor, WeightsPredictor)

    def set_defect_types(self, names: Sequence[str]) -> tuple[str, ...]:
        """Use ``names`` (checked against the knowledge base); with an export, check they are the exported ones.

        Raises:
            EmptyVocabularyError, UnknownDefectError: The names are empty or not defect names.
            VocabularyMismatchError: An export was given other names than it was exported with.

        """
        if isinstance(self.predictor, WeightsPredictor):
            self.predictor.use(knowledge.validate_defect_list(names))
        elif names:
            model = self.predictor.metadata.get("model", "Dapo")
            check_vocabulary(self.predictor.defect_types, names, self.source, model)
        return self.predictor.defect_types

    def inspect(self, image: Image.Image) -> Inspection:
        """Score ``image`` and render its anomaly map and its defect-type overlay with the legend."""
        rgb = image.convert("RGB")
        batch = self.predictor.predict(to_dtype(to_image(rgb), torch.float32, scale=True))
        anomaly_map = _first(batch.anomaly_map)
        type_mask = _first(batch.pred_type_mask).astype(np.int64)
        names = self.predictor.defect_types
        size = (type_mask.shape[1], type_mask.shape[0])
        shown = rgb.resize(size, Image.Resampling.BICUBIC)
        shares = {name: float((type_mask == index).mean()) for index, name in enumerate(names, start=1)}
        return Inspection(
            score=float(_first(batch.pred_score)),
            anomalous=bool(_first(batch.pred_label)),
            anomaly_map=visualize_anomaly_map(torch.as_tensor(anomaly_map), colormap=True),
            type_overlay=render_type_overlay(shown, type_mask, names),
            legend=type_legend_entries(names),
            type_shares=shares,
        )


def _first(values: torch.Tensor | np.ndarray) -> np.ndarray:
    """The one image of a batch of one, as numpy (torch or OpenVINO outputs)."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    return array.reshape(array.shape[1:]) if array.ndim and array.shape[0] == 1 else array


def load_inspector(path: str | Path, pretrained: str | None = None, device: str = "cpu") -> Inspector:
    """An inspector for learned weights (``.ckpt``) or an export (``.pt``, ``.onnx``, ``.xml``).

    Torch exports are pickles: load only your own (anomalib asks for ``TRUST_REMOTE_CODE=1`` to read them).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is neither learned weights nor an export.

    """
    path = Path(path)
    if not path.is_file():
        msg = f"{path} not found: pass the .ckpt of 'anomalib train' or the model file of 'anomalib export'."
        raise FileNotFoundError(msg)
    if path.suffix == ".ckpt":
        return Inspector(WeightsPredictor(path, pretrained), str(path))
    if path.suffix == ".pt":
        return Inspector(DapoTorchInferencer(path, device=device), str(path))
    if path.suffix in EXPORT_SUFFIXES:
        return Inspector(DapoOpenVINOInferencer(path, device=device.upper()), str(path))
    msg = f"{path}: expected learned weights (.ckpt) or an export ({', '.join(EXPORT_SUFFIXES)})."
    raise ValueError(msg)
