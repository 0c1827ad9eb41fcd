"""anomalib's post-processor, extended so that exported graphs also return the defect-type outputs."""

from anomalib.data import InferenceBatch
from anomalib.post_processing import PostProcessor

from anomalib_dapo.data.dataclasses import TypedInferenceBatch


class TypedPostProcessor(PostProcessor):
    """Normalises and thresholds score and anomaly map like anomalib, and passes the type outputs through.

    The type outputs are probabilities and an argmax already, so they need no calibration.
    """

    def forward(self, predictions: TypedInferenceBatch) -> TypedInferenceBatch:  # type: ignore[override]
        """Anomalib's post-processing of the binary fields; the type fields unchanged."""
        binary = super().forward(InferenceBatch(*predictions[: len(InferenceBatch._fields)]))
        return TypedInferenceBatch(
            *binary,
            pred_type_map=predictions.pred_type_map,
            pred_type_mask=predictions.pred_type_mask,
            pred_type_probs=predictions.pred_type_probs,
        )
