"""Which defect types are confused with which: the per-type table and the confusion matrix of a test run.

A test run of the plugin's models writes, into a new ``type_results/v<N>`` folder of the run (anomalib's
versioned run folder, ``trainer.default_root_dir``), for the tested object:

* ``per_type.csv`` / ``per_type.png``: each state's one-vs-rest pixel AUROC, AP and F1 and its ground-truth
  pixel count (normal first; empty where the state is absent from the ground truth);
* ``confusion_counts.csv``, ``confusion_normalised.csv`` and ``confusion.png``: true defect type (rows) vs
  predicted state (columns, normal first) over the ground-truth defect pixels, as counts and divided by each
  row's sum (the share of a type's pixels given each state; empty for a type absent from the ground truth).

``dapo-report`` writes the same per object and overall (:func:`merge_type_results`).
"""

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from matplotlib.figure import Figure
from torchmetrics import Metric

from .multi_type import (
    TypeAUROC,
    TypeAveragePrecision,
    TypeConfusionMatrix,
    TypeF1Score,
    mean_over_objects,
    per_type_scores,
)

if TYPE_CHECKING:
    from anomalib.data import Batch

logger = logging.getLogger(__name__)

NORMAL = "normal"
"""Name of state 0 in the tables."""
COLUMNS = {TypeAUROC: "auroc", TypeAveragePrecision: "ap", TypeF1Score: "f1"}
"""Metric class -> column of the per-type table."""


def new_version_dir(output: Path | str) -> Path:
    """Create and return ``<output>/v<N>``, ``N`` one above any version there: nothing already there is touched."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    taken = [int(match.group(1)) for path in output.iterdir() if (match := re.fullmatch(r"v(\d+)", path.name))]
    number = max(taken, default=0) + 1
    while True:
        path = output / f"v{number}"
        try:
            path.mkdir()
        except FileExistsError:  # another run took this number meanwhile
            number += 1
        else:
            return path


@dataclass(frozen=True)
class TypeResults:
    """Per-type scores and the confusion matrix of one object, or of several merged.

    Attributes:
        per_type: One row per state (normal first): ``auroc``, ``ap``, ``f1`` (fractions, NaN where not
            scored) and ``pixels`` (ground-truth pixels of the state).
        confusion: Counts of ground-truth defect pixels, true defect type (rows) vs predicted state (columns,
            normal first).

    """

    per_type: pd.DataFrame
    confusion: pd.DataFrame

    @property
    def normalised(self) -> pd.DataFrame:
        """``confusion`` with each row divided by its sum; NaN for a type without ground-truth pixels."""
        totals = self.confusion.sum(axis=1)
        return self.confusion.div(totals.where(totals > 0), axis=0)

    def write(self, directory: Path, title: str) -> list[Path]:
        """Write the CSVs and pictures into ``directory`` (created); ``title`` heads the pictures."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = [directory / name for name in ("per_type.csv", "confusion_counts.csv", "confusion_normalised.csv")]
        self.per_type.to_csv(paths[0], index_label="state", na_rep="")
        self.confusion.to_csv(paths[1], index_label="true \\ predicted")
        self.normalised.to_csv(paths[2], index_label="true \\ predicted", na_rep="")
        paths += [_per_type_picture(self.per_type, title, directory), _confusion_picture(self, title, directory)]
        return paths


def type_results(metrics: Sequence[Metric], confusion: torch.Tensor, states: Sequence[str]) -> TypeResults:
    """The results of one object from its computed pixel type metrics and confusion counts.

    Args:
        metrics: Computed ``TypeAUROC``, ``TypeAveragePrecision`` and ``TypeF1Score`` (any of them).
        confusion: ``(K + 1, K + 1)`` counts of :class:`~anomalib_dapo.metrics.TypeConfusionMatrix`.
        states: The K + 1 state names, normal first.

    """
    named = [metric for metric in metrics if type(metric) in COLUMNS]
    columns = {metric.name: COLUMNS[type(metric)] for metric in named}
    per_type = pd.DataFrame.from_dict(per_type_scores(named, states), orient="index").rename(columns=columns)
    per_type = per_type.reindex(index=list(states), columns=list(COLUMNS.values()))
    # Ground-truth pixels of each state: the positives of a curve metric's histogram.
    curve = next((metric for metric in named if isinstance(metric, TypeAUROC | TypeAveragePrecision)), None)
    per_type["pixels"] = curve.histogram[:, 1].sum(-1).cpu().numpy() if curve is not None else np.nan
    counts = confusion.long().cpu().numpy()[1:]  # row 0 (normal) is empty: only defect pixels are counted
    return TypeResults(per_type=per_type, confusion=pd.DataFrame(counts, index=list(states[1:]), columns=list(states)))


def merge_type_results(results: Mapping[str, TypeResults]) -> TypeResults:
    """Overall results of several objects, matched by type name (vocabularies may differ in content and order).

    Confusion counts are summed; a state's score is the mean over the objects whose ground truth shows it (the
    papers' mean over objects), its pixel count the sum.
    """
    frames = [result.confusion for result in results.values()]
    rows = list(dict.fromkeys(name for frame in frames for name in frame.index))
    columns = list(dict.fromkeys(name for frame in frames for name in frame.columns))
    confusion = sum(frame.reindex(index=rows, columns=columns, fill_value=0) for frame in frames)
    states = list(dict.fromkeys(name for result in results.values() for name in result.per_type.index))
    metrics = list(COLUMNS.values())
    per_type = {}
    for state in states:
        rows_of = {obj: r.per_type.loc[state] for obj, r in results.items() if state in r.per_type.index}
        shown = {obj: {m: float(row[m]) for m in metrics} for obj, row in rows_of.items() if row["pixels"] > 0}
        mean = mean_over_objects(shown)
        pixels = sum(float(row["pixels"]) for row in rows_of.values())
        per_type[state] = {**{m: mean.get(m, np.nan) for m in metrics}, "pixels": pixels}
    frame = pd.DataFrame.from_dict(per_type, orient="index").reindex(columns=[*metrics, "pixels"])
    return TypeResults(per_type=frame, confusion=pd.DataFrame(confusion, index=rows, columns=columns))


def _per_type_picture(per_type: pd.DataFrame, title: str, directory: Path) -> Path:
    figure = Figure(figsize=(max(4.0, 0.9 * len(per_type) + 2), 3.6), layout="constrained")
    axes = figure.subplots()
    positions = np.arange(len(per_type))
    width = 0.8 / len(COLUMNS)
    for offset, column in enumerate(COLUMNS.values()):
        axes.bar(positions + (offset - 1) * width, per_type[column].fillna(0), width, label=column.upper())
    axes.set_xticks(positions, per_type.index, rotation=30, ha="right")
    for position, absent in zip(positions, per_type["auroc"].isna() & per_type["f1"].isna(), strict=True):
        if absent:
            axes.text(position, 0.02, "absent", ha="center", fontsize="small", rotation=90)
    axes.set_ylim(0, 1.15)
    axes.set_yticks(np.linspace(0, 1, 6))
    axes.set_ylabel("one-vs-rest score")
    axes.set_title(f"{title}: per-type pixel scores")
    axes.legend(loc="upper center", ncols=len(COLUMNS), fontsize="small")
    path = directory / "per_type.png"
    figure.savefig(path, dpi=100)
    return path


def _confusion_picture(results: TypeResults, title: str, directory: Path) -> Path:
    counts, shares = results.confusion, results.normalised
    rows, columns = len(counts.index), len(counts.columns)
    figure = Figure(figsize=(2 * (0.7 * columns + 2), 0.6 * rows + 2), layout="constrained")
    for axes, frame, name in zip(figure.subplots(1, 2), (counts, shares), ("pixels", "share of the row"), strict=True):
        values = frame.to_numpy(dtype=float)
        image = axes.imshow(values, cmap="Blues", vmin=0, vmax=1 if frame is shares else None, aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            label = "" if np.isnan(value) else (f"{value:.2f}" if frame is shares else f"{int(value)}")
            axes.text(j, i, label, ha="center", va="center", fontsize="x-small")
        axes.set_xticks(range(columns), counts.columns, rotation=30, ha="right")
        axes.set_yticks(range(rows), counts.index)
        axes.set_xlabel("predicted state")
        axes.set_ylabel("true defect type")
        axes.set_title(name)
        figure.colorbar(image, ax=axes)
    figure.suptitle(f"{title}: types of the ground-truth defect pixels")
    path = directory / "confusion.png"
    figure.savefig(path, dpi=100)
    return path


class TypeResultsWriter(Callback):
    """Counts the type confusion of a test run and writes :class:`TypeResults` into the run's folder.

    The confusion matrix (:class:`~anomalib_dapo.metrics.TypeConfusionMatrix`, sum-reduced under DDP) is
    updated with each test batch that has ``gt_type_mask``; at the end of the test epoch it is computed on every
    process and rank 0 writes the results with the per-type scores of the type metrics into a new
    ``<default_root_dir>/type_results/v<N>`` (nothing earlier is overwritten). ``results`` keeps them.

    The model gives the K defect types of the test and their type metrics (which its evaluator updates) with
    :meth:`use_vocabulary` when it picks them.

    Args:
        write: Write the results into the run's folder; ``False`` only keeps them in ``results`` (for a caller
            that writes them elsewhere, as ``dapo-report`` does). Defaults to ``True``.

    """

    def __init__(self, write: bool = True) -> None:
        self.write = write
        self.states: tuple[str, ...] = (NORMAL,)
        self.metrics: tuple[Metric, ...] = ()
        self.confusion: TypeConfusionMatrix | None = None
        self.results: TypeResults | None = None
        self.written: Path | None = None

    def use_vocabulary(self, defect_types: Sequence[str], metrics: Sequence[Metric] = ()) -> None:
        """Score the states ``normal``, then ``defect_types``, in the model's order.

        Args:
            defect_types: The K defect types of the test.
            metrics: The type metrics of these states, whose per-type scores the results hold. Defaults to ``()``.

        """
        self.states = (NORMAL, *defect_types)
        self.metrics = tuple(metrics)

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start counting for the vocabulary of this test."""
        del trainer
        self.confusion = TypeConfusionMatrix(num_classes=len(self.states), strict=False).to(pl_module.device)
        self.results, self.written = None, None

    def on_test_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: "Batch",
        batch: "Batch",
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Count the batch's defect pixels (no-op without ``gt_type_mask``)."""
        del trainer, pl_module, batch, batch_idx, dataloader_idx
        if self.confusion is not None:
            self.confusion.update(outputs)

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Compute on every process; rank 0 writes the CSVs and pictures."""
        del pl_module
        if self.confusion is None or not self.confusion.update_called:  # the data has no type masks
            return
        confusion = self.confusion.compute()
        metrics = [metric for metric in self.metrics if type(metric) in COLUMNS]
        for metric in metrics:
            metric.compute()  # sets per_class_scores; torchmetrics caches it for the logger
        self.results = type_results(metrics, confusion, self.states)
        if self.write and trainer.is_global_zero:
            datamodule = getattr(trainer, "datamodule", None)
            title = str(getattr(datamodule, "category", None) or getattr(datamodule, "name", "test"))
            self.written = new_version_dir(Path(trainer.default_root_dir) / "type_results")
            self.results.write(self.written, title)
            logger.info("Per-type scores and type confusion matrix written to %s.", self.written)
