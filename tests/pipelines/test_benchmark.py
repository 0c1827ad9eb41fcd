"""Dapo in anomalib's benchmark: the stock `anomalib benchmark` command, and `dapo-benchmark` for mixed grids.

Through the console scripts (`anomalib benchmark`, `dapo-benchmark`: the same pipeline class) a failing job marks its
row failed and the run exits 1; anomalib's own `Benchmark` pipeline, called from Python, only logs it.
"""

import logging
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import anomalib.cli.cli  # the CLI: once it is loaded, the plugin's hook names its benchmark command
import anomalib.models
import pandas as pd
import pytest
import torch
import yaml
from anomalib import LearningType
from anomalib.cli.pipelines import PIPELINE_REGISTRY
from anomalib.models.components import AnomalibModule
from anomalib.pipelines import Benchmark
from anomalib.post_processing import PostProcessor
from jsonargparse import Namespace
from lightning.pytorch import Trainer

from anomalib_dapo import Dapo
from anomalib_dapo.pipelines import DapoBenchmark
from anomalib_dapo.pipelines.benchmark import main
from console import anomalib_in_process

CONFIG = Path(__file__).parents[2] / "configs" / "benchmark" / "dapo_tiny.yaml"
PADIM = {
    "class_path": "Padim",
    "init_args": {
        "backbone": "resnet18",
        "pre_trained": False,
        "layers": ["layer1"],
        "n_features": 32,
        "visualizer": False,
    },
}
"""A small Padim that needs no downloaded weights (and, as Dapo in the config, writes no images)."""
STOCK = ("MVTecAD", "MPDD")
"""anomalib's datamodules that read an MVTec-AD layout."""
OFFLINE = {"HF_HUB_OFFLINE": "1"}
"""With an empty Hugging Face cache (``HF_HOME``), WinClip cannot get its CLIP weights and fails to build."""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, synthetic) -> Path:
    """What `make demo` leaves for configs/benchmark/dapo_tiny.yaml: synthetic data and a tiny Dapo checkpoint."""
    root = tmp_path_factory.mktemp("bench")
    model_args = yaml.safe_load(CONFIG.read_text())["benchmark"]["model"]["init_args"]
    weights = root / model_args.pop("weights")
    model_args.pop("image_score")
    (root / "datasets/SyntheticDefects").mkdir(parents=True)
    target = synthetic(categories=("disc",), seed=1, n_train=8, n_test_good=6, n_test_per_defect=1)
    (root / "datasets/SyntheticDefects/target").symlink_to(target)
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(Dapo(**model_args))
    weights.parent.mkdir(parents=True)
    trainer.save_checkpoint(weights)
    return root


def _results(root: Path) -> pd.DataFrame:
    (path,) = (root / "runs" / "benchmark").glob("*/results.csv")
    return pd.read_csv(path)


class Brightness(AnomalibModule):
    """A zero-shot model with no validation data of its own, like WinClip: the anomaly map is the brightness."""

    def __init__(self) -> None:
        super().__init__(visualizer=False)

    @property
    def learning_type(self) -> LearningType:
        return LearningType.ZERO_SHOT

    @property
    def trainer_arguments(self) -> dict:
        return {}

    @staticmethod
    def configure_post_processor() -> PostProcessor:
        return PostProcessor()

    def configure_optimizers(self) -> None:
        return None

    def validation_step(self, batch, *args, **kwargs):
        del args, kwargs
        anomaly_map = batch.image.mean(dim=1)
        return batch.update(anomaly_map=anomaly_map, pred_score=torch.amax(anomaly_map, dim=(1, 2)))

    test_step = validation_step


@pytest.fixture
def restored_logging():
    """The benchmark pipeline points every logger at its log file; give the other tests their handlers back."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]
    handlers = {logger: list(logger.handlers) for logger in loggers}
    yield
    logging.captureWarnings(False)
    for logger in [logging.getLogger(), *(logging.getLogger(name) for name in logging.root.manager.loggerDict)]:
        logger.handlers = handlers.get(logger, [])


def test_anomalib_benchmark_runs_the_shipped_configs_dapo_variants(workspace, restored_logging):
    """configs/benchmark/dapo_tiny.yaml as it is (its paths are relative to the folder `make demo` writes in),
    through what the `anomalib benchmark` console script runs (the console script itself: the test below)."""
    anomalib_in_process("benchmark", "--config", str(CONFIG), cwd=workspace)
    results = _results(workspace)
    assert sorted(results["model.init_args.image_score"]) == ["fusion", "global"]
    assert set(results["data.init_args.category"]) == {"disc"}
    for metric in ("image_AUROC", "image_AUPR", "pixel_AUROC", "pixel_AUPRO"):
        assert results[metric].between(0, 1).all(), metric


def test_dapo_benchmark_runs_zero_shot_models_and_mixed_grids(workspace, tmp_path, monkeypatch, restored_logging):
    config = yaml.safe_load(CONFIG.read_text())
    dapo = config["benchmark"]["model"]
    dapo["init_args"]["image_score"] = "global"
    dapo["init_args"]["weights"] = str(workspace / dapo["init_args"]["weights"])
    config["benchmark"]["model"] = {"grid": [dapo, {"class_path": "Brightness"}]}
    config["benchmark"]["data"]["init_args"]["root"] = str(workspace / "datasets/SyntheticDefects/target")
    (tmp_path / "mixed.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setattr(anomalib.models, "Brightness", Brightness, raising=False)  # names it for get_model
    args = Namespace(config=str(tmp_path / "mixed.yaml"))

    for folder in ("stock", "ours"):
        (tmp_path / folder).mkdir()
    monkeypatch.chdir(tmp_path / "stock")
    Benchmark().run(args)
    assert list(_results(tmp_path / "stock")["model.class_path"]) == ["Dapo"]  # Brightness's job failed

    monkeypatch.chdir(tmp_path / "ours")
    DapoBenchmark().run(args)
    results = _results(tmp_path / "ours").set_index("model.class_path")
    assert list(results.index) == ["Dapo", "Brightness"]
    assert results["image_AUROC"].between(0, 1).all()
    assert results.loc["Brightness", "image_F1Score"] >= 0  # the metrics of each model's own evaluator
    assert pd.isna(results.loc["Brightness", "image_AUPR"])
    assert pd.isna(results.loc["Brightness", "model.init_args.weights"])


@pytest.mark.slow
def test_anomalib_benchmark_rows_for_every_model_and_a_failed_job_marked(workspace, tmp_path, synthetic):
    """Dapo (learned weights), Padim and WinClip on anomalib's MVTecAD and MPDD and the plugin's typed SyntheticDefects,
    through anomalib's own `anomalib benchmark` console script.

    WinClip needs open_clip's ViT-B-16-plus-240 weights from the Hugging Face hub; offline with an empty cache it
    cannot be built: its rows must say so, the other rows must be there, and the command must exit non-zero.
    `dapo-benchmark` runs the same pipeline class (the test below).
    """
    config = yaml.safe_load(CONFIG.read_text())
    dapo = config["benchmark"]["model"]
    dapo["init_args"].pop("image_score")
    dapo["init_args"]["weights"] = str(workspace / dapo["init_args"]["weights"])
    config["benchmark"]["model"] = {"grid": [dapo, PADIM, {"class_path": "WinClip"}]}
    root = str(workspace / "datasets/SyntheticDefects/target")  # MVTec-AD's layout, which is MPDD's too
    loader = {"eval_batch_size": 16, "train_batch_size": 8, "num_workers": 0}
    # the typed datamodule finds its (every) product written with these sizes
    sizes = {"image_size": 64, "n_train": 2, "n_test_good": 2, "n_test_per_defect": 1}
    typed_root = synthetic(**sizes)
    stock = [{"class_path": name, "init_args": {"root": root, "category": "disc", **loader}} for name in STOCK]
    config["benchmark"]["data"] = {
        "grid": [
            *stock,
            {
                "class_path": "anomalib_dapo.data.SyntheticDefects",
                "init_args": {"root": str(typed_root), "category": "disc", **sizes, **loader},
            },
        ]
    }
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, **OFFLINE, "HF_HOME": str(tmp_path / "empty-hf-cache")}
    command = [str(Path(sys.executable).parent / "anomalib"), "benchmark", "--config", str(tmp_path / "grid.yaml")]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env, check=False)

    assert run.returncode == 1, run.stderr[-3000:]
    last_lines = run.stderr.strip().splitlines()[-4:]  # the summary: one line per failed job
    assert last_lines[0].startswith("3 of 9 benchmark jobs failed"), last_lines
    failed_jobs = [line.split(":")[0] for line in last_lines[1:]]
    assert failed_jobs == [
        "- WinClip on MVTecAD/disc",
        "- WinClip on MPDD/disc",
        "- WinClip on anomalib_dapo.data.SyntheticDefects/disc",
    ]
    assert all("laion400m_e31" in line for line in last_lines[1:]), last_lines
    results = _results(tmp_path)
    assert len(results) == 9
    by_model = results.groupby("model.class_path").status.apply(set).to_dict()
    assert by_model == {"Dapo": {"ok"}, "Padim": {"ok"}, "WinClip": {"failed"}}
    assert results[results.status == "failed"].error.str.contains("laion400m_e31").all()
    ok = results[results.status == "ok"]
    for metric in ("image_AUROC", "pixel_AUROC", "throughput"):
        assert ok[metric].notna().all() and (ok[metric] >= 0).all(), metric
    on_disk = {
        **dict.fromkeys(STOCK, len(list(Path(root, "disc/test").rglob("*.png")))),
        "anomalib_dapo.data.SyntheticDefects": len(list((typed_root / "disc/test").rglob("*.png"))),
    }
    assert ok.groupby("data.class_path").test_images.apply(set).to_dict() == {k: {n} for k, n in on_disk.items()}
    typed = ok[(ok["model.class_path"] == "Dapo") & ~ok["data.class_path"].isin(STOCK)]
    assert typed["pixel_TypeAUROC"].between(0, 1).all()  # type metrics where the data has types only
    assert ok[ok["data.class_path"].isin(STOCK)]["pixel_TypeAUROC"].isna().all()


class Unbuildable(Brightness):
    """A model that cannot be built, as WinClip without its weights."""

    def __init__(self) -> None:
        msg = "no weights offline"
        raise OSError(msg)


def test_dapo_benchmark_is_the_command_anomalib_benchmark_runs_and_marks_a_failed_job(
    workspace, tmp_path, monkeypatch, restored_logging
):
    """The `dapo-benchmark` console script calls :func:`main`, which runs the pipeline class that anomalib's CLI
    registry names for `anomalib benchmark` (run above through its console script); a quick run of it."""
    (script,) = entry_points(group="console_scripts", name="dapo-benchmark")
    assert script.load() is main
    pipeline = PIPELINE_REGISTRY["benchmark"]  # once anomalib's CLI is loaded (the plugin's hook names it then)
    assert (pipeline.__module__, pipeline.__name__) == ("anomalib_dapo.pipelines.benchmark", "BenchmarkCommand")

    config = yaml.safe_load(CONFIG.read_text())
    config["benchmark"]["model"] = {"grid": [{"class_path": "Brightness"}, {"class_path": "Unbuildable"}]}
    config["benchmark"]["data"]["init_args"]["root"] = str(workspace / "datasets/SyntheticDefects/target")
    (tmp_path / "failing.yaml").write_text(yaml.safe_dump(config))
    for model in (Brightness, Unbuildable):
        monkeypatch.setattr(anomalib.models, model.__name__, model, raising=False)  # names it for get_model
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:  # BenchmarkCommand's, which the pipeline itself does not raise
        main(["--config", str(tmp_path / "failing.yaml")])
    lines = str(exited.value.code).splitlines()  # what the console script prints last, exiting with status 1
    assert lines[0].startswith("1 of 2 benchmark jobs failed"), lines
    assert lines[1:] == ["- Unbuildable on MVTecAD/disc: OSError: no weights offline"]
    assert list(_results(tmp_path).status) == ["ok", "failed"]
