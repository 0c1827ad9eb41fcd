import math

import pytest
import torch

from anomalib_dapo.models.dapo.loss import DapoLoss, global_loss, local_loss


def test_global_loss_is_cross_entropy_of_the_two_similarities():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    labels = torch.tensor([0, 1])
    expected = (
        -(torch.log(torch.tensor(math.e**2 / (math.e**2 + 1))) + torch.log(torch.tensor(math.e / (1 + math.e)))) / 2
    )
    assert global_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_local_loss_averages_focal_and_both_dice_terms_over_stages():
    torch.manual_seed(0)
    target = torch.randint(0, 3, (2, 4, 4))
    stages = [torch.rand(2, 3, 4, 4).softmax(dim=1) for _ in range(2)]
    normal = (target == 0).float()
    expected = 0.0
    for probs in stages:
        p_true = probs.gather(1, target.unsqueeze(1)).squeeze(1)
        focal = (-((1 - p_true) ** 2) * p_true.log()).mean()

        def dice(p, y):
            p, y = p.flatten(1), y.flatten(1)
            return (1 - (2 * (p * y).sum(1) + 1) / (p.sum(1) + y.sum(1) + 1)).mean()

        expected += focal + dice(probs[:, 0], normal) + dice(1 - probs[:, 0], 1 - normal)
    expected /= 2
    assert local_loss(stages, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_total_loss_weights_local_by_lambda():
    torch.manual_seed(1)
    logits, labels = torch.randn(2, 2), torch.tensor([0, 1])
    stages = [torch.rand(2, 3, 4, 4).softmax(dim=1)]
    target = torch.randint(0, 3, (2, 4, 4))
    total = DapoLoss(lambda_local=4.0)(logits, labels, stages, target)
    assert total.item() == pytest.approx(
        (global_loss(logits, labels) + 4.0 * local_loss(stages, target)).item(), rel=1e-6
    )
