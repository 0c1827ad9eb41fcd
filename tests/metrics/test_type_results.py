"""The per-type table and type confusion matrix: against scikit-learn, across vocabularies, and in a test run."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from anomalib.engine import Engine
from PIL import Image
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score

from anomalib_dapo import Dapo
from anomalib_dapo.data import SyntheticDefects
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.metrics import TypeAUROC, TypeAveragePrecision, TypeConfusionMatrix, TypeF1Score
from anomalib_dapo.metrics.type_results import merge_type_results, type_results
from tiny import SYNTHETIC

FILES = {"per_type.csv", "per_type.png", "confusion_counts.csv", "confusion_normalised.csv", "confusion.png"}


def object_results(seed: int, names: list[str], present: list[str]):
    """Results of one object whose vocabulary is ``names`` and whose ground truth holds only ``present``.

    Returns the results and the ground truth and prediction as state names, for scikit-learn.
    """
    states = ["normal", *names]
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor([states.index(name) for name in ["normal", *present]])
    gt = ids[torch.randint(0, len(ids), (2, 6, 6), generator=g)].repeat_interleave(4, 1).repeat_interleave(4, 2)
    logits = torch.randn(2, len(states), 24, 24, generator=g) + 2 * torch.nn.functional.one_hot(
        gt, len(states)
    ).movedim(-1, 1)
    probs = logits.softmax(1)
    batch = TypedImageBatch(
        image=torch.zeros(2, 3, 24, 24), gt_type_mask=gt, pred_type_map=probs, pred_type_mask=probs.argmax(1)
    )
    k = len(states)
    metrics = [TypeAUROC(num_classes=k), TypeAveragePrecision(num_classes=k), TypeF1Score(num_classes=k)]
    confusion = TypeConfusionMatrix(num_classes=k)
    for metric in [*metrics, confusion]:
        metric.update(batch)
    for metric in metrics:
        metric.compute()
    named = np.array(states)
    truth, pred = named[gt.flatten().numpy()], named[batch.pred_type_mask.flatten().numpy()]
    scores = probs.movedim(1, -1).reshape(-1, len(states)).numpy()
    return type_results(metrics, confusion.compute(), states), truth, pred, scores


def test_one_object_table_and_confusion_equal_sklearn(tmp_path):
    results, truth, pred, scores = object_results(0, ["scratch", "hole", "stain"], present=["scratch", "stain"])
    states = ["normal", "scratch", "hole", "stain"]
    defect = truth != "normal"
    expected = confusion_matrix(truth[defect], pred[defect], labels=states)[1:]
    assert (results.confusion.to_numpy() == expected).all()
    assert list(results.confusion.index) == states[1:] and list(results.confusion.columns) == states
    assert results.confusion.loc["hole"].sum() == 0  # absent from the ground truth
    assert results.normalised.loc["hole"].isna().all()
    assert results.normalised.loc["scratch"].sum() == pytest.approx(1)
    table = results.per_type
    assert np.isnan(table.loc["hole", "auroc"])
    assert table.loc["stain", "auroc"] == pytest.approx(roc_auc_score(truth == "stain", scores[:, 3]), abs=5e-3)
    f1 = f1_score(truth, pred, labels=states, average=None, zero_division=0)
    assert table.loc["scratch", "f1"] == pytest.approx(f1[1], abs=1e-6)
    assert table.loc["normal", "pixels"] == (truth == "normal").sum()

    written = results.write(tmp_path / "out", "plate")
    assert {path.name for path in written} == FILES
    again = pd.read_csv(tmp_path / "out" / "confusion_counts.csv", index_col=0)
    assert (again.to_numpy() == expected).all()
    for picture in ("per_type.png", "confusion.png"):
        with Image.open(tmp_path / "out" / picture) as image:
            assert image.format == "PNG" and min(image.size) > 100


def test_overall_matches_types_by_name_across_reordered_and_different_vocabularies():
    first, truth_a, pred_a, _ = object_results(1, ["scratch", "hole"], present=["scratch", "hole"])
    second, truth_b, pred_b, _ = object_results(2, ["hole", "stain", "scratch"], present=["hole", "stain"])
    overall = merge_type_results({"a": first, "b": second})
    names = ["normal", "scratch", "hole", "stain"]
    truth, pred = np.concatenate([truth_a, truth_b]), np.concatenate([pred_a, pred_b])
    defect = truth != "normal"
    expected = pd.DataFrame(confusion_matrix(truth[defect], pred[defect], labels=names)[1:], names[1:], names)
    got = overall.confusion.reindex(index=names[1:], columns=names)
    assert (got.to_numpy() == expected.to_numpy()).all()
    # A state's score is its mean over the objects whose ground truth shows it: scratch is only in a's.
    assert overall.per_type.loc["scratch", "auroc"] == pytest.approx(first.per_type.loc["scratch", "auroc"])
    hole = [first.per_type.loc["hole", "ap"], second.per_type.loc["hole", "ap"]]
    assert overall.per_type.loc["hole", "ap"] == pytest.approx(np.mean(hole))
    assert overall.per_type.loc["normal", "pixels"] == (truth == "normal").sum()


@pytest.mark.slow
def test_a_test_run_writes_the_results_into_its_versioned_folder(tmp_path, tiny_kwargs, tiny_checkpoint, synthetic):
    datamodule = SyntheticDefects(synthetic(), "disc", **SYNTHETIC)
    model = Dapo(weights=str(tiny_checkpoint), **tiny_kwargs)
    engine = Engine(default_root_dir=tmp_path / "results", accelerator="cpu", logger=False, enable_progress_bar=False)
    engine.test(model, datamodule=datamodule)
    folder = model.type_results.written
    assert folder == Path(engine.trainer.default_root_dir) / "type_results" / "v1"
    assert {path.name for path in folder.iterdir()} == FILES
    counts = pd.read_csv(folder / "confusion_counts.csv", index_col=0)
    assert list(counts.index) == list(model.vocabulary.defect_types)
    defect_pixels = sum(int((item.gt_type_mask > 0).sum()) for item in datamodule.test_data)
    assert counts.to_numpy().sum() == defect_pixels > 0  # every ground-truth defect pixel, once
    engine.test(model, datamodule=datamodule)  # a second run keeps the first's
    assert model.type_results.written.name == "v2" and (folder / "confusion.png").exists()
