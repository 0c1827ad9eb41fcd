"""Pixel multi-type metrics against scikit-learn, hand-computed values and anomalib's Evaluator.

AUROC and AP come from a fine histogram; each metric bounds its own distance to the exact value
(``error_bounds``). The tests check that scikit-learn's exact value lies within that bound, and that the bound
is below the 0.005 the metrics promise, on uniform probabilities and on skewed ones: all ≤ 0.21, all ≥ 0.95,
spread over twenty decades. Evenly spaced thresholds (200, the previous implementation) were off by up to 0.3
on the skewed inputs.
"""

import math

import numpy as np
import pytest
import torch
from anomalib.metrics import Evaluator
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, roc_auc_score
from torchmetrics.classification import MulticlassAUROC

from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.metrics import (
    TypeAUROC,
    TypeAveragePrecision,
    TypeConfusionMatrix,
    TypeF1Score,
    mean_over_objects,
    multi_type,
    per_type_scores,
    row_normalised,
)
from anomalib_dapo.metrics.multi_type import NUM_BINS, TOLERANCE, score_bins, state_counts

EXACT_TOL = 1e-5
SKEWS = {
    "uniform": lambda probs: probs,
    "all_below_0.21": lambda probs: 0.21 * probs**3,
    "all_above_0.95": lambda probs: 1 - 0.05 * (1 - probs) ** 3,
    "log_spaced": lambda probs: torch.pow(10.0, -20 * (1 - probs)),
}
"""Maps of probabilities in [0, 1] to skewed ones; each keeps the order, so it is the binning that is tested."""


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


def updated(batches: list[TypedImageBatch], num_classes: int) -> list:
    metrics = [TypeAUROC(num_classes=num_classes), TypeAveragePrecision(num_classes=num_classes)]
    metrics.append(TypeF1Score(num_classes=num_classes))
    for metric in metrics:
        for batch in batches:
            metric.update(batch)
    return metrics


def compute_all(batches: list[TypedImageBatch], num_classes: int) -> list:
    """Update and compute, which also sets ``per_class_scores``."""
    metrics = updated(batches, num_classes)
    for metric in metrics:
        metric.compute()
    return metrics


def test_hand_made() -> None:
    # Pixels a, b (normal), c (type 1), d (type 2); argmax gives 0, 1, 1, 0.
    probs = torch.tensor([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.3, 0.6, 0.1], [0.5, 0.1, 0.4]])
    batch = make_batch(probs.T.reshape(1, 3, 2, 2), torch.tensor([[[0, 0], [1, 2]]]))
    auroc, ap, f1 = compute_all([batch], 3)
    # Normal: 3 of 4 (positive, negative) pairs ranked right; types 1 and 2 are ranked first.
    torch.testing.assert_close(auroc.per_class_scores, torch.tensor([3 / 4, 1, 1]))
    # Normal ranks a+, d-, b+, c-: AP = (1 + 2/3) / 2.
    torch.testing.assert_close(ap.per_class_scores, torch.tensor([5 / 6, 1, 1]))
    # Normal tp=1 fp=1 fn=1; type 1 tp=1 fp=1; type 2 missed.
    torch.testing.assert_close(f1.per_class_scores, torch.tensor([1 / 2, 2 / 3, 0]))
    for metric, expected in zip((auroc, ap, f1), (11 / 12, 17 / 18, 7 / 18), strict=True):
        assert metric.compute().item() == pytest.approx(expected, abs=EXACT_TOL)
    # Distinct scores in distinct bins: nothing to bound.
    assert auroc.error_bounds.tolist() == [0, 0, 0]


@pytest.mark.parametrize("skew", SKEWS)
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_sklearn_within_the_bound_whatever_the_range(seed: int, skew: str) -> None:
    raw = random_batch(seed, gt_classes=[0, 1, 2, 3], size=48)
    batch = make_batch(SKEWS[skew](raw.pred_type_map), raw.gt_type_mask)
    y, scores, pred = flat(batch)
    auroc, ap, f1 = compute_all([batch], 4)
    exact_auroc = [roc_auc_score(y == c, scores[:, c]) for c in range(4)]
    exact_ap = [average_precision_score(y == c, scores[:, c]) for c in range(4)]
    for metric, exact in ((auroc, exact_auroc), (ap, exact_ap)):
        error = np.abs(metric.per_class_scores.double().numpy() - exact)
        bound = metric.error_bounds.double().numpy()
        assert (error <= bound + 1e-6).all(), (error, bound)
        assert bound.max() < TOLERANCE
        assert metric.compute().item() == pytest.approx(np.mean(exact), abs=TOLERANCE)
    assert f1.compute().item() == pytest.approx(f1_score(y, pred, average="macro"), abs=EXACT_TOL)


def test_the_previous_even_thresholds_fail_on_concentrated_probabilities() -> None:
    # What the fine grid replaces: torchmetrics' binned AUROC on 200 even thresholds, on probabilities <= 0.21.
    raw = random_batch(0, gt_classes=[0, 1, 2, 3], size=48)
    batch = make_batch(SKEWS["all_below_0.21"](raw.pred_type_map), raw.gt_type_mask)
    y, scores, _ = flat(batch)
    exact = np.mean([roc_auc_score(y == c, scores[:, c]) for c in range(4)])
    binned = MulticlassAUROC(num_classes=4, thresholds=200, average="macro")
    binned.update(batch.pred_type_map, batch.gt_type_mask)
    assert exact - binned.compute().item() > TOLERANCE
    (auroc, *_) = compute_all([batch], 4)
    assert auroc.compute().item() == pytest.approx(exact, abs=TOLERANCE)


def test_exact_ties_at_zero_and_one_are_exact() -> None:
    # Saturated probabilities (exactly 0 or 1) for positives and negatives alike: true ties, as for sklearn.
    g = torch.Generator().manual_seed(3)
    gt = torch.randint(0, 2, (2, 16, 16), generator=g)
    first = torch.rand(2, 16, 16, generator=g)
    first = torch.where(first < 0.3, 0.0, torch.where(first > 0.6, 1.0, first))
    batch = make_batch(torch.stack([1 - first, first], dim=1), gt)
    y, scores, _ = flat(batch)
    auroc, ap, _ = compute_all([batch], 2)
    for c in range(2):
        assert auroc.per_class_scores[c].item() == pytest.approx(roc_auc_score(y == c, scores[:, c]), abs=1e-4)
        assert ap.per_class_scores[c].item() == pytest.approx(average_precision_score(y == c, scores[:, c]), abs=1e-3)
    assert auroc.error_bounds.max().item() < 1e-3


def test_probabilities_too_concentrated_for_the_grid_warn_and_stay_within_the_bound() -> None:
    # Every probability in [0.2, 0.2002]: about one bin; the bound says how far off the value may be.
    raw = random_batch(4, gt_classes=[0, 1], num_classes=2, size=32)
    batch = make_batch(0.2 + 0.0002 * raw.pred_type_map, raw.gt_type_mask)
    y, scores, _ = flat(batch)
    metric = TypeAUROC(num_classes=2)
    metric.update(batch)
    with pytest.warns(UserWarning, match="error_bounds"):
        metric.compute()
    error = abs(metric.per_class_scores[1].item() - roc_auc_score(y == 1, scores[:, 1]))
    assert error <= metric.error_bounds[1].item() + 1e-6
    assert metric.error_bounds[1].item() > TOLERANCE


def test_score_bins_are_monotone_and_resolve_both_tails() -> None:
    probs = torch.cat([torch.rand(100_000), torch.pow(10.0, -40 * torch.rand(10_000)), 1 - torch.rand(10_000) ** 8])
    special = torch.tensor([0.0, 1e-45, 2.0**-64, 0.5, 0.5 + 2**-24, 1 - 2**-24, 1.0])
    ordered = torch.cat([probs, special]).sort().values
    bins = score_bins(ordered)
    assert (bins.diff() >= 0).all()
    assert bins.min().item() == 0 and bins.max().item() == NUM_BINS - 1
    assert (score_bins(torch.tensor([0.0, 1.0])) == torch.tensor([0, NUM_BINS - 1])).all()
    inner = bins[(ordered >= 2.0**-136) & (ordered < 1)]
    assert (inner > 0).all() and (inner < NUM_BINS - 1).all()  # 0 and 1 alone in their bins
    assert score_bins(torch.tensor([1e-45, 1e-42])).tolist() == [0, 0]  # subnormals below 2^-136 count as 0
    # Neighbours 0.1 % apart get different bins, near 0 and near 1 alike.
    for p in (1e-30, 1e-12, 1e-3, 0.2, 0.5 - 1e-3, 0.5 + 1e-3, 0.8, 1 - 1e-3, 1 - 2e-4):
        near = torch.tensor([p, p + 1.5e-3 * min(p, 1 - p)])
        assert score_bins(near).unique().numel() == 2, p


@pytest.mark.parametrize("bad", [math.nan, 1.5, -0.2])
def test_values_that_are_not_probabilities_are_refused(bad: float) -> None:
    batch = random_batch(11, [0, 1])
    batch.pred_type_map[0, 0, 0, 0] = bad
    with pytest.raises(ValueError, match="probabilities"):
        TypeAUROC(num_classes=4).update(batch)


def test_absent_classes_are_left_out_of_the_macro() -> None:
    batch = random_batch(2, gt_classes=[0, 2], num_classes=5)
    y, scores, pred = flat(batch)
    assert set(np.unique(pred)) - {0, 2}, "predictions should also hit absent states"
    auroc, ap, f1 = compute_all([batch], 5)
    present = [0, 2]
    for metric in (auroc, ap, f1):
        assert torch.isnan(metric.per_class_scores[[1, 3, 4]]).all()
    expected_auroc = np.mean([roc_auc_score(y == c, scores[:, c]) for c in present])
    expected_ap = np.mean([average_precision_score(y == c, scores[:, c]) for c in present])
    assert auroc.compute().item() == pytest.approx(expected_auroc, abs=TOLERANCE)
    assert ap.compute().item() == pytest.approx(expected_ap, abs=TOLERANCE)
    expected_f1 = f1_score(y, pred, labels=present, average="macro", zero_division=0)
    assert f1.compute().item() == pytest.approx(expected_f1, abs=EXACT_TOL)


def test_auroc_is_nan_when_only_one_state_is_present() -> None:
    auroc, ap, _ = compute_all([random_batch(3, gt_classes=[0])], 4)
    assert math.isnan(auroc.compute().item())
    assert ap.compute().item() == pytest.approx(1.0)


def test_batches_and_merged_states_equal_one_update() -> None:
    first, second = random_batch(5, [0, 1, 2]), random_batch(6, [0, 1, 3])
    whole = make_batch(
        torch.cat([first.pred_type_map, second.pred_type_map]), torch.cat([first.gt_type_mask, second.gt_type_mask])
    )
    one = compute_all([whole], 4)
    streamed = compute_all([first, second], 4)
    # merge_state applies the states' DDP reductions, as a sync across two ranks would.
    merged, other = updated([first], 4), updated([second], 4)
    for metric, rank_two in zip(merged, other, strict=True):
        metric.merge_state(rank_two)
    for a, b, c in zip(one, streamed, merged, strict=True):
        torch.testing.assert_close(b.compute(), a.compute())
        torch.testing.assert_close(c.compute(), a.compute())


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [0, 3, 1, 2]])
def test_confusion_matrix_over_defect_pixels_equals_sklearn(order: list[int]) -> None:
    # State 2 is absent from the ground truth; ``order`` renumbers the states as a reordered vocabulary would.
    batch = random_batch(12, gt_classes=[0, 1, 3])
    renumber = torch.tensor(order)
    batch = make_batch(batch.pred_type_map[:, renumber.argsort()], renumber[batch.gt_type_mask])
    y, _, pred = flat(batch)
    metric, rank_two = TypeConfusionMatrix(num_classes=4), TypeConfusionMatrix(num_classes=4)
    metric.update(make_batch(batch.pred_type_map[:1], batch.gt_type_mask[:1]))
    rank_two.update(make_batch(batch.pred_type_map[1:], batch.gt_type_mask[1:]))
    metric.merge_state(rank_two)  # the sum reduction of a DDP sync
    counts = metric.compute()
    defect = y > 0
    expected = confusion_matrix(y[defect], pred[defect], labels=range(4))
    assert (counts.numpy() == expected).all()
    assert counts[0].sum() == 0 and counts[order[2]].sum() == 0  # normal rows and the absent type's are empty
    assert counts.sum() == defect.sum()
    normalised = row_normalised(counts)
    assert torch.isnan(normalised[order[2]]).all()
    present = [order[1], order[3]]
    torch.testing.assert_close(normalised[present].sum(-1), torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        metric.update(make_batch(batch.pred_type_map, batch.gt_type_mask + 1))


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
    auroc, ap, f1 = compute_all([random_batch(10, [0, 2], num_classes=3)], 3)
    table = per_type_scores([auroc, ap, f1], ["normal", "scratch", "hole"])
    assert table["hole"]["TypeF1Score"] == pytest.approx(f1.per_class_scores[2].item())
    assert math.isnan(table["scratch"]["TypeAUROC"])
    with pytest.raises(ValueError, match="type names"):
        per_type_scores([auroc], ["normal", "scratch"])

    means = mean_over_objects({"candle": {"auroc": 0.9, "f1": 0.2}, "pcb1": {"auroc": 0.7, "f1": math.nan}})
    assert means == pytest.approx({"auroc": 0.8, "f1": 0.2})


@pytest.mark.parametrize("block", [5 * 4, 1 << 18])
def test_state_counts_in_blocks_equal_numpy_counts(monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    # Blocks of 5 pixels do not divide the 28 x 28 image: the last block of each image is short.
    monkeypatch.setattr(multi_type, "_BLOCK", block)
    batch = random_batch(21, [0, 1, 3], size=28, b=2)
    total, positive = state_counts(batch.pred_type_map, batch.gt_type_mask)
    bins = score_bins(batch.pred_type_map).numpy()
    truth = batch.gt_type_mask.numpy()
    for state in range(4):
        np.testing.assert_array_equal(total[state].numpy(), np.bincount(bins[:, state].ravel(), minlength=NUM_BINS))
        true_bins = bins[:, state][truth == state]
        np.testing.assert_array_equal(positive[state].numpy(), np.bincount(true_bins, minlength=NUM_BINS))


def test_the_second_curve_metric_reuses_the_counts_only_of_the_same_unmodified_map_and_mask() -> None:
    batch = random_batch(13, [0, 1, 2, 3])
    auroc, ap = TypeAUROC(num_classes=4), TypeAveragePrecision(num_classes=4)
    auroc.update(batch)
    ap.update(batch)  # the same map and mask: the same counts
    assert torch.equal(ap.histogram, auroc.histogram)
    seen = [(batch.pred_type_map.clone(), batch.gt_type_mask.clone())]
    # In place: the same tensors with new values, first the map, then the mask.
    for modify in (
        lambda: batch.pred_type_map.copy_(batch.pred_type_map.flip(-1)),
        lambda: batch.gt_type_mask.fill_(2),
    ):
        modify()
        ap.update(batch)
        seen.append((batch.pred_type_map.clone(), batch.gt_type_mask.clone()))
    expected = torch.zeros_like(ap.histogram)
    for probs, mask in seen:  # counted directly, without the cache
        total, positive = state_counts(probs, mask)
        expected[:, 0] += total - positive
        expected[:, 1] += positive
    assert torch.equal(ap.histogram, expected)
