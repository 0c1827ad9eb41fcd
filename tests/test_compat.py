"""Each workaround of :mod:`anomalib_dapo.compat` is still needed: anomalib 2.7 behaves as described there.

A test failing here means anomalib changed: the workaround it names can go (and the test with it).
"""

import pytest
import torch
from anomalib.cli import AnomalibCLI

from anomalib_dapo import compat
from tiny import TINY_ARGS


@pytest.fixture
def cli_args(tmp_path) -> list[str]:
    """``anomalib fit`` of the tiny Dapo on a folder datamodule (built, never set up)."""
    data = ["--data", "anomalib.data.Folder", "--data.name", "x", "--data.root", str(tmp_path)]
    data += ["--data.normal_dir", "n"]
    return ["fit", *TINY_ARGS, *data, "--trainer.logger", "false", "--default_root_dir", str(tmp_path)]


@pytest.fixture
def anomalib_cli(monkeypatch) -> type[AnomalibCLI]:
    """anomalib's CLI without the plugin's workarounds."""
    wrapped = AnomalibCLI.before_instantiate_classes
    assert getattr(wrapped, compat.SEEDED, False), "the start-up hook applies the CLI workarounds"
    monkeypatch.setattr(AnomalibCLI, "before_instantiate_classes", wrapped.__wrapped__)
    return AnomalibCLI


def test_anomalib_cli_still_ignores_seed_everything(anomalib_cli, cli_args):
    torch.manual_seed(1)
    anomalib_cli([*cli_args, "--seed_everything", "7"], run=False)
    assert torch.initial_seed() == 1  # anomalib's CLI parsed the seed and dropped it


def test_the_plugin_cli_applies_seed_everything(cli_args):
    torch.manual_seed(1)
    AnomalibCLI([*cli_args, "--seed_everything", "7"], run=False)
    assert torch.initial_seed() == 7


def test_anomalib_cli_still_buries_a_model_error_in_its_union_report(anomalib_cli, cli_args):
    with pytest.raises(ValueError, match="Does not validate against any of the Union subtypes") as error:
        anomalib_cli([*cli_args, "--model.image_size", "63"], run=False)
    assert not str(error.value).startswith("BackboneError")


def test_the_plugin_cli_ends_with_the_model_error(cli_args):
    with pytest.raises(compat.PluginInputError, match=r"^BackboneError: image_size 63 does not fit dapo-tiny"):
        AnomalibCLI([*cli_args, "--model.image_size", "63"], run=False)
