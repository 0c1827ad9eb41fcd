"""DAPO's training objective (paper §4.3, eq. 7–9)."""

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

_EPS = 1e-8


def focal_loss(probs: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Multi-class focal loss on probabilities: ``mean(-(1 - p_y)^γ log p_y)``.

    Args:
        probs: State probabilities, shape ``(B, K + 1, H, W)``.
        target: Integer type mask, shape ``(B, H, W)``.
        gamma: Focusing parameter (2).

    """
    p_true = probs.gather(1, target.unsqueeze(1)).squeeze(1).clamp_min(_EPS)
    return (-((1 - p_true) ** gamma) * p_true.log()).mean()


def dice_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft dice loss per image, averaged over the batch: ``1 - (2|P∩Y| + s) / (|P| + |Y| + s)``.

    Args:
        pred: Probabilities, shape ``(B, H, W)``.
        target: Binary target, shape ``(B, H, W)``.
        smooth: Additive smoothing that keeps empty masks finite.

    """
    pred, target = pred.flatten(1), target.flatten(1).to(pred.dtype)
    overlap = (pred * target).sum(dim=1)
    return (1 - (2 * overlap + smooth) / (pred.sum(dim=1) + target.sum(dim=1) + smooth)).mean()


def global_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 7: cross-entropy of the image's normal/abnormal similarities ``s = [cos(z^x, z^N), cos(z^x, z^A)] / τ``."""
    return F.cross_entropy(logits, labels.long())


def local_loss(stage_probs: list[torch.Tensor], type_mask: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Eq. 8: ``1/M Σ_i Focal(UP(S_i), Y) + Dice(UP(S_i)[0], Y[0]) + Dice(1 − UP(S_i)[0], 1 − Y[0])``.

    Args:
        stage_probs: ``M`` upsampled state-probability maps ``UP(S_i)``, each ``(B, K + 1, H, W)``.
        type_mask: ``Y`` as an integer mask, shape ``(B, H, W)``; ``Y[0]`` is its normal indicator.
        gamma: Focal loss focusing parameter.

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
        lambda_local: ``λ``, weight of the local loss (4).
        focal_gamma: ``γ`` of the focal loss (2).

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
