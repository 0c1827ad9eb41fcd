"""The paper's zero-shot protocol over every category of a target dataset, reported beside the published numbers.

One learned checkpoint, one command::

    dapo-report --weights learned.ckpt --target mpdd --root ./datasets/MPDD --output reports/mpdd
    python -m anomalib_dapo.report ...            # the same
    dapo-report ... --model.image_score fusion    # any Dapo argument, as with ``anomalib test``

For each category, anomalib's ``Engine.test`` runs Dapo zero-shot on the category's typed datamodule, exactly as
``anomalib test --model Dapo --model.weights learned.ckpt`` would (anomalib calibrates on the target's validation
data first). The binary metrics (image AUROC, AP, F1-max; pixel AUROC, AUPRO), the multi-type ones (pixel AUROC,
AP, F1 macro over states, and each state's one-vs-rest score) and the image-level multi-label ones are collected
per object and averaged over objects as the paper's "Mean" rows are. Every table is written as markdown
(``report.md``) and CSV, ours beside the paper's value (:mod:`anomalib_dapo.report.published`), into a new
version folder ``<output>/v<N>``: an earlier report is never overwritten. Every table names the image score
the values were obtained with (``--model.image_score``; the paper defines none, Dapo's default is the authors'
code's ``global``). ``types/<object>/`` and ``types/overall/`` hold each object's and the overall per-type
table and type confusion matrix (:mod:`anomalib_dapo.metrics.type_results`).
"""

import copy
import logging
import math
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd
from anomalib.data import AnomalibDataModule
from anomalib.engine import Engine
from jsonargparse import ActionConfigFile, ArgumentParser
from lightning import seed_everything

from anomalib_dapo import knowledge
from anomalib_dapo.data.registry import datamodule_class, require_category
from anomalib_dapo.metrics import mean_over_objects, per_type_scores
from anomalib_dapo.metrics.type_results import TypeResults, merge_type_results, new_version_dir
from anomalib_dapo.models import Dapo
from anomalib_dapo.report.published import MEAN, METRICS, NORMAL, TABLES, Published, TableSpec, published

logger = logging.getLogger(__name__)


LOGGED: Mapping[str, str] = {
    "image_AUROC": "image_auroc",
    "image_AUPR": "image_ap",
    "image_F1Max": "image_f1",
    "pixel_AUROC": "pixel_auroc",
    "pixel_AUPRO": "pixel_aupro",
    "pixel_TypeAUROC": "type_auroc",
    "pixel_TypeAveragePrecision": "type_ap",
    "pixel_TypeF1Score": "type_f1",
    "image_MultiLabelPrecision": "label_precision",
    "image_MultiLabelRecall": "label_recall",
    "image_MultiLabelF1": "label_f1",
}
"""Metric name Dapo's evaluator logs -> metric key of the report tables."""

_PER_STATE = ("pixel_TypeAUROC", "pixel_TypeAveragePrecision", "pixel_TypeF1Score")


@dataclass(frozen=True)
class CategoryResult:
    """What one category's test gave, as fractions in [0, 1] (NaN where undefined).

    Attributes:
        metrics: Metric key -> value.
        per_state: State (``normal``, then the category's defect types) -> metric key -> one-vs-rest value.
        types: The per-type table and type confusion matrix, ``None`` if the data had no type masks.

    """

    metrics: Mapping[str, float]
    per_state: Mapping[str, Mapping[str, float]]
    types: TypeResults | None = None


@dataclass(frozen=True)
class Table:
    """One report table: our values (percent) beside the paper's.

    Attributes:
        name: File name (a key of :data:`TABLES`).
        spec: Rows and metric columns.
        ours: Row -> metric key -> percent.
        paper: The paper's values for this table and dataset, ``None`` if it publishes none.
        image_score: How our image scores were formed (``Dapo``'s ``image_score``).

    """

    name: str
    spec: TableSpec
    ours: Mapping[str, Mapping[str, float]]
    paper: Published | None
    image_score: str

    def paper_value(self, row: str, metric: str) -> float:
        """The paper's value of a cell, NaN if it prints none."""
        return self.paper.rows.get(row, {}).get(metric, math.nan) if self.paper else math.nan

    def frame(self) -> pd.DataFrame:
        """The table as written to CSV: the row, ``<metric>`` (ours) and ``<metric>_paper``, our ``image_score``."""
        records = []
        for row, values in self.ours.items():
            record: dict[str, Any] = {self.spec.rows: row}
            for metric in self.spec.columns:
                record[metric] = round(values.get(metric, math.nan), 2)
                record[f"{metric}_paper"] = self.paper_value(row, metric)
            record["image_score"] = self.image_score
            records.append(record)
        return pd.DataFrame.from_records(records)

    def markdown(self) -> str:
        """The table as a markdown section, headed by its title and the paper table it compares with."""
        source = f"paper: {self.paper.source}" if self.paper else "not in the paper"
        header = [self.spec.rows] + [f"{METRICS[m]} {who}" for m in self.spec.columns for who in ("ours", "paper")]
        lines = [
            f"## {self.spec.title} — {source}",
            "",
            f"Ours with image score `{self.image_score}`.",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for row, values in self.ours.items():
            cells = [row]
            for metric in self.spec.columns:
                cells += [_cell(values.get(metric, math.nan), ".1f"), _cell(self.paper_value(row, metric), "")]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def _cell(value: float, spec: str) -> str:
    """Our values to one decimal; the paper's as printed; ``n/a`` where there is none."""
    return "n/a" if math.isnan(value) else format(value, spec)


def evaluate_category(model: Dapo, datamodule: AnomalibDataModule, accelerator: str = "auto") -> CategoryResult:
    """Test ``model`` zero-shot on one category through anomalib's Engine and collect what the tables need."""
    # The report writes each object's type results itself (write_type_results): the run only computes them.
    model.type_results.write = False
    with tempfile.TemporaryDirectory() as root:
        engine = Engine(default_root_dir=root, accelerator=accelerator, devices=1, logger=False)
        (logged,) = engine.test(model, datamodule=datamodule, verbose=False)
    metrics = {key: float(logged[name]) for name, key in LOGGED.items() if name in logged}
    evaluated = [metric for metric in model.evaluator.test_metrics if metric.name in _PER_STATE]
    states = (NORMAL, *model.vocabulary.defect_types)
    scores = per_type_scores(evaluated, states) if evaluated else {}
    per_state = {state: {LOGGED[name]: value for name, value in row.items()} for state, row in scores.items()}
    return CategoryResult(metrics=metrics, per_state=per_state, types=model.type_results.results)


def build_tables(dataset: str, results: Mapping[str, CategoryResult], image_score: str) -> dict[str, Table]:
    """Every table of :data:`TABLES` from per-category results, beside the paper's values for ``dataset``.

    Object rows keep the order of ``results``; mean rows are :func:`mean_over_objects` of them. ``image_score``
    (how the image scores were formed) is recorded in every table. A defect type's
    row is its mean over the objects whose test data shows it (an object without it has no score for it).
    """
    paper = published(dataset)
    objects = {category: {k: 100 * v for k, v in result.metrics.items()} for category, result in results.items()}
    mean = {MEAN: mean_over_objects(objects)}
    states = list(dict.fromkeys(state for result in results.values() for state in result.per_state))
    defects = {
        state: mean_over_objects(
            {
                category: {k: 100 * v for k, v in result.per_state[state].items()}
                for category, result in results.items()
                if state in result.per_state
            }
        )
        for state in states
    }
    rows_of = {"mean": mean, "object": {**objects, **mean}, "defect type": defects}
    return {name: Table(name, spec, rows_of[spec.rows], paper.get(name), image_score) for name, spec in TABLES.items()}


def write_type_results(directory: Path, results: Mapping[str, CategoryResult]) -> None:
    """Write each object's per-type table and type confusion matrix, and the overall ones, under ``types/``."""
    types = {category: result.types for category, result in results.items() if result.types is not None}
    for category, result in types.items():
        result.write(directory / "types" / category, category)
    if types:
        merge_type_results(types).write(directory / "types" / "overall", "overall")


def write_report(directory: Path, tables: Mapping[str, Table], header: Sequence[str]) -> Path:
    """Write ``report.md`` (``header`` lines, then every table) and one CSV per table into ``directory``."""
    sections = [f"{line}\n" for line in header]
    for name, table in tables.items():
        table.frame().to_csv(directory / f"{name}.csv", index=False, na_rep="")
        sections.append("\n" + table.markdown())
    report = directory / "report.md"
    report.write_text("".join(sections))
    return report


def paper_report(
    weights: str | Path,
    target: str,
    root: str | Path,
    output: str | Path,
    categories: Sequence[str] | None = None,
    model_args: Mapping[str, Any] | None = None,
    accelerator: str = "auto",
    eval_batch_size: int = 8,
    num_workers: int = 0,
    data_args: Mapping[str, Any] | None = None,
    seed: int | None = 0,
) -> Path:
    """Run the zero-shot protocol over the categories of a target dataset and write the report.

    Args:
        weights: Learned Dapo checkpoint (``anomalib train --model Dapo`` writes one).
        target: Target dataset (``mpdd``, ``visa``, ``real_iad``, ``mad_sim``, ``mad_real``, ``mvtec_ad``,
            ``synthetic``; any spelling the knowledge base accepts).
        root: Root of the target dataset.
        output: Report folder; the report goes to a new ``<output>/v<N>``.
        categories: Categories to test (default: every category of the dataset). Every folder is checked
            before anything runs.
        model_args: Further Dapo arguments (those of its training run: ``backbone``, ``image_size``, …).
        accelerator: Lightning accelerator.
        eval_batch_size: Test batch size.
        num_workers: Dataloader workers.
        data_args: Further arguments of the dataset's datamodule (e.g. Real-IAD's ``resolution``).
        seed: Seed set before the model is built (a backbone without pretrained weights is drawn from it).

    Returns:
        The version folder holding ``report.md`` and the CSV tables.

    """
    dataset = knowledge.resolve_dataset(target)
    known = knowledge.categories(dataset)
    # The knowledge base spells categories as on disk and matches them case-insensitively.
    lookup = {category.lower(): category for category in known}
    chosen = [lookup.get(category.lower(), category) for category in categories] if categories else list(known)
    data_args = dict(data_args or {})
    for category in chosen:
        knowledge.vocabulary(dataset, category)  # an unknown category fails here, naming the known ones
        # and a missing folder before hours of testing, where the datamodule will look for it
        require_category(dataset, root, category, data_args.get("resolution"))
    model_args = dict(model_args or {})
    if seed is not None:
        seed_everything(seed)
    template = Dapo(weights=str(weights), visualizer=False, **model_args)
    results = {}
    for index, category in enumerate(chosen, start=1):
        logger.info("Testing %s %s (%d/%d).", dataset, category, index, len(chosen))
        # The registry's datamodule: each takes ``root``, ``category``, ``eval_batch_size`` and ``num_workers``.
        datamodule = datamodule_class(dataset)(
            root=root,
            category=category,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            **data_args,
        )
        # A fresh copy per category: calibration and metric states never leak from one category to the next.
        results[category] = evaluate_category(copy.deepcopy(template), datamodule, accelerator)
    image_score = template.model.image_score.value
    header = _header(dataset, weights, root, chosen, known, model_args, image_score)
    directory = new_version_dir(output)
    write_report(directory, build_tables(dataset, results, image_score), header)
    write_type_results(directory, results)
    return directory


def _header(
    dataset: str,
    weights: str | Path,
    root: str | Path,
    chosen: Sequence[str],
    known: Sequence[str],
    model_args: Mapping[str, Any],
    image_score: str,
) -> list[str]:
    lines = [
        f"# DAPO zero-shot report: {dataset}",
        "",
        f"- weights: `{weights}`",
        f"- data: `{root}`, {len(chosen)} of {len(known)} categories ({', '.join(chosen)})",
        f"- model arguments: {model_args or 'defaults'}",
        f"- image score: `{image_score}` (the paper defines none; `global` is the authors' released code's)",
        f"- {datetime.now().isoformat(timespec='seconds')}, anomalib {version('anomalib')}, "
        f"anomalib-dapo {version('anomalib-dapo')}",
        "",
        "Values are percentages. *paper*: Nazer et al. 2025, the table named in each heading, as printed; "
        "n/a: not published (or not computable on these data).",
    ]
    if not published(dataset):
        lines.append(f"The paper publishes no numbers for {dataset}.")
    elif len(chosen) < len(known):
        lines.append(f"The paper's mean rows average all {len(known)} objects; ours average the {len(chosen)} tested.")
    return lines


def build_parser() -> ArgumentParser:
    """The command line of :func:`paper_report`: its arguments, plus every Dapo argument as ``--model.<name>``."""
    parser = ArgumentParser(prog="dapo-report", description=__doc__.splitlines()[0])
    parser.add_argument("--config", action=ActionConfigFile, help="A YAML file holding any of these arguments.")
    parser.add_argument("--weights", type=str, required=True, help="Learned Dapo checkpoint.")
    parser.add_argument("--target", type=str, required=True, help="Target dataset, e.g. mpdd, visa, real_iad.")
    parser.add_argument("--root", type=str, required=True, help="Root of the target dataset.")
    parser.add_argument("--output", type=str, required=True, help="Report folder (a new v<N> is made inside).")
    parser.add_argument("--categories", type=list[str] | None, default=None, help="Default: every category.")
    parser.add_argument("--accelerator", type=str, default="auto")
    parser.add_argument("--eval_batch_size", type=int, default=8)
    parser.add_argument("--num_workers", type=int, default=0)
    parser.add_argument("--data_args", type=dict[str, Any] | None, default=None, help="Datamodule arguments.")
    parser.add_argument("--seed", type=int | None, default=0)
    # The report fixes what it relies on: the checkpoint, the dataset's own vocabulary and Dapo's metrics.
    skip = {"weights", "defect_types", "pre_processor", "post_processor", "evaluator", "visualizer"}
    parser.add_class_arguments(Dapo, "model", skip=skip, instantiate=False)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """``dapo-report``: parse the command line, write the report and its config, and print where it is."""
    parser = build_parser()
    config = parser.parse_args(argv)
    defaults = parser.get_defaults().model.as_dict()
    model_args = {key: value for key, value in config.model.as_dict().items() if value != defaults.get(key)}
    directory = paper_report(
        weights=config.weights,
        target=config.target,
        root=config.root,
        output=config.output,
        categories=config.categories,
        model_args=model_args,
        accelerator=config.accelerator,
        eval_batch_size=config.eval_batch_size,
        num_workers=config.num_workers,
        data_args=config.data_args,
        seed=config.seed,
    )
    (directory / "config.yaml").write_text(parser.dump(config, skip_none=False))
    print(directory / "report.md")


__all__ = [
    "CategoryResult",
    "Table",
    "build_parser",
    "build_tables",
    "evaluate_category",
    "main",
    "new_version_dir",
    "paper_report",
    "write_report",
]
