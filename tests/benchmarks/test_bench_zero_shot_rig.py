"""Smoke test of benchmarks/bench_zero_shot_rig.py: the side-by-side table on a tiny rig, its rows and columns.

Correctness of the table only: a few steps on a few views, so no figure is compared with another.
"""

import csv
import importlib.util
from pathlib import Path

import pytest

from anomalib_dapo.pipelines.zero_shot_rig import DISCLAIMER, VOCABULARY, WINCLIP

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_zero_shot_rig.py"

COLUMNS = [
    "model",
    "weights",
    "settings",
    "pixel AUROC",
    "pixel AUPRO",
    "image AUROC",
    "scratch (seen)",
    "hole (seen)",
    "stain (seen)",
    "missing (seen)",
    "crack (unseen)",
    "burn (unseen)",
    "contamination (unseen)",
    "seen type AUROC",
    "seen named right",
    "seen labelled right",
    "unseen type AUROC",
    "unseen named right",
    "unseen labelled right",
    "train s",
]


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_zero_shot_rig", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_benchmark_writes_one_table_with_every_figure_and_a_marked_row_for_winclip(tmp_path, capsys):
    rows = ["MultiAds-F", WINCLIP]
    argv = ["--variants", *rows, "--random-beside", "MultiAds-F", "--steps", "2", "--train-per-state", "2"]
    _load_bench().main_all([*argv, "--test-per-state", "1", "--pictures", "0", "--output", str(tmp_path)])
    with (tmp_path / "v1" / "table.csv").open() as file:
        table = list(csv.DictReader(file))
    assert list(table[0]) == COLUMNS
    assert [(row["model"], row["weights"]) for row in table] == [
        ("MultiAds-F", "synthetic"),
        (WINCLIP, "–"),
        ("MultiAds-F", "random"),
    ]
    trained, winclip = table[0], table[1]
    assert trained["settings"] == "product_filter=True"
    assert all(0 <= float(trained[column]) <= 1 for column in COLUMNS[3:6] + COLUMNS[13:19])
    assert all(
        len(trained[f"{kind} ({seen})"].split(" / ")) == 2
        for kind, seen in zip(VOCABULARY, ["seen"] * 4 + ["unseen"] * 3, strict=True)
    )
    assert winclip["settings"].startswith("NOT RUN: ") and "ViT-B-16-plus-240" in winclip["settings"]
    assert {winclip[column] for column in COLUMNS[3:]} == {"–"}
    markdown = (tmp_path / "v1" / "table.md").read_text()
    assert DISCLAIMER in markdown and "NOT RUN" in markdown
    assert "NOT RUN" in capsys.readouterr().out
