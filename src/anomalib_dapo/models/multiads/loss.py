"""MultiADS' training objective (MultiADS §4.1.3, eq. 2), from the shared focal and dice losses."""

import torch

from anomalib_dapo.models.components.losses import dice_loss, focal_loss


def multiads_loss(stage_probs: torch.Tensor, type_mask: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Eq. 2: ``Σ_i Focal(UP(S_i), M'_x) + Dice(1 − UP(S_i)[0], M_x)``.

    A multi-class focal loss over the ``K + 1`` states and a binary dice loss on the anomaly map, summed over
    the stages. The global score is not trained (§4.1.3).

    Args:
        stage_probs: Upsampled state probabilities ``UP(S_i)``, ``(B, M, K + 1, H, W)``.
        type_mask: ``M'_x``, the integer type mask, ``(B, H, W)``; ``M_x`` is where it is not 0.
        gamma: Focal loss focusing parameter. Defaults to ``2``.

    """
    anomalous = type_mask > 0
    return sum(
        focal_loss(probs, type_mask, gamma) + dice_loss(1 - probs[:, 0], anomalous)
        for probs in stage_probs.unbind(dim=1)
    )
