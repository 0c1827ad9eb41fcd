"""anomalib's benchmark pipeline, able to run zero-/few-shot models and to mix models with different arguments.

``anomalib benchmark --config X.yaml`` (anomalib 2.7) has two limits that keep it from comparing Dapo with
WinClip in one run:

* its job calls ``engine.fit(model, datamodule)``: the datamodule lands in the *train dataloaders* slot, and
  for zero- and few-shot models ``Engine.fit`` only validates, with the (empty) validation slot, so a model
  without validation data of its own fails (WinClip: "``val_dataloader`` must be implemented"). Dapo and
  MultiAds do run there (their ``val_dataloader`` is empty, and ``Engine.test`` calibrates on the target);
* it gathers the results of every job into columns named after the *first* job's keys, so jobs whose models
  take different arguments or log different metrics (Dapo and WinClip do both) lose the whole ``results.csv``.

:class:`DapoBenchmark` is the same pipeline, reading the same config and writing the same
``runs/benchmark/<time>/results.csv``, with a job that passes the datamodule by keyword (Lightning does the
same with a datamodule in the dataloader slot, so one-class models run exactly as in anomalib's job) and that
gathers the union of the columns (empty cells where a model has no such argument or metric). anomalib's own
``benchmark`` command is left as it is. Run it as ``dapo-benchmark --config X.yaml``.
"""

import time
from collections.abc import Generator
from tempfile import TemporaryDirectory
from typing import Any

import pandas as pd
from anomalib.engine import Engine
from anomalib.pipelines.benchmark import Benchmark
from anomalib.pipelines.benchmark.generator import BenchmarkJobGenerator
from anomalib.pipelines.benchmark.job import BenchmarkJob
from anomalib.pipelines.components import Runner
from anomalib.pipelines.types import PREV_STAGE_RESULT
from anomalib.utils.logging import hide_output
from lightning import seed_everything

import anomalib_dapo.models  # noqa: F401  (names the plugin's models for config files, as the `anomalib` hook does)


class DapoBenchmarkJob(BenchmarkJob):
    """anomalib's benchmark job, passing the datamodule by keyword and gathering heterogeneous results."""

    @hide_output
    def run(self, task_id: int | None = None) -> dict[str, Any]:
        """Fit (zero-/few-shot models: validate) and test the model on the datamodule; time both.

        Args:
            task_id: Device index when jobs run in parallel.

        Returns:
            The accelerator, durations, flattened config and test metrics of the job, as anomalib's job does.

        """
        job_start_time = time.time()
        devices: str | list[int] = "auto" if task_id is None else [task_id]
        with TemporaryDirectory() as temp_dir:
            seed_everything(self.seed)
            engine = Engine(accelerator=self.accelerator, devices=devices, default_root_dir=temp_dir)
            fit_start_time = time.time()
            engine.fit(self.model, datamodule=self.datamodule)
            test_start_time = time.time()
            test_results = engine.test(self.model, datamodule=self.datamodule)
        job_end_time = time.time()
        durations = {
            "job_duration": job_end_time - job_start_time,
            "fit_duration": test_start_time - fit_start_time,
            "test_duration": job_end_time - test_start_time,
        }
        return {"accelerator": self.accelerator, **durations, **self.flat_cfg, **test_results[0]}

    @staticmethod
    def collect(results: list[dict[str, Any]]) -> pd.DataFrame:
        """One row per job over the union of their keys (columns in order of first appearance, NaN where absent)."""
        return pd.DataFrame.from_records(results)


class DapoBenchmarkJobGenerator(BenchmarkJobGenerator):
    """The job generator of anomalib (same grid expansion, models and datamodules) yielding our jobs."""

    @property
    def job_class(self) -> type:
        """The job whose ``collect`` and ``save`` the runners call."""
        return DapoBenchmarkJob

    def generate_jobs(
        self,
        args: dict,
        previous_stage_result: PREV_STAGE_RESULT,
    ) -> Generator[DapoBenchmarkJob, None, None]:
        """Expand the grid of ``args`` into jobs, as anomalib does."""
        for job in super().generate_jobs(args, previous_stage_result):
            yield DapoBenchmarkJob(
                accelerator=job.accelerator,
                model=job.model,
                datamodule=job.datamodule,
                seed=job.seed,
                flat_cfg=job.flat_cfg,
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


def main() -> None:
    """``dapo-benchmark --config X.yaml``: run the benchmark grid of an ``anomalib benchmark`` config."""
    DapoBenchmark().run()
