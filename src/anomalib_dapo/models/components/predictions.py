"""The typed inference outputs of the stage maps and the global similarities (MultiADS eq. 3–5, DAPO eq. 11).

Type map ``Σ_i UP(S_i) / M`` (MultiADS eq. 3), anomaly map ``1 − UP(S)[0]`` (eq. 4), few-shot
``M_final = (M_x + M_ref) / 2`` (§4.2.3, eq. 5), the image score (:class:`ImageScore`) and the multi-label type
probabilities ``σ((cos(z^x, z^{D_k}) − cos(z^x, z^N)) / τ)`` of DAPO eq. 11.
"""

from collections.abc import Sequence

import torch

from anomalib_dapo.data.dataclasses import TypedInferenceBatch
from anomalib_dapo.models.components.options import OptionEnum
from anomalib_dapo.models.components.similarity import upsample


class ImageScore(OptionEnum):
    """How the image anomaly score is formed. The DAPO paper defines none; Dapo's default is ``global``."""

    FUSION = "fusion"
    """Mean of the global abnormal probability and the anomaly map's maximum (MultiADS §4.2.2; MultiAds' default)."""
    GLOBAL = "global"
    """The global abnormal probability alone, as the DAPO authors' released code scores images (Dapo's default)."""
    MAP_MAX = "map_max"
    """The anomaly map's maximum alone (a common choice of CLIP-based methods, for comparison)."""


def typed_predictions(
    stage_probs: torch.Tensor,
    global_score: torch.Tensor,
    defect_logits: torch.Tensor,
    size: Sequence[int],
    image_score: ImageScore,
    reference_maps: torch.Tensor | None = None,
) -> TypedInferenceBatch:
    """Inference outputs from the stage maps and the global similarities (Dapo and MultiAds alike).

    Args:
        stage_probs: ``S_i``, ``(B, M, K + 1, h, w)``.
        global_score: Abnormal probability of the global image embedding, ``(B,)``.
        defect_logits: ``(cos(z^x, z^{D_k}) − cos(z^x, z^N)) / τ``, ``(B, K)``.
        size: Input image size ``(H, W)``.
        image_score: How the image score is formed.
        reference_maps: ``1 − S'_i``, ``(B, M, h, w)``, when few-shot. Defaults to ``None`` (zero-shot).

    """
    # UP is linear, so the mean of upsampled stage maps is the upsampled mean: upsample once.
    type_map = upsample(stage_probs.mean(dim=1), size)
    anomaly_map = 1 - type_map[:, 0]
    if reference_maps is not None:
        anomaly_map = (anomaly_map + upsample(reference_maps.mean(dim=1, keepdim=True), size)[:, 0]) / 2
    map_score = anomaly_map.flatten(1).amax(dim=1)
    scores = {
        ImageScore.FUSION: (global_score + map_score) / 2,
        ImageScore.GLOBAL: global_score,
        ImageScore.MAP_MAX: map_score,
    }
    return TypedInferenceBatch(
        pred_score=scores[image_score],
        anomaly_map=anomaly_map.unsqueeze(1),
        pred_type_map=type_map,
        # Same indices as argmax (first maximum on ties), several times faster on CPU across channels.
        pred_type_mask=type_map.max(dim=1).indices,
        pred_type_probs=defect_logits.sigmoid(),
    )
