"""The paper report: the zero-shot protocol over a target's categories, tabled beside the published numbers."""

import importlib.util
import logging
import math
from pathlib import Path

import pandas as pd
import pytest

from anomalib_dapo import knowledge
from anomalib_dapo.data import DatasetNotFoundError
from anomalib_dapo.report import PUBLISHED, TABLES, CategoryResult, build_tables, main, new_version_dir, published
from anomalib_dapo.report.paper_report import build_parser
from tiny import cli_options

# The dataset-layout writers of the data tests (an MPDD category is an MVTec-style tree).
_spec = importlib.util.spec_from_file_location("data_layouts", Path(__file__).parents[1] / "data" / "conftest.py")
_layouts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_layouts)
write_image, write_mask, defect_tree = _layouts.write_image, _layouts.write_mask, _layouts.defect_tree
write_realiad = _layouts.write_realiad

TINY_CLI = [*cli_options(drop=["visualizer"]), "--accelerator=cpu"]  # dapo-report draws no pictures


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint) -> Path:
    """The untrained tiny Dapo's checkpoint: these tests are about the report, not accuracy."""
    return tiny_checkpoint


def _csv(directory: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(directory / f"{table}.csv", index_col=0)


def test_every_synthetic_category_is_reported_in_a_new_version_with_no_paper_numbers(
    checkpoint, tmp_path, synthetic, caplog
):
    data = synthetic()
    output = tmp_path / "reports"
    (output / "v1").mkdir(parents=True)
    (output / "v1" / "report.md").write_text("an earlier report")
    (output / "notes.txt").write_text("the user's")

    args = ["--weights", str(checkpoint), "--target", "synthetic", "--root", str(data), "--output", str(output)]
    with caplog.at_level(logging.INFO, logger="anomalib_dapo.metrics.type_results"):
        main([*args, *TINY_CLI])
    # the type results are written once, into the report: the runs behind it write none of their own
    assert "type confusion matrix written" not in caplog.text

    directory = output / "v2"
    assert (output / "v1" / "report.md").read_text() == "an earlier report"
    assert (output / "notes.txt").read_text() == "the user's"
    objects = _csv(directory, "binary_objects")
    assert list(objects.index) == ["disc", "grid", "tile", "mean"]
    assert objects.filter(like="_paper").isna().all().all()
    ours = objects.drop(columns=[*objects.filter(like="_paper").columns, "image_score"])
    assert ours.notna().all().all()
    assert ((ours >= 0) & (ours <= 100)).all().all()
    assert ours.loc["mean"].to_numpy() == pytest.approx(ours.drop(index="mean").mean().to_numpy(), abs=0.01)
    defects = _csv(directory, "type_defects")
    assert list(defects.index) == ["normal", *knowledge.vocabulary("synthetic")]
    report = (directory / "report.md").read_text()
    assert "The paper publishes no numbers for synthetic." in report
    assert report.count("\n## ") == len(TABLES)
    # every table says which image score its values come from: Dapo's default, the authors' code's
    assert report.count("Ours with image score `global`.") == len(TABLES)
    for table in TABLES:
        assert (_csv(directory, table)["image_score"] == "global").all()
    # per object and overall: the per-type table and the confusion matrix over the defect pixels
    for folder in ("disc", "grid", "tile", "overall"):
        files = {path.name for path in (directory / "types" / folder).iterdir()}
        assert files == {
            "per_type.csv",
            "per_type.png",
            "confusion_counts.csv",
            "confusion_normalised.csv",
            "confusion.png",
        }
    overall = pd.read_csv(directory / "types" / "overall" / "confusion_counts.csv", index_col=0)
    parts = [
        pd.read_csv(directory / "types" / obj / "confusion_counts.csv", index_col=0) for obj in ("disc", "grid", "tile")
    ]
    summed = sum(p.reindex(index=overall.index, columns=overall.columns, fill_value=0) for p in parts)
    assert (overall.to_numpy() == summed.to_numpy()).all()
    assert overall.to_numpy().sum() > 0
    # the config written beside the report runs it again
    again = build_parser().parse_args(["--config", str(directory / "config.yaml")])
    assert again.model.pretrained is None
    assert again.model.adapter_layers == [2, 4]


def test_mpdd_tables_hold_the_papers_numbers_beside_ours(checkpoint, tmp_path, defect_tree):
    root = tmp_path / "MPDD"
    defect_tree(root / "tubes", {"good": 2, "flattening": 2})
    defect_tree(root / "connector", {"good": 2, "parts_mismatch": 2})

    args = ["--weights", str(checkpoint), "--target", "MPDD", "--root", str(root), "--output", str(tmp_path / "out")]
    main([*args, "--categories=[tubes, Connector]", "--model.image_score=fusion", *TINY_CLI])

    directory = tmp_path / "out" / "v1"
    objects = _csv(directory, "binary_objects")
    assert list(objects.index) == ["tubes", "connector", "mean"]
    assert objects.loc["tubes", ["pixel_auroc_paper", "image_f1_paper"]].tolist() == [99.0, 95.5]  # Table 8
    assert objects.loc["mean", "image_auroc_paper"] == 81.2
    assert _csv(directory, "binary_mean").loc["mean", "pixel_aupro_paper"] == 84.4  # Table 3
    assert _csv(directory, "type_mean").loc["mean", "type_f1_paper"] == 50.0  # Table 1
    assert _csv(directory, "type_objects").loc["connector", "type_ap_paper"] == 67.4  # Table 13
    defects = _csv(directory, "type_defects")
    assert list(defects.index) == ["normal", "flattening", "mismatch"]
    assert defects.loc["flattening", ["type_auroc_paper", "type_f1_paper"]].tolist() == [98.79, 66.57]
    assert _csv(directory, "label_objects").loc["tubes", "label_precision_paper"] == 84.5  # Table 11
    report = (directory / "report.md").read_text()
    for table in ("Table 1", "Table 3", "Table 8", "Table 11", "Table 13"):
        assert f"paper: {table}" in report
    assert "The paper's mean rows average all 6 objects; ours average the 2 tested." in report
    assert "| tubes | " in report
    assert report.count("Ours with image score `fusion`.") == len(TABLES)
    assert (objects["image_score"] == "fusion").all()


def test_a_missing_category_stops_the_report_before_anything_runs(checkpoint, tmp_path, defect_tree):
    defect_tree(tmp_path / "MPDD" / "tubes", {"good": 1, "flattening": 1})
    args = ["--weights", str(checkpoint), "--target", "mpdd", "--root", str(tmp_path / "MPDD")]
    with pytest.raises(DatasetNotFoundError, match="connector"):
        main([*args, "--output", str(tmp_path / "out"), "--categories=[tubes, connector]", *TINY_CLI])
    with pytest.raises(knowledge.UnknownCategoryError, match="bracket_black"):
        main([*args, "--output", str(tmp_path / "out"), "--categories=[tube]", *TINY_CLI])
    assert not (tmp_path / "out").exists()


def test_the_folders_are_checked_at_the_resolution_the_data_args_name(checkpoint, tmp_path, write_realiad):
    """Real-IAD at 512 only: the report runs at ``resolution: 512`` and refuses 256 up front, naming its folder."""
    root = tmp_path / "Real-IAD"
    write_realiad(root, resolution=512)
    args = ["--weights", str(checkpoint), "--target", "real_iad", "--root", str(root), "--categories=[pcb]"]
    with pytest.raises(DatasetNotFoundError, match="realiad_256"):
        main([*args, "--output", str(tmp_path / "refused"), "--data_args={resolution: 256}", *TINY_CLI])
    assert not (tmp_path / "refused").exists()
    main([*args, "--output", str(tmp_path / "out"), "--data_args={resolution: 512}", *TINY_CLI])
    assert list(_csv(tmp_path / "out" / "v1", "binary_objects").index) == ["pcb", "mean"]


def test_means_run_over_objects_and_defect_types_over_the_objects_showing_them():
    def result(metrics: dict, **states: float) -> CategoryResult:
        return CategoryResult(metrics, {state: {"type_auroc": value} for state, value in states.items()})

    results = {
        "a": result({"image_auroc": 0.5, "type_auroc": 0.6}, normal=0.9, dent=0.7),
        "b": result({"image_auroc": 1.0, "type_auroc": math.nan}, normal=0.5, dent=math.nan),
        "c": result({"image_auroc": 0.9}, normal=0.7, rust=0.2),
    }
    tables = build_tables("synthetic", results, "global")
    assert tables["binary_mean"].ours["mean"]["image_auroc"] == pytest.approx(80.0)
    assert tables["type_mean"].ours["mean"]["type_auroc"] == pytest.approx(60.0)  # b has no defect, c no score
    assert list(tables["binary_objects"].ours) == ["a", "b", "c", "mean"]
    defects = tables["type_defects"].ours
    assert list(defects) == ["normal", "dent", "rust"]
    assert defects["normal"]["type_auroc"] == pytest.approx(70.0)
    assert defects["dent"]["type_auroc"] == pytest.approx(70.0)  # b's test data shows no dent
    assert tables["type_defects"].paper is None
    assert "| dent | 70.0 | n/a | n/a | n/a |" in tables["type_defects"].markdown()


def test_version_folders_count_up_and_never_reuse_a_name(tmp_path):
    (tmp_path / "v3").mkdir()
    (tmp_path / "v10").mkdir()
    (tmp_path / "vx").mkdir()
    assert new_version_dir(tmp_path) == tmp_path / "v11"
    assert new_version_dir(tmp_path / "fresh") == tmp_path / "fresh" / "v1"


def test_published_numbers_agree_with_the_design_brief_and_cover_every_object():
    # Table 3 and Table 1 as the project's design brief quotes them (an independent transcription).
    binary = {"visa": (84.9, 87.1, 94.3, 84.0), "mpdd": (81.2, 83.6, 95.1, 84.4), "real_iad": (84.3, 84.0, 96.4, 80.3)}
    for dataset, values in binary.items():
        row = published(dataset)["binary_mean"].rows["mean"]
        assert tuple(row[m] for m in ("image_auroc", "image_ap", "pixel_auroc", "pixel_aupro")) == values
    types = {"visa": (88.9, 25.0, 22.2), "mpdd": (95.5, 53.6, 50.0), "mad_sim": (91.9, 33.3, 25.0)}
    types["mad_real"] = (86.1, 58.5, 58.5)
    for dataset, values in types.items():
        row = published(dataset)["type_mean"].rows["mean"]
        assert tuple(row[m] for m in ("type_auroc", "type_ap", "type_f1")) == values
    for dataset, tables in PUBLISHED.items():
        for name, table in tables.items():
            assert {m for row in table.rows.values() for m in row} == set(TABLES[name].columns)
            if TABLES[name].rows == "object":
                assert set(table.rows) - {"mean"} == set(knowledge.categories(dataset)), (dataset, name)
    assert published("mvtec_ad") == {}
    assert published("Real-IAD")["binary_objects"].rows["porcelain_doll"]["image_auroc"] == 93.1  # "Porcelain"
    assert published("MAD-Sim")["type_objects"].rows["14Elephant"]["type_auroc"] == 81.7  # "Elephant"
