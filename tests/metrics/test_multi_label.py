"""Image-level multi-label defect-type metrics (eq. 11) against scikit-learn and hand-computed values (to 1e-6)."""

import math

import numpy as np
import pytest
import torch
from anomalib.metrics import Evaluator
from sklearn.metrics import f1_score, precision_score, recall_score

from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.metrics import MultiLabelF1, MultiLabelPrecision, MultiLabelRecall

TOL = 1e-6
SKLEARN = {"MultiLabelPrecision": precision_score, "MultiLabelRecall": recall_score, "MultiLabelF1": f1_score}


def make_batch(pred_type_probs: torch.Tensor, gt_type_mask: torch.Tensor) -> TypedImageBatch:
    b, h, w = gt_type_mask.shape
    return TypedImageBatch(image=torch.zeros(b, 3, h, w), gt_type_mask=gt_type_mask, pred_type_probs=pred_type_probs)


def random_batch(seed: int, num_types: int = 5, b: int = 16) -> TypedImageBatch:
    """Masks use types 0..num_types-1 only, so the last type is absent; a third of the images are normal."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.randint(0, num_types, (b, 4, 4), generator=g) * (torch.rand(b, 4, 4, generator=g) < 0.15)
    gt *= torch.rand(b, 1, 1, generator=g) < 2 / 3
    return make_batch(torch.rand(b, num_types, generator=g), gt)


def updated(batches: list[TypedImageBatch], num_labels: int) -> list:
    metrics = [MultiLabelPrecision(num_labels=num_labels), MultiLabelRecall(num_labels=num_labels)]
    metrics.append(MultiLabelF1(num_labels=num_labels))
    for metric in metrics:
        for batch in batches:
            metric.update(batch)
    return metrics


def compute_all(batches: list[TypedImageBatch], num_labels: int) -> list:
    """Update and compute, which also sets ``per_class_scores``."""
    metrics = updated(batches, num_labels)
    for metric in metrics:
        metric.compute()
    return metrics


def test_hand_made() -> None:
    # Image 1 has type 1, image 2 is normal, image 3 has types 1 and 2; type 3 never occurs.
    masks = torch.tensor([[[0, 1], [0, 0]], [[0, 0], [0, 0]], [[1, 2], [0, 2]]])
    # Predicted: {1, 2}, {2} (0.5 is not above the threshold), {2}.
    probs = torch.tensor([[0.9, 0.6, 0.2], [0.5, 0.7, 0.1], [0.3, 0.8, 0.1]])
    precision, recall, f1 = compute_all([make_batch(probs, masks)], 3)
    # Type 1: tp=1 fn=1; type 2: tp=1 fp=2.
    torch.testing.assert_close(precision.per_class_scores, torch.tensor([1, 1 / 3, math.nan]), equal_nan=True)
    torch.testing.assert_close(recall.per_class_scores, torch.tensor([1 / 2, 1, math.nan]), equal_nan=True)
    torch.testing.assert_close(f1.per_class_scores, torch.tensor([2 / 3, 1 / 2, math.nan]), equal_nan=True)
    for metric, expected in zip((precision, recall, f1), (2 / 3, 3 / 4, 7 / 12), strict=True):
        assert metric.compute().item() == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_over_present_types(seed: int) -> None:
    batch = random_batch(seed)
    target = np.stack([[(mask == k).any() for k in range(1, 6)] for mask in batch.gt_type_mask.numpy()])
    pred = batch.pred_type_probs.numpy() > 0.5
    present = np.flatnonzero(target.any(0))
    assert 0 < len(present) < 5
    for metric in compute_all([batch], 5):
        expected = SKLEARN[metric.name](target, pred, labels=present, average="macro", zero_division=0)
        assert metric.compute().item() == pytest.approx(expected, abs=TOL)


def test_batches_and_merged_states_equal_one_update() -> None:
    first, second = random_batch(3), random_batch(4)
    whole = make_batch(
        torch.cat([first.pred_type_probs, second.pred_type_probs]), torch.cat([first.gt_type_mask, second.gt_type_mask])
    )
    one, streamed = compute_all([whole], 5), compute_all([first, second], 5)
    merged, other = updated([first], 5), updated([second], 5)
    for metric, rank_two in zip(merged, other, strict=True):
        metric.merge_state(rank_two)
    for a, b, c in zip(one, streamed, merged, strict=True):
        torch.testing.assert_close(b.compute(), a.compute())
        torch.testing.assert_close(c.compute(), a.compute())


def test_evaluator_and_shape_checks() -> None:
    evaluator = Evaluator(test_metrics=[MultiLabelF1(num_labels=5, prefix="image_")])
    evaluator.on_test_batch_end(None, None, None, random_batch(5), 0)
    (metric,) = evaluator.test_metrics
    assert metric.name == "image_MultiLabelF1"
    assert 0 <= metric.compute().item() <= 1
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        MultiLabelF1(num_labels=4).update(random_batch(5))
    with pytest.raises(ValueError, match=r"\[0, 5\]"):
        MultiLabelF1(num_labels=5).update(make_batch(torch.rand(1, 5), torch.full((1, 2, 2), 6)))
