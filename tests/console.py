"""Running the stock ``anomalib`` console script from tests."""

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path


def anomalib(*args: str, cwd: Path | str, env: Mapping[str, str] | None = None, timeout: int = 600) -> str:
    """Run ``anomalib *args`` in ``cwd`` (extra environment ``env``); assert it succeeds; return its output."""
    executable = shutil.which("anomalib")
    assert executable, "the anomalib console script is not installed"
    result = subprocess.run(
        [executable, *args], capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})}, timeout=timeout
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def anomalib_in_process(*args: str, cwd: Path | str) -> None:
    """Run what the ``anomalib`` console script runs (``AnomalibCLI``) on ``args`` in this process, from ``cwd``.

    For tests about what a run does rather than about the console script itself: no interpreter start-up, the
    same parser, plugin hooks and engine. Its errors are raised, not printed.
    """
    from anomalib.cli import AnomalibCLI

    before = Path.cwd()
    os.chdir(cwd)
    try:
        AnomalibCLI(list(args))
    finally:
        os.chdir(before)
