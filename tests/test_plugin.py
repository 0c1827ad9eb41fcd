"""The start-up hook (``anomalib_dapo_plugin.pth``): nothing imported at start-up, the models found by anomalib.

Each test runs a fresh interpreter without ``site`` (``-S``) that processes this repository's ``.pth`` file
alone, from a temporary site directory, with the environment's site-packages on the path: what an install of
this tree does, independent of the ``.pth`` that the environment's own install copied.
"""

import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.fixture(scope="module")
def after_anomalib_models(tmp_path_factory) -> list[str]:
    """One fresh interpreter for two tests: what ``import anomalib.models`` registers (first line), then whether
    the hook, installed again once ``anomalib.models`` is loaded, imports the plugin at once (second line)."""
    code = (
        "import anomalib.models as m; from anomalib.models.components import AnomalibModule; "
        "names = [c.__name__ for c in AnomalibModule.__subclasses__()]; "
        "print(m.Dapo.__module__, m.MultiAds.__module__, 'Dapo' in names, 'MultiAds' in names); "
        "import anomalib_dapo_plugin; sys.modules.pop('anomalib_dapo.models', None); "
        "anomalib_dapo_plugin.install(); print('anomalib_dapo.models' in sys.modules)"
    )
    result = run_with_hook(tmp_path_factory.mktemp("hook"), code)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()


@pytest.mark.slow
def test_importing_anomalib_models_registers_the_models(after_anomalib_models):
    assert after_anomalib_models[0].split() == [
        "anomalib_dapo.models.dapo.lightning_model",
        "anomalib_dapo.models.multiads.lightning_model",
        "True",
        "True",
    ]


@pytest.mark.slow
def test_the_anomalib_console_script_parses_model_dapo(tmp_path):
    """What ``anomalib train --model Dapo`` parses, through anomalib's own CLI entry point."""
    code = (
        "sys.argv = ['anomalib', 'train', '--model', 'Dapo', '--print_config']; "
        "from anomalib.cli.cli import main; main()"
    )
    result = run_with_hook(tmp_path, code)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "class_path: anomalib_dapo.Dapo" in result.stdout


@pytest.mark.slow
def test_the_hook_imports_the_plugin_at_once_when_anomalib_models_is_loaded(after_anomalib_models):
    assert after_anomalib_models[1] == "True"
