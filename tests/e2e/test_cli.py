"""The stock ``anomalib`` console script: fit -> test (zero-shot, two datamodules) -> predict.

test on the plugin's datamodule runs the console script in a subprocess; the other runs use its CLI in this process
(``anomalib_in_process``: the same parser, hooks and engine), to save start-ups. The console script's own
``train`` runs in the demo's test, the DDP test and the GPU check's CPU form, its ``predict`` on a folder in the
demo's test.
"""

import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from anomalib.models import get_model

from anomalib_dapo import Dapo
from console import anomalib, anomalib_in_process
from tiny import cli_options

# The short name resolves through the plugin's registration, with no import by the user; predict draws pictures.
MODEL = ["--model", "Dapo", *cli_options(drop=["visualizer"])]


def metric(output: str, name: str) -> float:
    match = re.search(rf"{name}\s*│\s*([0-9.]+)", output)
    assert match, f"{name} not reported:\n{output[-3000:]}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def data(tmp_path_factory, synthetic):
    root = tmp_path_factory.mktemp("cli")
    sizes = {"n_train": 8, "n_test_good": 3, "n_test_per_defect": 3}
    (root / "source").symlink_to(synthetic(**sizes))
    (root / "target").symlink_to(synthetic(seed=1, **sizes))
    return root


def cross(data: Path) -> list[str]:
    return [
        "--data", "anomalib_dapo.data.CrossDataset",
        "--data.source", "synthetic", "--data.source_root", str(data / "source"),
        "--data.target", "synthetic", "--data.target_root", str(data / "target"),
        "--data.target_category", "tile", "--data.train_batch_size", "4",
    ]  # fmt: skip


def seeded_fit(data: Path, root: Path, run: Callable[..., object] = anomalib) -> Path:
    """``anomalib fit`` with ``--seed_everything 7`` into ``root`` (``run``: the console script, or its CLI in this
    process): the learned weights' file."""
    trainer = ["--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--default_root_dir", str(root)]
    run("fit", *MODEL, *cross(data), *trainer, "--seed_everything", "7", cwd=data)
    return root / "Dapo/CrossDataset/tile/latest/weights/lightning/model.ckpt"


@pytest.fixture(scope="module")
def fitted(data) -> Path:
    """One seeded training run, shared: the fit -> test -> predict test and the reproducibility test use it."""
    return seeded_fit(data, data / "results", anomalib_in_process)


TYPED = ["--data", "anomalib_dapo.data.SyntheticDefects", "--data.category", "disc", "--data.seed", "1"]
TYPED += ["--data.image_size", "64", "--data.n_test_per_defect", "3", "--data.n_test_good", "3"]
TYPE_METRICS = ("pixel_TypeAUROC", "pixel_TypeAveragePrecision", "pixel_TypeF1Score", "image_MultiLabelF1")


@pytest.fixture(scope="module")
def typed_test(data, fitted) -> str:
    """``anomalib test`` of the trained weights on the plugin's typed datamodule (the target), with the data's
    own vocabulary: its output, shared by two tests."""
    trainer = ["--trainer.accelerator", "cpu", "--default_root_dir", str(data / "results")]
    typed = [*TYPED, "--data.root", str(data / "target")]
    return anomalib("test", *MODEL, "--model.weights", str(fitted), *typed, *trainer, cwd=data)


@pytest.mark.slow
def test_fit_test_predict_through_the_console_script(data, fitted, typed_test, capsys, caplog):
    trainer = ["--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--default_root_dir", str(data / "results")]
    weights = fitted
    assert weights.is_file()

    # The config.yaml that training saved loads through anomalib's own get_model (as its lightning_inference tool
    # does); that this class path loads in a fresh interpreter: tests/test_plugin.py (``fresh``).
    saved = yaml.safe_load((weights.parents[2] / "config.yaml").read_text())["model"]
    assert saved["class_path"] == "anomalib_dapo.Dapo"
    assert type(get_model(saved)) is Dapo

    # Zero-shot on the plugin's typed datamodule: binary and multi-type metrics.
    output = typed_test
    assert 0.0 <= metric(output, "image_AUROC") <= 1.0
    assert 0.0 <= metric(output, "pixel_TypeAUROC") <= 1.0
    assert "Dapo scores 4 defect types: scratch, hole, stain, missing" in output

    # Zero-shot on anomalib's own MVTecAD datamodule (the synthetic set has its layout): binary metrics.
    stock = ["--data", "MVTecAD", "--data.root", str(data / "target"), "--data.category", "grid"]
    stock += ["--data.num_workers", "0"]  # not anomalib's 8 loader processes forked from this test process
    capsys.readouterr()
    caplog.set_level(logging.INFO)
    vocabulary = ["--model.weights", str(weights), "--model.defect_types", "[scratch, stain]"]
    anomalib_in_process("test", *MODEL, *vocabulary, *stock, *trainer, cwd=data)
    assert 0.0 <= metric(capsys.readouterr().out, "pixel_AUROC") <= 1.0
    assert "Dapo scores 2 defect types: scratch, stain" in caplog.messages

    # Predict on a bare folder, with a vocabulary given by text (the console script's: the demo's test).
    folder = data / "target/tile/test/hole"
    anomalib_in_process(
        "predict",
        *MODEL,
        "--model.weights",
        str(weights),
        "--model.defect_types",
        "[hole, rust]",
        "--data",
        str(folder),
        *trainer[:-2],
        "--default_root_dir",
        str(data / "predict"),
        cwd=data,
    )
    written = sorted((data / "predict").rglob("*.png"))
    assert len(written) == len(list(folder.glob("*.png")))


@pytest.mark.slow
def test_predict_one_image_file_with_named_defect_types(tmp_path, tiny_checkpoint, caplog):
    """README, "From one image to score, map and defect types" (on the command line, its CLI in this process), with
    the tiny backbone."""
    from PIL import Image

    Image.new("RGB", (96, 80), (120, 90, 60)).save(tmp_path / "part.png")
    caplog.set_level(logging.INFO)
    anomalib_in_process(
        "predict", *MODEL, "--model.weights", str(tiny_checkpoint), "--model.defect_types", "[scratch, dent]",
        "--data", str(tmp_path / "part.png"), "--trainer.accelerator", "cpu", "--default_root_dir", str(tmp_path),
        cwd=tmp_path,
    )  # fmt: skip
    assert "Dapo scores 2 defect types: scratch, dent" in caplog.messages
    (picture,) = (tmp_path / "Dapo").rglob("part.png")
    assert Image.open(picture).width > 96  # anomalib's panels, the type panels and their legend


@pytest.mark.slow
def test_a_seed_in_the_config_makes_training_reproducible(data, fitted):
    """anomalib 2.7's CLI ignores ``seed_everything``; the plugin applies it: two runs learn bit-identical tensors
    (the CLI's in this process, the second after other tests, whatever they left in it)."""
    import torch

    from anomalib_dapo.models.components.checkpoint import safe_globals

    learned = []
    for path in (fitted, seeded_fit(data, data / "seeded_again", anomalib_in_process)):
        with torch.serialization.safe_globals(safe_globals()):
            learned.append(torch.load(path, weights_only=True)["state_dict"])
    assert learned[0].keys() == learned[1].keys() and learned[0]
    assert all(torch.equal(learned[0][name], learned[1][name]) for name in learned[0])


@pytest.mark.slow
def test_a_reordered_vocabulary_gives_the_same_type_metrics_through_anomalib_test(data, fitted, typed_test, capsys):
    """``--model.defect_types`` is matched to the data's types by name: its order changes no number (the reordered
    run: anomalib's CLI in this process, its printed tables read back)."""
    assert "Dapo scores 4 defect types: scratch, hole, stain, missing" in typed_test  # the data's own order
    typed = [*TYPED, "--data.root", str(data / "target")]
    trainer = ["--trainer.accelerator", "cpu", "--default_root_dir", str(data / "reordered")]
    order = "[missing, stain, scratch, hole]"
    capsys.readouterr()
    reordered = ["--model.weights", str(fitted), "--model.defect_types", order]
    anomalib_in_process("test", *MODEL, *reordered, *typed, *trainer, cwd=data)
    output = capsys.readouterr().out
    reported = [{name: metric(text, name) for name in TYPE_METRICS} for text in (typed_test, output)]
    assert reported[0] == reported[1]
