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


def _macro_mean(per_class: torch.Tensor) -> torch.Tensor:
    """Mean of the scored (non-NaN) classes, summed in sorted order: the vocabulary's order cannot change it.

    Summing in class order would round float32 differently for a reordered vocabulary (about 1e-9).
    """
    return per_class.sort().values.nanmean()


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
        return _macro_mean(self.per_class_scores)


_BLOCK = 1 << 18
"""Probabilities binned at a time on CPU: :func:`score_bins`' few elementwise passes then stay in the cache,
which makes a 518² batch's counts about three times as fast as binning the whole map at once."""


def state_counts(probs: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-state histograms of a ``(B, C, H, W)`` probability map: all its pixels, and those of the true state.

    Every pixel's probability of state ``c`` gets the key ``c · NUM_BINS + score_bins(p)``; ``total`` counts
    the keys of all states, ``positive`` only the key of each pixel's true state (``target`` ``(B, H, W)``).
    Returns two ``(C, NUM_BINS)`` int64 counts; their difference counts the negatives.
    """
    batch, num_classes = probs.shape[:2]
    flat = probs.reshape(batch, num_classes, -1)
    keys = torch.empty(flat.shape, dtype=torch.int32, device=probs.device)
    offsets = torch.arange(num_classes, dtype=torch.int32, device=probs.device).view(-1, 1) * NUM_BINS
    # On an accelerator, blocks would only add kernel launches: one per image.
    step = max(1, _BLOCK // num_classes) if probs.device.type == "cpu" else flat.shape[-1]
    for image in range(batch):
        for start in range(0, flat.shape[-1], step):
            block = slice(start, start + step)
            torch.add(score_bins(flat[image, :, block]), offsets, out=keys[image, :, block])
    true_keys = keys.gather(1, target.reshape(batch, 1, -1).long())
    size = num_classes * NUM_BINS
    total = torch.bincount(keys.flatten(), minlength=size).view(num_classes, NUM_BINS)
    positive = torch.bincount(true_keys.flatten(), minlength=size).view(num_classes, NUM_BINS)
    return total, positive


class _LastCounts:
    """:func:`state_counts` of the last map and mask counted, reused while they are the same, unmodified tensors.

    TypeAUROC and TypeAveragePrecision update on the same ``pred_type_map`` and ``gt_type_mask`` of each batch
    and need the same histogram; counting is all of their update, so the second one reuses the first's counts.
    The tensors are identified by weak references and their in-place version counters, so a new or modified map
    or mask is counted anew (inference tensors, as in Lightning's test loop, have no counter: there the same
    tensor object is taken as the same values).
    """

    def __init__(self) -> None:
        self.clear()

    def __call__(self, probs: torch.Tensor, target: torch.Tensor, clamp: bool) -> tuple[torch.Tensor, torch.Tensor]:
        tensors = (probs, target)
        versions = tuple(None if t.is_inference() else t._version for t in tensors)
        same = len(self._sources) == len(tensors) and all(s() is t for s, t in zip(self._sources, tensors, strict=True))
        if not same or versions != self._versions:
            self._counts = state_counts(probs.clamp(0, 1) if clamp else probs, target)
            self._sources, self._versions = tuple(weakref.ref(t) for t in tensors), versions
        return self._counts

    def clear(self) -> None:
        """Drop the counts held, e.g. once the updates are over."""
        self._sources: tuple[weakref.ref[torch.Tensor], ...] = ()
        self._versions: tuple[int | None, ...] = ()
        self._counts = (torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.long))


_last_counts = _LastCounts()


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
        total, positive = _last_counts(preds, target, clamp=bool(low < 0 or high > 1))
        # Every pixel counts once per state; its true state's count is moved from negatives to positives.
        self.histogram[:, 0] += total - positive
        self.histogram[:, 1] += positive

    def compute(self) -> torch.Tensor:
        """Return the macro average over the scored states; store each state's score and error bound."""
        _last_counts.clear()
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
        return _macro_mean(self.per_class_scores)


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
