"""DAPO's training objective (paper §4.3, eq. 7–9)."""

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from anomalib_dapo.models.components.losses import dice_loss, focal_loss


def global_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 7: cross-entropy of the image's normal/abnormal similarities ``s = [cos(z^x, z^N), cos(z^x, z^A)] / τ``."""
    return F.cross_entropy(logits, labels.long())


def local_loss(stage_probs: list[torch.Tensor], type_mask: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Eq. 8: ``1/M Σ_i Focal(UP(S_i), Y) + Dice(UP(S_i)[0], Y[0]) + Dice(1 − UP(S_i)[0], 1 − Y[0])``.

    Args:
        stage_probs: ``M`` upsampled state-probability maps ``UP(S_i)``, each ``(B, K + 1, H, W)``.
        type_mask: ``Y`` as an integer mask, shape ``(B, H, W)``; ``Y[0]`` is its normal indicator.
        gamma: Focal loss focusing parameter. Defaults to ``2``.

    """
    normal = type_mask == 0
    total = sum(
        focal_loss(probs, type_mask, gamma) + dice_loss(probs[:, 0], normal) + dice_loss(1 - probs[:, 0], ~normal)
        for probs in stage_probs
    )
    return total / len(stage_probs)


class DapoLoss(nn.Module):
    """Eq. 9: ``L_total = L_global + λ · L_local``.

    Args:
        lambda_local: ``λ``, weight of the local loss. Defaults to ``4``.
        focal_gamma: ``γ`` of the focal loss. Defaults to ``2``.

    """

    def __init__(self, lambda_local: float = 4.0, focal_gamma: float = 2.0) -> None:
        super().__init__()
        self.lambda_local = lambda_local
        self.focal_gamma = focal_gamma

    def forward(
        self,
        global_logits: torch.Tensor,
        labels: torch.Tensor,
        stage_probs: list[torch.Tensor],
        type_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Total loss of a batch."""
        return global_loss(global_logits, labels) + self.lambda_local * local_loss(
            stage_probs,
            type_mask,
            self.focal_gamma,
        )
