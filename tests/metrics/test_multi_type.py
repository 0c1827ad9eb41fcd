"""Pixel multi-type metrics against scikit-learn, hand-computed values and anomalib's Evaluator.

Tolerances: exact mode (``thresholds=None``) matches scikit-learn to 1e-5; the default binned mode (200 thresholds)
is within 1e-2 (seen: AUROC ≤ 3e-4, AP ≤ 2e-3 off on these inputs), and exact on inputs whose distinct scores fall
in distinct bins, like the hand-made case.
"""

import math

import numpy as np
import pytest
import torch
from anomalib.metrics import Evaluator
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from sklearn.preprocessing import label_binarize
from torchmetrics.classification import MulticlassPrecisionRecallCurve

from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.metrics import TypeAUROC, TypeAveragePrecision, TypeF1Score, mean_over_objects, per_type_scores
from anomalib_dapo.metrics.multi_type import _binned_confmat

BINNED_TOL = 1e-2
EXACT_TOL = 1e-5


def make_batch(pred_type_map: torch.Tensor, gt_type_mask: torch.Tensor) -> TypedImageBatch:
    b, _, h, w = pred_type_map.shape
    return TypedImageBatch(
        image=torch.zeros(b, 3, h, w),
        gt_type_mask=gt_type_mask,
        pred_type_map=pred_type_map,
        pred_type_mask=pred_type_map.argmax(1),
    )


def random_batch(seed: int, gt_classes: list[int], num_classes: int = 4, b: int = 3, size: int = 24) -> TypedImageBatch:
    """Blocky ground truth drawn from ``gt_classes``; probabilities that favour the true state, over all states."""
    g = torch.Generator().manual_seed(seed)
    choice = torch.randint(0, len(gt_classes), (b, size // 4, size // 4), generator=g)
    gt = torch.tensor(gt_classes)[choice].repeat_interleave(4, 1).repeat_interleave(4, 2)
    logits = 1.5 * torch.randn(b, num_classes, size, size, generator=g)
    logits += 2.0 * torch.nn.functional.one_hot(gt, num_classes).permute(0, 3, 1, 2)
    return make_batch(logits.softmax(1), gt)


def flat(batch: TypedImageBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    num_classes = batch.pred_type_map.shape[1]
    scores = batch.pred_type_map.movedim(1, -1).reshape(-1, num_classes).double().numpy()
    return batch.gt_type_mask.flatten().numpy(), scores, batch.pred_type_mask.flatten().numpy()


def updated(batches: list[TypedImageBatch], num_classes: int, thresholds: int | None) -> list:
    metrics = [
        TypeAUROC(num_classes=num_classes, thresholds=thresholds),
        TypeAveragePrecision(num_classes=num_classes, thresholds=thresholds),
        TypeF1Score(num_classes=num_classes),
    ]
    for metric in metrics:
        for batch in batches:
            metric.update(batch)
    return metrics


def compute_all(batches: list[TypedImageBatch], num_classes: int, thresholds: int | None) -> list:
    """Update and compute, which also sets ``per_class_scores``."""
    metrics = updated(batches, num_classes, thresholds)
    for metric in metrics:
        metric.compute()
    return metrics


@pytest.mark.parametrize("thresholds", [None, 200])
def test_hand_made(thresholds: int | None) -> None:
    # Pixels a, b (normal), c (type 1), d (type 2); argmax gives 0, 1, 1, 0.
    probs = torch.tensor([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.3, 0.6, 0.1], [0.5, 0.1, 0.4]])
    batch = make_batch(probs.T.reshape(1, 3, 2, 2), torch.tensor([[[0, 0], [1, 2]]]))
    auroc, ap, f1 = compute_all([batch], 3, thresholds)
    # Normal: 3 of 4 (positive, negative) pairs ranked right; types 1 and 2 are ranked first.
    torch.testing.assert_close(auroc.per_class_scores, torch.tensor([3 / 4, 1, 1]))
    # Normal ranks a+, d-, b+, c-: AP = (1 + 2/3) / 2.
    torch.testing.assert_close(ap.per_class_scores, torch.tensor([5 / 6, 1, 1]))
    # Normal tp=1 fp=1 fn=1; type 1 tp=1 fp=1; type 2 missed.
    torch.testing.assert_close(f1.per_class_scores, torch.tensor([1 / 2, 2 / 3, 0]))
    for metric, expected in zip((auroc, ap, f1), (11 / 12, 17 / 18, 7 / 18), strict=True):
        assert metric.compute().item() == pytest.approx(expected, abs=EXACT_TOL)


@pytest.mark.parametrize(("thresholds", "tol"), [(None, EXACT_TOL), (200, BINNED_TOL)])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn(seed: int, thresholds: int | None, tol: float) -> None:
    batch = random_batch(seed, gt_classes=[0, 1, 2, 3])
    y, scores, pred = flat(batch)
    auroc, ap, f1 = compute_all([batch], 4, thresholds)
    assert auroc.compute().item() == pytest.approx(roc_auc_score(y, scores, multi_class="ovr"), abs=tol)
    expected_ap = average_precision_score(label_binarize(y, classes=range(4)), scores, average="macro")
    assert ap.compute().item() == pytest.approx(expected_ap, abs=tol)
    assert f1.compute().item() == pytest.approx(f1_score(y, pred, average="macro"), abs=EXACT_TOL)


@pytest.mark.parametrize(("thresholds", "tol"), [(None, EXACT_TOL), (200, BINNED_TOL)])
def test_absent_classes_are_left_out_of_the_macro(thresholds: int | None, tol: float) -> None:
    batch = random_batch(2, gt_classes=[0, 2], num_classes=5)
    y, scores, pred = flat(batch)
    assert set(np.unique(pred)) - {0, 2}, "predictions should also hit absent states"
    auroc, ap, f1 = compute_all([batch], 5, thresholds)
    present = [0, 2]
    for metric in (auroc, ap, f1):
        assert torch.isnan(metric.per_class_scores[[1, 3, 4]]).all()
    expected_auroc = np.mean([roc_auc_score(y == c, scores[:, c]) for c in present])
    expected_ap = np.mean([average_precision_score(y == c, scores[:, c]) for c in present])
    assert auroc.compute().item() == pytest.approx(expected_auroc, abs=tol)
    assert ap.compute().item() == pytest.approx(expected_ap, abs=tol)
    expected_f1 = f1_score(y, pred, labels=present, average="macro", zero_division=0)
    assert f1.compute().item() == pytest.approx(expected_f1, abs=EXACT_TOL)


def test_auroc_is_nan_when_only_one_state_is_present() -> None:
    auroc, ap, _ = compute_all([random_batch(3, gt_classes=[0])], 4, thresholds=None)
    assert math.isnan(auroc.compute().item())
    assert ap.compute().item() == pytest.approx(1.0)


def test_binned_counts_equal_torchmetrics() -> None:
    batch = random_batch(4, gt_classes=[0, 1, 3], num_classes=5)
    reference = MulticlassPrecisionRecallCurve(num_classes=5, thresholds=200)
    reference.update(batch.pred_type_map, batch.gt_type_mask)
    scores = batch.pred_type_map.movedim(1, -1).reshape(-1, 5)
    assert torch.equal(_binned_confmat(scores, batch.gt_type_mask.flatten(), reference.thresholds), reference.confmat)


@pytest.mark.parametrize("thresholds", [None, 200])
def test_batches_and_merged_states_equal_one_update(thresholds: int | None) -> None:
    first, second = random_batch(5, [0, 1, 2]), random_batch(6, [0, 1, 3])
    whole = make_batch(
        torch.cat([first.pred_type_map, second.pred_type_map]), torch.cat([first.gt_type_mask, second.gt_type_mask])
    )
    one = compute_all([whole], 4, thresholds)
    streamed = compute_all([first, second], 4, thresholds)
    # merge_state applies the states' DDP reductions, as a sync across two ranks would.
    merged, other = updated([first], 4, thresholds), updated([second], 4, thresholds)
    for metric, rank_two in zip(merged, other, strict=True):
        metric.merge_state(rank_two)
    for a, b, c in zip(one, streamed, merged, strict=True):
        torch.testing.assert_close(b.compute(), a.compute())
        torch.testing.assert_close(c.compute(), a.compute())


def test_evaluator_with_typed_batches() -> None:
    metrics = [
        TypeAUROC(num_classes=4, prefix="pixel_"),
        TypeAveragePrecision(num_classes=4, prefix="pixel_"),
        TypeF1Score(num_classes=4, prefix="pixel_"),
    ]
    evaluator = Evaluator(test_metrics=metrics)
    for batch_idx, seed in enumerate((7, 8)):
        evaluator.on_test_batch_end(None, None, None, random_batch(seed, [0, 1, 2, 3]), batch_idx)
    assert [m.name for m in evaluator.test_metrics] == [
        "pixel_TypeAUROC",
        "pixel_TypeAveragePrecision",
        "pixel_TypeF1Score",
    ]
    assert all(0 < m.compute().item() <= 1 for m in evaluator.test_metrics)


def test_missing_field_and_wrong_channels() -> None:
    batch = random_batch(9, [0, 1])
    batch.pred_type_map = None
    with pytest.raises(ValueError, match="pred_type_map"):
        TypeAUROC(num_classes=4).update(batch)
    lenient = TypeAUROC(num_classes=4, strict=False)
    lenient.update(batch)
    assert lenient.compute() is None
    with pytest.raises(ValueError, match="4-channel"):
        TypeAUROC(num_classes=4).update(random_batch(9, [0, 1], num_classes=3))


def test_per_type_table_and_mean_over_objects() -> None:
    auroc, ap, f1 = compute_all([random_batch(10, [0, 2], num_classes=3)], 3, thresholds=None)
    table = per_type_scores([auroc, ap, f1], ["normal", "scratch", "hole"])
    assert table["hole"]["TypeF1Score"] == pytest.approx(f1.per_class_scores[2].item())
    assert math.isnan(table["scratch"]["TypeAUROC"])
    with pytest.raises(ValueError, match="type names"):
        per_type_scores([auroc], ["normal", "scratch"])

    means = mean_over_objects({"candle": {"auroc": 0.9, "f1": 0.2}, "pcb1": {"auroc": 0.7, "f1": math.nan}})
    assert means == pytest.approx({"auroc": 0.8, "f1": 0.2})
