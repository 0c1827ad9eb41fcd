"""anomalib's benchmark pipeline, able to run zero-/few-shot models and to mix models with different arguments.

anomalib 2.7's benchmark pipeline (``anomalib.pipelines.Benchmark``) has limits that keep it from comparing Dapo
with WinClip in one run:

* its job calls ``engine.fit(model, datamodule)``: the datamodule lands in the *train dataloaders* slot, and
  for zero- and few-shot models ``Engine.fit`` only validates, with the (empty) validation slot, so a model
  without validation data of its own fails (WinClip: "``val_dataloader`` must be implemented"). Dapo and
  MultiAds do run there (their ``val_dataloader`` is empty, and ``Engine.test`` calibrates on the target);
* it gathers the results of every job into columns named after the *first* job's keys, so jobs whose models
  take different arguments or log different metrics (Dapo and WinClip do both) lose the whole ``results.csv``;
* a job that fails leaves no row, and the command exits 0; a model that cannot be built (WinClip without its
  CLIP weights) stops the whole grid before any job runs, and no ``results.csv`` is written;
* datamodules come from ``anomalib.data`` only, so no typed datamodule (and no type metric) can be benchmarked.

:class:`DapoBenchmark` is the same pipeline, reading the same config and writing the same
``runs/benchmark/<time>/results.csv``, with a job that passes the datamodule by keyword (Lightning does the
same with a datamodule in the dataloader slot, so one-class models run exactly as in anomalib's job) and that
gathers the union of the columns (empty cells where a model has no such argument or metric). Each job builds
its model and datamodule itself (any importable datamodule class path too, e.g. ``anomalib_dapo.data.TypedMPDD``)
and reports a failure as a row with ``status: failed`` and the error; the run then raises
:class:`BenchmarkFailedError` naming them. Each row also has the test throughput. :class:`BenchmarkCommand` runs
it from the command line: ``dapo-benchmark --config X.yaml``, and ``anomalib benchmark --config X.yaml`` too
(the plugin registers it for anomalib's command, see :mod:`anomalib_dapo.compat`); a failed job ends the command
with exit status 1 and the errors as its last lines. anomalib's ``Benchmark`` class itself is left as it is.
"""

import logging
import time
from collections.abc import Generator, Sequence
from datetime import datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pandas as pd
from anomalib.data import AnomalibDataModule, get_datamodule
from anomalib.engine import Engine
from anomalib.models import get_model
from anomalib.pipelines.benchmark import Benchmark
from anomalib.pipelines.benchmark.generator import BenchmarkJobGenerator
from anomalib.pipelines.benchmark.job import BenchmarkJob
from anomalib.pipelines.components import Job, Runner
from anomalib.pipelines.components.base.pipeline import log_file
from anomalib.pipelines.components.utils import get_iterator_from_grid_dict
from anomalib.pipelines.types import PREV_STAGE_RESULT
from anomalib.utils.config import flatten_dict
from anomalib.utils.logging import hide_output, redirect_logs
from jsonargparse import Namespace
from lightning import Callback, LightningModule, Trainer, seed_everything
from lightning.pytorch.cli import instantiate_class

import anomalib_dapo.models  # noqa: F401  (names the plugin's models for config files, as the `anomalib` hook does)

logger = logging.getLogger(__name__)

OK, FAILED = "ok", "failed"
"""Values of the ``status`` column."""


class BenchmarkFailedError(RuntimeError):
    """One or more benchmark jobs failed; their rows in ``results.csv`` say ``status: failed``."""


class ThroughputTimer(Callback):
    """Images per second of the test loop alone (data loading included; calibration before it excluded)."""

    def __init__(self) -> None:
        self.images = 0
        self.seconds = float("nan")
        self._start = 0.0

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Start the clock."""
        del trainer, pl_module
        self.images, self._start = 0, time.perf_counter()

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, *args) -> None:
        """Count the batch's images."""
        del trainer, pl_module, outputs, args
        self.images += len(batch.image)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Stop the clock."""
        del trainer, pl_module
        self.seconds = time.perf_counter() - self._start

    def results(self) -> dict[str, float]:
        """The ``test_images``, ``test_seconds`` and ``throughput`` (images per second) columns."""
        return {"test_images": self.images, "test_seconds": self.seconds, "throughput": self.images / self.seconds}


def build_datamodule(config: dict) -> AnomalibDataModule:
    """Anomalib's datamodule of a config (``MVTecAD``, ``MPDD``, …), or any class path (the plugin's typed ones)."""
    if "." not in config["class_path"]:
        return get_datamodule(config)
    return instantiate_class((), {"class_path": config["class_path"], "init_args": config.get("init_args", {})})


class DapoBenchmarkJob(BenchmarkJob):
    """anomalib's benchmark job, building its own model and datamodule and reporting failures as rows.

    Args:
        accelerator: ``cpu`` or ``cuda``.
        model: The model's config (``class_path`` and ``init_args``), built when the job runs.
        data: The datamodule's config, built when the job runs.
        seed: Seed of the job.
        flat_cfg: The job's config as dotted keys, the first columns of its row.

    """

    def __init__(self, accelerator: str, model: dict, data: dict, seed: int, flat_cfg: dict) -> None:
        Job.__init__(self)  # anomalib's BenchmarkJob takes built models; these are built in ``run``
        self.accelerator = accelerator
        self.model_config = model
        self.data_config = data
        self.seed = seed
        self.flat_cfg = flat_cfg

    @hide_output
    def run(self, task_id: int | None = None) -> dict[str, Any]:
        """Build, fit (zero-/few-shot models: validate) and test the model; a failure is returned as a row.

        Args:
            task_id: Device index when jobs run in parallel.

        Returns:
            ``status`` and ``error``, the accelerator, durations, flattened config, test metrics and throughput.

        """
        row = {"status": OK, "error": "", "accelerator": self.accelerator}
        try:
            return {**row, **self._run(task_id)}
        except Exception as error:  # any failure of the job is its row's; the run ends with an error
            logger.exception("Benchmark job %s failed.", self.flat_cfg)
            return {**row, "status": FAILED, "error": f"{type(error).__name__}: {error}", **self.flat_cfg}

    def _run(self, task_id: int | None) -> dict[str, Any]:
        job_start_time = time.time()
        devices: str | list[int] = "auto" if task_id is None else [task_id]
        seed_everything(self.seed)
        model = get_model(self.model_config)
        datamodule = build_datamodule(self.data_config)
        throughput = ThroughputTimer()
        with TemporaryDirectory() as temp_dir:
            engine = Engine(
                accelerator=self.accelerator, devices=devices, default_root_dir=temp_dir, callbacks=[throughput]
            )
            fit_start_time = time.time()
            engine.fit(model, datamodule=datamodule)
            test_start_time = time.time()
            test_results = engine.test(model, datamodule=datamodule)
        job_end_time = time.time()
        durations = {
            "job_duration": job_end_time - job_start_time,
            "fit_duration": test_start_time - fit_start_time,
            "test_duration": job_end_time - test_start_time,
        }
        return {**durations, **self.flat_cfg, **test_results[0], **throughput.results()}

    @staticmethod
    def collect(results: list[dict[str, Any]]) -> pd.DataFrame:
        """One row per job over the union of their keys (columns in order of first appearance, NaN where absent)."""
        return pd.DataFrame.from_records(results)

    @staticmethod
    def save(result: pd.DataFrame) -> None:
        """Print the table and write ``runs/benchmark/<date-time>/results.csv``, as anomalib does, naming the file."""
        BenchmarkJob._print_tabular_results(result)
        path = Path("runs") / BenchmarkJob.name / datetime.now().strftime("%Y-%m-%d-%H_%M_%S") / "results.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        result.to_csv(path, index=False)
        print(f"Benchmark results: {path}")


class DapoBenchmarkJobGenerator(BenchmarkJobGenerator):
    """The job generator of anomalib (same grid expansion) yielding jobs that build their model themselves."""

    @property
    def job_class(self) -> type:
        """The job whose ``collect`` and ``save`` the runners call."""
        return DapoBenchmarkJob

    def generate_jobs(
        self,
        args: dict,
        previous_stage_result: PREV_STAGE_RESULT,
    ) -> Generator[DapoBenchmarkJob, None, None]:
        """Expand the grid of ``args`` into jobs, as anomalib does; nothing is built yet."""
        del previous_stage_result
        for container in get_iterator_from_grid_dict(args):
            yield DapoBenchmarkJob(
                accelerator=self.accelerator,
                model=container["model"],
                data=container["data"],
                seed=container["seed"],
                flat_cfg=flatten_dict(container),
            )


class DapoBenchmark(Benchmark):
    """anomalib's benchmark pipeline (same config, runners and ``results.csv``) with :class:`DapoBenchmarkJob`."""

    @staticmethod
    def _setup_runners(args: dict) -> list[Runner]:
        """The runners of anomalib (serial, or parallel over several GPUs), each generating our jobs."""
        runners = Benchmark._setup_runners(args)
        for runner in runners:
            runner.generator = DapoBenchmarkJobGenerator(runner.generator.accelerator)
        return runners

    def run(self, args: Namespace | None = None) -> list[pd.DataFrame]:
        """Run every runner's grid and return their results.

        Raises:
            BenchmarkFailedError: A job failed; every job still has its row (``status``, ``error``).

        """
        pipeline_args = self._get_args(args)
        runners = self._setup_runners(pipeline_args)
        redirect_logs(log_file)
        results: list[pd.DataFrame] = []
        for runner in runners:
            job_args = pipeline_args.get(runner.generator.job_class.name) or {}
            results.append(runner.run(job_args, results[-1] if results else None))
        failed = pd.concat(results)
        failed = failed[failed.status == FAILED]
        if len(failed):
            lines = [f"- {_job_name(row)}: {' '.join(row['error'].split())}" for _, row in failed.iterrows()]
            msg = (
                f"{len(failed)} of {sum(map(len, results))} benchmark jobs failed (rows with status 'failed' in "
                f"results.csv; tracebacks in {log_file}):\n" + "\n".join(lines)
            )
            raise BenchmarkFailedError(msg)
        return results


def _job_name(row: pd.Series) -> str:
    """``Model on Datamodule/category`` of a result row."""
    data = f"{row.get('data.class_path')}/{row.get('data.init_args.category', '')}".rstrip("/")
    return f"{row.get('model.class_path')} on {data}"


class BenchmarkCommand(DapoBenchmark):
    """Benchmark a grid of models and datamodules: a row per job in results.csv; exit status 1 if a job failed.

    :class:`DapoBenchmark` as a command (``dapo-benchmark``, and ``anomalib benchmark``, whose help shows the first
    line above): once ``results.csv`` has every job's row, a failed job ends the program with exit status 1 and
    the message of :class:`BenchmarkFailedError` (one line per failed job) as its last lines.
    """

    def run(self, args: Namespace | None = None) -> list[pd.DataFrame]:
        """Run the grid as :meth:`DapoBenchmark.run` does.

        Raises:
            SystemExit: A job failed; its message names each failed job and its error.

        """
        try:
            return super().run(args)
        except BenchmarkFailedError as error:
            raise SystemExit(str(error)) from error


def main(argv: Sequence[str] | None = None) -> None:
    """``dapo-benchmark --config X.yaml``: run the benchmark grid of an ``anomalib benchmark`` config.

    Exits with status 1, naming each failed job and its error, when a job failed.
    """
    BenchmarkCommand().run(BenchmarkCommand.get_parser().parse_args(argv))
