"""What a run leaves on disk, through the console script's CLI: a test or predict run never changes the training run.

anomalib 2.7 writes ``anomalib test`` and ``predict`` into the training run's folder (``…/latest``): its
``config.yaml`` is replaced and the checkpoint callback adds ``model-v1.ckpt`` beside the learned weights.
"""

import hashlib
from pathlib import Path

import pytest

from console import anomalib_in_process
from tiny import TINY_ARGS

MODEL = TINY_ARGS
TRAINER = ["--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.devices", "1"]


def tree(folder: Path) -> dict[str, str]:
    """Every file and link under ``folder`` with the hash of its bytes (links: their target)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = f"-> {path.readlink()}"
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.mark.slow
def test_test_and_predict_leave_the_training_run_as_it_was(tmp_path, synthetic):
    data = synthetic(n_test_per_defect=1)  # the datamodule's sizes below
    typed = ["--data", "anomalib_dapo.data.SyntheticDefects", "--data.root", str(data), "--data.category", "disc"]
    typed += ["--data.image_size", "64", "--data.n_train", "2", "--data.n_test_good", "2"]
    typed += ["--data.n_test_per_defect", "1"]
    results = tmp_path / "results"
    root = ["--default_root_dir", str(results)]
    anomalib_in_process("fit", *MODEL, *typed, *TRAINER, *root, cwd=tmp_path)
    runs = results / "Dapo/SyntheticDefects/disc"
    training = (runs / "latest").resolve()
    weights = runs / "latest/weights/lightning/model.ckpt"  # the demo's path, through the link
    assert weights.is_file()
    before = tree(training)

    anomalib_in_process("test", *MODEL, "--model.weights", str(weights), *typed, *TRAINER, *root, cwd=tmp_path)
    folder = data / "disc/test/hole"
    predict = ["predict", *MODEL, "--model.weights", str(weights), "--data", str(folder), *TRAINER, *root]
    anomalib_in_process(*predict, cwd=tmp_path)

    assert tree(training) == before
    assert (runs / "latest").resolve() == training  # `latest` still names the training run
    own = sorted(path for path in runs.iterdir() if path.name != "latest" and path != training)
    assert [path.name for path in own] == ["v1"]  # the test run's own version folder
    assert (own[0] / "config.yaml").is_file()
    assert f"weights: {weights}" in (own[0] / "config.yaml").read_text()  # the test's own config
