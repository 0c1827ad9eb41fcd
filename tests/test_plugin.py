"""The start-up hook (``anomalib_dapo_plugin.pth``): nothing imported at start-up, the models found by anomalib.

Each test reads a fresh interpreter without ``site`` (``-S``) that processes this repository's ``.pth`` file
alone, from a temporary site directory, with the environment's site-packages on the path: what an install of
this tree does, independent of the ``.pth`` that the environment's own install copied. The tests of what
importing does, the plugin's deploy package's imports (``anomalib_dapo.exported``) and ``get_model`` (its models)
included, share one such interpreter (:func:`fresh`).
"""

import json
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tiny import TINY

SRC = Path(__file__).parents[1] / "src"


def run_with_hook(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    shutil.copy(SRC / "anomalib_dapo_plugin.pth", site_dir)
    prelude = (
        "import site, sys; "
        f"sys.path[:0] = [{str(SRC)!r}]; sys.path.extend({site.getsitepackages()!r}); "
        f"site.addsitedir({str(site_dir)!r}); "
    )
    return subprocess.run(
        [sys.executable, "-S", "-c", prelude + code], capture_output=True, text=True, timeout=300, check=False
    )


def test_a_plain_start_up_imports_neither_the_plugin_nor_torch(tmp_path):
    result = run_with_hook(tmp_path, "print(sorted(m for m in sys.modules if m.startswith(('anomalib', 'torch'))))")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['anomalib_dapo_plugin']"


FRESH_FINDINGS = """
import contextlib, io, json
found = {}
import anomalib_dapo.deploy
found["deploy"] = str([name for name in sys.modules if name.startswith("anomalib_dapo.models")])

import anomalib.models as m
from anomalib.models.components import AnomalibModule
names = [c.__name__ for c in AnomalibModule.__subclasses__()]
found["registered"] = f"{m.Dapo.__module__} {m.MultiAds.__module__} {'Dapo' in names} {'MultiAds' in names}"
found["get_model"] = type(m.get_model("dapo", **TINY)).__module__
found["get_model_config"] = type(m.get_model({"class_path": "anomalib_dapo.Dapo", "init_args": TINY})).__name__

sys.argv = ["anomalib", "train", "--model", "Dapo", "--print_config"]
from anomalib.cli.cli import main
config, code = io.StringIO(), None
with contextlib.redirect_stdout(config):
    try:
        main()
    except SystemExit as error:
        code = error.code
found["config"], found["exit"] = config.getvalue(), repr(code)

import anomalib_dapo_plugin
sys.modules.pop("anomalib_dapo.models", None)
anomalib_dapo_plugin.install()
found["reinstalled"] = str("anomalib_dapo.models" in sys.modules)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict[str, str]:
    """One fresh interpreter for the tests of what importing does, its findings by name, in this order (each holds
    whatever ran before it; the interpreter is shared to save start-ups):

    - ``deploy``: the plugin's modules that ``import anomalib_dapo.deploy`` loads from the models (none: the
      inferencers use the export contract alone);
    - ``registered``, ``get_model``, ``get_model_config``: what ``import anomalib.models`` registers, and the model
      classes its ``get_model`` builds from ``"dapo"`` and from the model section of the ``config.yaml`` that
      ``anomalib train`` saves (``class_path: anomalib_dapo.Dapo``, as anomalib's ``lightning_inference`` tool
      reads it), nothing of the plugin's imported by hand;
    - ``config``, ``exit``: what ``anomalib train --model Dapo --print_config`` prints through anomalib's own CLI
      entry point, and how it exits (the CLI imports ``anomalib.models`` first thing itself, so what ran before
      changes nothing of what it parses);
    - ``reinstalled``: whether the hook, installed again once ``anomalib.models`` is loaded, imports the plugin at
      once.
    """
    code = f"TINY = {dict(TINY)!r}\n{FRESH_FINDINGS}"
    result = run_with_hook(tmp_path_factory.mktemp("hook"), code)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_inferencers_import_no_model(fresh):
    assert fresh["deploy"] == "[]"


@pytest.mark.slow
def test_importing_anomalib_models_registers_the_models(fresh):
    assert fresh["registered"].split() == [
        "anomalib_dapo.models.dapo.lightning_model",
        "anomalib_dapo.models.multiads.lightning_model",
        "True",
        "True",
    ]


@pytest.mark.slow
def test_get_model_finds_dapo_without_importing_the_plugin(fresh):
    assert fresh["get_model"] == "anomalib_dapo.models.dapo.lightning_model"
    assert fresh["get_model_config"] == "Dapo"


@pytest.mark.slow
def test_the_anomalib_console_script_parses_model_dapo(fresh):
    """What ``anomalib train --model Dapo`` parses, through anomalib's own CLI entry point."""
    assert fresh["exit"] in {"None", "0"}
    assert "class_path: anomalib_dapo.Dapo" in fresh["config"]


@pytest.mark.slow
def test_the_hook_imports_the_plugin_at_once_when_anomalib_models_is_loaded(fresh):
    assert fresh["reinstalled"] == "True"
