"""Mistakes end the stock console script's output with the plugin's own message, on its last line.

Both those found at setup and those found while jsonargparse builds the model, which it would otherwise bury in
its "Does not validate against any of the Union subtypes" report (see ``anomalib_dapo.compat``).

One mistake of each class runs the console script itself (:func:`last_line`); the others run its CLI in this
process (:func:`last_line_in_process`), which ends as the script's interpreter would, to save a start-up each.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console, ConsoleDimensions

from console import anomalib_in_process
from tiny import ONE_DISC, TINY_ARGS

MODEL = TINY_ARGS
TRAINER = ("--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--trainer.devices", "1")
COLUMNS = "1000"  # rich would wrap the message over several lines


def last_line(*args: str, cwd: Path) -> str:
    """The last line of the console script's output, which must fail."""
    executable = shutil.which("anomalib")
    assert executable, "the anomalib console script is not installed"
    env = {**os.environ, "COLUMNS": COLUMNS}
    result = subprocess.run([executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert result.returncode != 0
    return (result.stdout + result.stderr).rstrip().splitlines()[-1]


def last_line_in_process(*args: str, cwd: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> str:
    """The last line :func:`last_line` would read, from the CLI the script runs (``AnomalibCLI``) in this process.

    The run ends as in the script's interpreter: the output so far, then a ``SystemExit``'s message (which the
    interpreter prints, exiting 1), or any other error through ``sys.excepthook``, the rich traceback that
    ``anomalib.cli`` installs.
    """
    monkeypatch.setenv("COLUMNS", COLUMNS)
    # rich's consoles read COLUMNS when they are built, and anomalib's traceback console was built at import
    wide = ConsoleDimensions(int(COLUMNS), 25)
    monkeypatch.setattr(Console, "size", property(lambda _: wide))
    capsys.readouterr()
    with pytest.raises(BaseException) as error:  # whatever ends the run, as in the script
        anomalib_in_process(*args, cwd=cwd)
    if isinstance(error.value, SystemExit):
        assert error.value.code not in {None, 0}
        ending = "" if isinstance(error.value.code, int) else f"{error.value.code}\n"
    else:
        assert sys.excepthook.__module__ == "rich.traceback"
        sys.excepthook(error.type, error.value, error.tb)
        ending = ""
    captured = capsys.readouterr()
    return (captured.out + captured.err + ending).rstrip().splitlines()[-1]


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
def test_a_category_given_as_the_root(data, tmp_path, capsys, monkeypatch):
    args = ("fit", *MODEL, *cross(data / "disc"), *TRAINER, "--default_root_dir", str(tmp_path))
    line = last_line_in_process(*args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert line == (
        f"{data}/disc looks like that category 'disc' itself, one level too deep: pass the folder above it as the "
        f"root, {data}"
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mistake", "console"), [("text_as_weights", True), ("learned_as_pretrained", False), ("image_size", False)]
)
def test_a_model_that_cannot_be_built_says_why_on_the_last_line(
    mistake, console, data, tmp_path, tiny_checkpoint, capsys, monkeypatch
):
    """``console``: through the console script, else its CLI in this process."""
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
    args = ("fit", *MODEL, *option, *cross(data), *TRAINER, "--default_root_dir", str(tmp_path))
    if console:
        line = last_line(*args, cwd=tmp_path)
    else:
        line = last_line_in_process(*args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
    assert line.startswith(expected)
    if mistake == "learned_as_pretrained":
        assert "not CLIP weights" in line
        assert "pass it as --model.weights" in line
