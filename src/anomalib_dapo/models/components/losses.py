"""The segmentation losses of the CLIP-prompt models: a multi-class focal loss and a soft dice loss.

DAPO eq. 8 and MultiADS eq. 2 combine them: ``Focal(UP(S_i), Y)`` over the ``K + 1`` states and
``Dice(P, Y) = 1 − (2|P∩Y| + s) / (|P| + |Y| + s)`` on the normal (or anomaly) map.
"""

import torch

_EPS = 1e-8


def focal_loss(probs: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Multi-class focal loss on probabilities: ``mean(-(1 - p_y)^γ log p_y)``.

    Args:
        probs: State probabilities, shape ``(B, K + 1, H, W)``.
        target: Integer type mask, shape ``(B, H, W)``.
        gamma: Focusing parameter ``γ``. Defaults to ``2``.

    """
    p_true = probs.gather(1, target.unsqueeze(1)).squeeze(1).clamp_min(_EPS)
    return (-((1 - p_true) ** gamma) * p_true.log()).mean()


def dice_loss(pred: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Soft dice loss per image, averaged over the batch: ``1 - (2|P∩Y| + s) / (|P| + |Y| + s)``.

    Args:
        pred: Probabilities, shape ``(B, H, W)``.
        target: Binary target, shape ``(B, H, W)``.
        smooth: Additive smoothing ``s`` that keeps empty masks finite. Defaults to ``1``.

    """
    pred, target = pred.flatten(1), target.flatten(1).to(pred.dtype)
    overlap = (pred * target).sum(dim=1)
    return (1 - (2 * overlap + smooth) / (pred.sum(dim=1) + target.sum(dim=1) + smooth)).mean()
