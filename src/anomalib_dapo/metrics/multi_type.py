"""Pixel-level multi-type segmentation metrics: macro AUROC, AP and F1 over the K + 1 states (DAPO §5.3).

The multi-type task (MultiADS §3.2) labels every pixel with one of K + 1 states, 0 = normal. DAPO and MultiADS
report pixel AUROC, AP and F1, each one-vs-rest per state and macro-averaged, per object, then the mean over
objects (DAPO appendix 11.7).

Absent-class rule: a state is scored only if the ground truth of the evaluated set holds at least one pixel of it
(AUROC also needs one pixel of another state, else it is undefined); the macro average runs over the scored states,
and is NaN if none is scored. This is consistent with the paper's per-object tables, whose macro runs over the
object's own states (e.g. F1 = 25.0 on MAD-Sim fits normal ≈ 1 and three defect types ≈ 0). torchmetrics would
instead score an absent class 0 (or NaN, depending on mode) and average it in. A state that is predicted but absent
from the ground truth still costs through the recall of the states those pixels really belong to.

AUROC and AP are computed from a histogram of the probabilities on a fine grid that is log-spaced towards both 0
and 1 (:func:`score_bins`): the state is bounded (a few MiB per state, whatever the number of images), and the
values agree with the exact, unbinned ones (scikit-learn's) within a bound that each metric computes from its own
histogram (``error_bounds``; typically below 1e-3, and a warning says so when it exceeds 0.005). Evenly spaced
thresholds would not do: with 200 of them, probabilities all below 0.21 fall into 42 bins, and the AUROC of a
held-out textile set came out 0.785 where the exact value is 0.869.

``num_classes`` (K + 1) is required at init rather than inferred from the first batch: under DDP every rank must
hold states of one shape even if it saw no batch. Every value is held in torchmetrics states with sum or cat
reductions, so the metrics are correct under DDP.
"""

import math
import weakref
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from anomalib.metrics import AnomalibMetric
from torchmetrics import Metric
from torchmetrics.classification import MulticlassConfusionMatrix, MulticlassF1Score
from torchmetrics.utilities import rank_zero_warn

MANTISSA_BITS = 10
"""Mantissa bits a bin keeps: bins are 2^-10 ≈ 0.1 % wide relative to min(p, 1 − p)."""
_SHIFT = 23 - MANTISSA_BITS
_HALF = (126 << 23) >> _SHIFT
"""Bin of p = 0.5 (whose float32 exponent field is 126)."""
NUM_BINS = 2 * _HALF - ((103 << 23) >> _SHIFT) + 2
"""Bins of the grid: in float32, 1 − p ≥ 2^-24 for every p < 1, so above 0.5 only 24 powers of two are binned,
then p = 1 has the last bin alone."""
_EXACT_BINS = (0, NUM_BINS - 1)
"""Bins treated as one value: exactly 1, and 0 with the subnormals below 2^-136 (1e-41), which count as 0."""
TOLERANCE = 0.005
"""A metric whose error bound exceeds this warns."""


def score_bins(probs: torch.Tensor) -> torch.Tensor:
    """Bin of each probability in [0, 1] on a grid log-spaced towards 0 and towards 1; monotone in ``probs``.

    The bit pattern of a non-negative float32, read as an integer, grows with the float; dropping all but
    :data:`MANTISSA_BITS` of the mantissa leaves bins of relative width 2^-10 in each power of two. The grid is
    applied to ``low = min(p, 1 − p)`` (``1 − p`` is exact in float32 for p ≥ 0.5) and mirrored at 0.5, so
    probabilities concentrated near 0, near 1, or anywhere between are all resolved to about 0.1 % of
    ``low``. Returns int32 bins in ``[0, NUM_BINS)``.
    """
    probs = probs.float()
    bins = torch.minimum(probs, 1 - probs).view(torch.int32) >> _SHIFT
    # Mirrored above 0.5; p = 1 (low = 0) lands beyond the bin of 1 − p = 2^-24 and is clamped to its own.
    return torch.where(probs <= 0.5, bins, 2 * _HALF - bins).clamp_(max=NUM_BINS - 1)


def curve_scores(histogram: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """AUROC and AP of each class from its score histogram, and a bound on their distance to the exact values.

    ``histogram`` ``(C, 2, NUM_BINS)`` counts the negatives (``[:, 0]``) and positives (``[:, 1]``) of each class
    per bin. Going down the bins, with ``TP_b``, ``FP_b`` the positives and negatives above bin ``b`` and ``p_b``,
    ``n_b`` those in it, ``P``, ``N`` the totals:

    * AUROC (Mann-Whitney, ties counted half) ``= Σ_b p_b (N − FP_b − n_b / 2) / (P N)``. Only pairs that share
      a bin may be ordered otherwise by the exact scores: ``|AUROC − exact| ≤ Σ_b p_b n_b / (2 P N)``.
    * AP (scikit-learn's step sum ``Σ ΔR · precision``) ``= Σ_b (p_b / P) (TP_b + p_b) / (TP_b + p_b + FP_b +
      n_b)``. At any exact threshold inside bin ``b`` the precision lies between ``(TP_b + 1) / (TP_b + 1 + FP_b
      + n_b)`` and ``(TP_b + p_b) / (TP_b + p_b + FP_b)``, so ``|AP − exact| ≤ Σ_b (p_b / P)`` times that range.

    Bins of a single value (exactly 0 or 1) hold true ties and add nothing to the bounds. Returns
    ``({"auroc", "ap"}: (C,) scores, {"auroc", "ap"}: (C,) bounds)``; NaN where a class lacks positives
    (or, for AUROC, negatives).
    """
    counts = histogram.flip(-1).double()  # highest scores first
    neg, pos = counts[:, 0], counts[:, 1]
    total_neg, total_pos = neg.sum(-1, keepdim=True), pos.sum(-1, keepdim=True)
    fp_above, tp_above = neg.cumsum(-1) - neg, pos.cumsum(-1) - pos
    inexact = torch.ones(NUM_BINS, dtype=torch.bool, device=counts.device)
    inexact[[NUM_BINS - 1 - b for b in _EXACT_BINS]] = False
    pairs = total_pos * total_neg
    auroc = (pos * (total_neg - fp_above - neg / 2)).sum(-1) / pairs.squeeze(-1)
    auroc_bound = (pos * neg * inexact).sum(-1) / (2 * pairs.squeeze(-1))
    weight = pos / total_pos
    # 0/0 where a bin holds no positive: such bins are weighted by 0 below.
    precision = (tp_above + pos) / (tp_above + pos + fp_above + neg)
    high = (tp_above + pos) / (tp_above + pos + fp_above)
    low = (tp_above + 1) / (tp_above + 1 + fp_above + neg)
    has_pos = pos > 0
    ap = torch.where(has_pos, weight * precision, 0).sum(-1)
    ap_bound = torch.where(has_pos & inexact, weight * (high - low), 0).sum(-1)
    undefined = total_pos.squeeze(-1) == 0
    auroc_undefined = undefined | (total_neg.squeeze(-1) == 0)
    scores = {"auroc": auroc.masked_fill(auroc_undefined, math.nan), "ap": ap.masked_fill(undefined, math.nan)}
    bounds = {
        "auroc": auroc_bound.masked_fill(auroc_undefined, math.nan),
        "ap": ap_bound.masked_fill(undefined, math.nan),
    }
    return scores, bounds


def _macro_over_present(
    scores: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, needs_negatives: bool
) -> torch.Tensor:
    """Per-class ``scores`` with NaN where the class is not scored (no positives, or no negatives if needed)."""
    scored = positives > 0
    if needs_negatives:
        scored &= negatives > 0
    return torch.where(scored, scores.float(), torch.nan)


def _check_type_mask(target: torch.Tensor, num_classes: int) -> None:
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        msg = f"Type mask values must lie in [0, {num_classes - 1}], got [{target.min()}, {target.max()}]."
        raise ValueError(msg)


class _MacroOverPresent:
    """Macro average over the classes present in the ground truth; keeps the per-class scores for tables.

    Mixed in before a torchmetrics stat-score class built with ``average=None``, whose ``compute`` gives one
    score per class.
    """

    per_class_scores: torch.Tensor | None = None
    tp: torch.Tensor
    fp: torch.Tensor
    tn: torch.Tensor
    fn: torch.Tensor

    def __init__(self, **kwargs: Any) -> None:
        # validate_args=False: torchmetrics' checks run torch.unique over every pixel of every batch; the range
        # check of ``update`` is what matters and costs two reductions.
        super().__init__(average=None, validate_args=False, **kwargs)  # type: ignore[call-arg]

    def compute(self) -> torch.Tensor:
        """Return the macro average over the scored classes; store all classes in ``per_class_scores``.

        ``per_class_scores`` holds one one-vs-rest score per class, NaN where the class is not scored. It is
        set by the latest ``compute`` (the Evaluator's epoch end or a direct call) and survives ``reset``.
        """
        scores = super().compute()  # type: ignore[misc]
        self.per_class_scores = _macro_over_present(scores, self.tp + self.fn, self.fp + self.tn, False)
        return self.per_class_scores.nanmean()


class _LastBins:
    """:func:`score_bins` of the last map binned, reused while it is the same, unmodified tensor.

    TypeAUROC and TypeAveragePrecision update on the same ``pred_type_map`` of each batch; binning it is most
    of their update, so the second one reuses the first's bins. The tensor is identified by a weak reference and
    its in-place version counter, so a new or modified map is binned anew (inference tensors, as in Lightning's
    test loop, have no counter: there the same tensor object is taken as the same map).
    """

    def __init__(self) -> None:
        self._source: weakref.ref[torch.Tensor] | None = None
        self._version: int | None = None
        self._bins = torch.empty(0, dtype=torch.int32)

    def __call__(self, probs: torch.Tensor, clamp: bool) -> torch.Tensor:
        version = None if probs.is_inference() else probs._version
        if self._source is None or self._source() is not probs or version != self._version:
            self._bins = score_bins(probs.clamp(0, 1) if clamp else probs)
            self._source, self._version = weakref.ref(probs), version
        return self._bins

    def clear(self) -> None:
        """Drop the bins held (as large as the last map), e.g. once the updates are over."""
        self._source, self._version, self._bins = None, None, torch.empty(0, dtype=torch.int32)


_last_bins = _LastBins()


class _PixelTypeCurve(Metric):
    """Score-based pixel metric over ``(B, K + 1, H, W)`` state maps and ``(B, H, W)`` type masks.

    Holds one histogram ``(K + 1, 2, NUM_BINS)`` of int64 counts (sum-reduced under DDP): 2.3 MiB per state,
    whatever the number of images. ``compute`` leaves ``per_class_scores`` and ``error_bounds`` (the bound of
    :func:`curve_scores` on each class's distance to the exact, unbinned value; NaN where not scored).

    Args:
        num_classes: Number of states, K defect types + normal.
        **kwargs: Passed to torchmetrics' ``Metric``.

    """

    default_fields: ClassVar[Sequence[str]] = ("pred_type_map", "gt_type_mask")
    is_differentiable: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    full_state_update: ClassVar[bool] = False
    _curve: ClassVar[str]
    _needs_negatives: ClassVar[bool] = False
    histogram: torch.Tensor
    per_class_scores: torch.Tensor | None = None
    error_bounds: torch.Tensor | None = None

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.add_state("histogram", torch.zeros(num_classes, 2, NUM_BINS, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of state probabilities ``preds`` ``(B, C, H, W)`` and type masks ``target`` ``(B, H, W)``."""
        if preds.ndim != 4 or preds.shape[1] != self.num_classes or target.shape != preds[:, 0].shape:
            msg = (
                f"{type(self).__name__} expects a ({self.num_classes}-channel) state map (B, C, H, W) and a type "
                f"mask (B, H, W), got {tuple(preds.shape)} and {tuple(target.shape)}."
            )
            raise ValueError(msg)
        if not preds.numel():
            return
        _check_type_mask(target, self.num_classes)
        low, high = torch.aminmax(preds)
        if not (low >= -1e-4 and high <= 1 + 1e-4):  # also catches NaN
            msg = (
                f"{type(self).__name__} scores probabilities ('pred_type_map' in [0, 1]), got values in "
                f"[{low.item():.4g}, {high.item():.4g}]."
            )
            raise ValueError(msg)
        bins = _last_bins(preds, clamp=bool(low < 0 or high > 1))
        offsets = torch.arange(self.num_classes, device=bins.device, dtype=torch.int32).view(1, -1, 1, 1) * NUM_BINS
        # Every pixel counts once per state; its true state's count is then moved from negatives to positives.
        total = torch.bincount((bins + offsets).flatten(), minlength=self.num_classes * NUM_BINS)
        target = target.int()  # int32 keys: torch.bincount is several times faster on them than on int64
        true_bins = bins.gather(1, target.unsqueeze(1).long()).squeeze(1)
        positive = torch.bincount((true_bins + target * NUM_BINS).flatten(), minlength=self.num_classes * NUM_BINS)
        shape = (self.num_classes, NUM_BINS)
        self.histogram[:, 0] += total.view(shape) - positive.view(shape)
        self.histogram[:, 1] += positive.view(shape)

    def compute(self) -> torch.Tensor:
        """Return the macro average over the scored states; store each state's score and error bound."""
        _last_bins.clear()
        scores, bounds = curve_scores(self.histogram)
        counts = self.histogram.sum(-1)
        positives, negatives = counts[:, 1], counts[:, 0]
        self.per_class_scores = _macro_over_present(scores[self._curve], positives, negatives, self._needs_negatives)
        self.error_bounds = _macro_over_present(bounds[self._curve], positives, negatives, self._needs_negatives)
        worst = self.error_bounds.nan_to_num(0).max().item() if self.num_classes else 0.0
        if worst > TOLERANCE:
            rank_zero_warn(
                f"{type(self).__name__}: the probabilities are so concentrated that its binned value may differ "
                f"from the exact one by up to {worst:.4f} for a state (see error_bounds).",
            )
        return self.per_class_scores.nanmean()


class TypeAUROC(AnomalibMetric, _PixelTypeCurve):  # type: ignore[misc]
    """Pixel AUROC macro-averaged over the K + 1 states present in the ground truth (DAPO §5.3).

    Each state's one-vs-rest AUROC (Mann-Whitney, ties counted half, as scikit-learn's ``roc_auc_score``) from
    the fine score histogram of :func:`curve_scores`; ``error_bounds`` bounds the distance to the exact value.

    Args:
        num_classes: Number of states, K defect types + normal.
        fields: Batch fields, defaults to ``("pred_type_map", "gt_type_mask")``.
        prefix: Prefix of the logged name.
        strict: Raise if a field is missing from a batch.

    Example:
        >>> metric = TypeAUROC(num_classes=4, prefix="pixel_")
        >>> metric.update(batch)  # a TypedImageBatch
        >>> metric.compute(), metric.per_class_scores, metric.error_bounds

    """

    _curve: ClassVar[str] = "auroc"
    _needs_negatives: ClassVar[bool] = True


class TypeAveragePrecision(AnomalibMetric, _PixelTypeCurve):  # type: ignore[misc]
    """Pixel average precision macro-averaged over the K + 1 states present in the ground truth (DAPO §5.3).

    Each state's one-vs-rest AP (scikit-learn's ``average_precision_score``: ``Σ ΔR · precision``) from the
    fine score histogram of :func:`curve_scores`; ``error_bounds`` bounds the distance to the exact value.

    Args: as :class:`TypeAUROC`.
    """

    _curve: ClassVar[str] = "ap"


class _TypeMasks:
    """Checks the state indices of ``(B, H, W)`` predicted and true type masks before a torchmetrics update."""

    num_classes: int

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add predicted type masks ``preds`` and true ones ``target``, both ``(B, H, W)`` of state indices."""
        _check_type_mask(target, self.num_classes)
        _check_type_mask(preds, self.num_classes)
        super().update(preds, target)  # type: ignore[misc]


class TypeF1Score(AnomalibMetric, _TypeMasks, _MacroOverPresent, MulticlassF1Score):  # type: ignore[misc]
    """Pixel F1 of the predicted type mask, macro-averaged over the states present in the ground truth (DAPO §5.3).

    Args:
        num_classes: Number of states, K defect types + normal.
        fields: Batch fields, defaults to ``("pred_type_mask", "gt_type_mask")``.
        prefix: Prefix of the logged name.
        strict: Raise if a field is missing from a batch.

    """

    default_fields: ClassVar[Sequence[str]] = ("pred_type_mask", "gt_type_mask")


class _DefectPixels:
    """torchmetrics' confusion matrix over the pixels whose true state is a defect (``ignore_index=0``)."""

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(num_classes=num_classes, ignore_index=0, validate_args=False, **kwargs)  # type: ignore[call-arg]


class TypeConfusionMatrix(AnomalibMetric, _TypeMasks, _DefectPixels, MulticlassConfusionMatrix):  # type: ignore[misc]
    """Counts of true vs predicted state over the ground-truth defect pixels (normal pixels are left out).

    ``compute`` gives ``(K + 1, K + 1)`` counts, true state in rows, predicted in columns; row 0 (normal) is
    zero, since only defect pixels are counted: a defect pixel predicted normal lands in column 0. Sum-reduced
    under DDP (torchmetrics' confusion matrix). Not a scalar, so not for the Evaluator, which logs every metric
    it holds.

    Args:
        num_classes: Number of states, K defect types + normal.
        fields: Batch fields, defaults to ``("pred_type_mask", "gt_type_mask")``.
        prefix: Prefix of the name.
        strict: Raise if a field is missing from a batch.

    """

    default_fields: ClassVar[Sequence[str]] = ("pred_type_mask", "gt_type_mask")


def row_normalised(confusion: torch.Tensor) -> torch.Tensor:
    """Each row of a confusion matrix divided by its sum (the recall of each true state); NaN for empty rows."""
    confusion = confusion.double()
    return confusion / confusion.sum(-1, keepdim=True)


def per_type_scores(metrics: Sequence[Metric], type_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Return ``{type name: {metric name: one-vs-rest score}}`` from computed metrics of this package.

    Reads ``per_class_scores`` left by each metric's latest ``compute``; NaN marks a type absent from the ground
    truth. Give the K + 1 state names (normal first) for pixel metrics, the K defect names for image-level ones.
    """
    table: dict[str, dict[str, float]] = {name: {} for name in type_names}
    for metric in metrics:
        scores = getattr(metric, "per_class_scores", None)
        if scores is None:
            msg = f"{type(metric).__name__} has no per-class scores: call compute() first."
            raise ValueError(msg)
        if len(scores) != len(type_names):
            msg = f"{len(type_names)} type names for {len(scores)} classes of {type(metric).__name__}."
            raise ValueError(msg)
        name = getattr(metric, "name", type(metric).__name__)
        for type_name, score in zip(type_names, scores.tolist(), strict=True):
            table[type_name][name] = score
    return table


def mean_over_objects(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Return the mean of each metric over objects (categories), as in the papers' "Mean" rows.

    Args:
        results: ``{object: {metric name: value}}``, e.g. each object's macro scores.

    Returns:
        ``{metric name: mean}`` over the objects that report a finite value for the metric (an object whose test
        set holds no defect has an undefined AUROC), NaN if none does.

    """
    values: dict[str, list[float]] = {}
    for scores in results.values():
        for name, value in scores.items():
            values.setdefault(name, [])
            if not math.isnan(value):
                values[name].append(float(value))
    return {name: math.fsum(vals) / len(vals) if vals else math.nan for name, vals in values.items()}
