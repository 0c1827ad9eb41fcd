"""Workarounds for anomalib 2.7, one section each, applied by the start-up hook once their anomalib module is imported.

The hook (``HOOKS`` in :mod:`anomalib_dapo_plugin`) calls each section's function with the anomalib module it
works around. Each section says which anomalib 2.7 behaviour it works around; drop it once anomalib fixes that.
"""

from types import ModuleType

# ---------------------------------------------------------------------------------------------------------------
# `anomalib benchmark`: every job's row, failures visible (hook on ``anomalib.cli.pipelines``)
#
# anomalib 2.7's benchmark builds every model before any job runs (a model that cannot be built, such as WinClip
# without its CLIP weights, stops the whole grid: no results.csv), fits zero-shot models without validation data
# (WinClip fails), keeps only the first job's columns, reports no throughput, and swallows every failure: its
# runners catch the job's exception, ``Pipeline.run`` catches the runner's, and the command exits 0.
# ---------------------------------------------------------------------------------------------------------------

BENCHMARK = "benchmark"
"""anomalib's pipeline subcommand of the benchmark."""


def register_benchmark_command(pipelines: ModuleType) -> None:
    """Make ``anomalib benchmark`` run the plugin's benchmark command instead of anomalib 2.7's pipeline.

    :class:`~anomalib_dapo.pipelines.benchmark.BenchmarkCommand` reads the same config and writes the same
    ``runs/benchmark/<date-time>/results.csv``, with one row per job (a failed one marked ``status: failed``,
    with its error), the union of the jobs' metrics and the throughput; a failed job makes the command exit with
    status 1 and the errors as its last lines. anomalib's CLI runs whichever pipeline its registry names for the
    subcommand, so the plugin names its own there, before the CLI builds its parser.

    Args:
        pipelines: The imported ``anomalib.cli.pipelines``, whose ``PIPELINE_REGISTRY`` is ``None`` when
            anomalib's pipelines are not installed (then there is no ``benchmark`` command to fix).

    """
    registry = pipelines.PIPELINE_REGISTRY
    if registry is None:
        return
    from anomalib_dapo.pipelines.benchmark import BenchmarkCommand  # imports anomalib.pipelines

    registry[BENCHMARK] = BenchmarkCommand
