"""Mistakes end the stock console script's output with the plugin's own message, on its last line.

Both those found at setup and those found while jsonargparse builds the model, which it would otherwise bury in
its "Does not validate against any of the Union subtypes" report (see ``anomalib_dapo.compat``).
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tiny import ONE_DISC, TINY_ARGS

MODEL = TINY_ARGS
TRAINER = ("--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.devices", "1")


def last_line(*args: str, cwd: Path) -> str:
    executable = shutil.which("anomalib")
    assert executable, "the anomalib console script is not installed"
    env = {**os.environ, "COLUMNS": "1000"}  # rich would wrap the message over several lines
    result = subprocess.run([executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert result.returncode != 0
    return (result.stdout + result.stderr).rstrip().splitlines()[-1]


@pytest.fixture(scope="module")
def data(synthetic) -> Path:
    return synthetic(**ONE_DISC)


def cross(root: Path) -> list[str]:
    return [
        "--data", "anomalib_dapo.data.CrossDataset",
        "--data.source", "synthetic", "--data.source_root", str(root),
        "--data.target", "synthetic", "--data.target_root", str(root),
        "--data.target_category", "disc",
    ]  # fmt: skip


@pytest.mark.slow
def test_a_non_ascii_dataset_path(data, tmp_path):
    root = shutil.copytree(data, tmp_path / "Prüfdaten")
    line = last_line("fit", *MODEL, *cross(root), *TRAINER, "--default_root_dir", str(tmp_path), cwd=tmp_path)
    assert line.startswith(f"DatasetPathError: The synthetic multi-defect dataset path {root}/disc holds characters")
    assert line.endswith(f"pass the link as its root, e.g. ln -s '{root}' datasets/Prufdaten")


@pytest.mark.slow
def test_a_category_given_as_the_root(data, tmp_path):
    line = last_line("fit", *MODEL, *cross(data / "disc"), *TRAINER, "--default_root_dir", str(tmp_path), cwd=tmp_path)
    assert line == (
        f"{data}/disc looks like that category 'disc' itself, one level too deep: pass the folder above it as the "
        f"root, {data}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("mistake", ["text_as_weights", "learned_as_pretrained", "image_size"])
def test_a_model_that_cannot_be_built_says_why_on_the_last_line(mistake, data, tmp_path, tiny_checkpoint):
    text = tmp_path / "config.yaml"
    text.write_text("model: Dapo\n")
    option, expected = {
        "text_as_weights": (
            ("--model.weights", str(text)),
            f"CheckpointMismatchError: {text} is not a readable Dapo checkpoint",
        ),
        "learned_as_pretrained": (
            ("--model.pretrained", str(tiny_checkpoint)),
            "BackboneError: ",
        ),
        "image_size": (("--model.image_size", "63"), "BackboneError: image_size 63 does not fit dapo-tiny"),
    }[mistake]
    line = last_line("fit", *MODEL, *option, *cross(data), *TRAINER, "--default_root_dir", str(tmp_path), cwd=tmp_path)
    assert line.startswith(expected)
    if mistake == "learned_as_pretrained":
        assert "not CLIP weights" in line
        assert "pass it as --model.weights" in line
