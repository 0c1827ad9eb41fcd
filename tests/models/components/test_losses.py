import math

import pytest
import torch

from anomalib_dapo.models.components.losses import dice_loss, focal_loss


def test_focal_loss_by_hand():
    # Two pixels, three states. Pixel 1 is class 0 with p=0.5, pixel 2 class 2 with p=0.25.
    probs = (
        torch.tensor([[0.5, 0.25], [0.25, 0.25], [0.25, 0.5]]).T.reshape(1, 2, 3).permute(0, 2, 1).reshape(1, 3, 1, 2)
    )
    target = torch.tensor([[[0, 2]]])
    p = torch.tensor([0.5, 0.5])
    expected = (-((1 - p) ** 2) * p.log()).mean()
    assert focal_loss(probs, target, gamma=2.0).item() == pytest.approx(expected.item())
    # gamma = 0 is plain cross-entropy on probabilities
    assert focal_loss(probs, target, gamma=0.0).item() == pytest.approx(-math.log(0.5))


def test_dice_loss_by_hand():
    pred = torch.tensor([[[1.0, 0.5], [0.0, 0.0]]])
    target = torch.tensor([[[1, 1], [0, 0]]])
    # overlap 1.5, |P| 1.5, |Y| 2, smooth 1 -> 1 - (3 + 1) / (3.5 + 1)
    assert dice_loss(pred, target).item() == pytest.approx(1 - 4 / 4.5)
    assert dice_loss(target.float(), target).item() == pytest.approx(0.0)
