"""The shipped MultiAds and peer-benchmark configs name real models with arguments they accept."""

import inspect
from pathlib import Path

import pytest
import yaml
from anomalib.models.components import AnomalibModule
from anomalib.models.image import WinClip

from anomalib_dapo import Dapo, MultiAds

CONFIGS = Path(__file__).parents[3] / "configs"
MODELS = {"Dapo": Dapo, "MultiAds": MultiAds, "WinClip": WinClip, "anomalib_dapo.MultiAds": MultiAds}


def _check(model: dict) -> None:
    cls = MODELS[model["class_path"]]
    inspect.signature(cls).bind(**model.get("init_args", {}))  # raises on an unknown argument


def test_peer_benchmark_compares_dapo_zero_and_few_shot_multiads_and_winclip():
    grid = yaml.safe_load((CONFIGS / "benchmark" / "peers.yaml").read_text())["benchmark"]["model"]["grid"]
    anomalib_names = {cls.__name__ for cls in AnomalibModule.__subclasses__()}  # how the benchmark resolves them
    for model in grid:
        _check(model)
        assert model["class_path"] in anomalib_names
    runs = [(model["class_path"], model.get("init_args", {}).get("k_shot", 0)) for model in grid]
    assert runs == [("Dapo", 0), ("Dapo", 4), ("MultiAds", 0), ("WinClip", 0), ("WinClip", 4)]


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("multiads*.yaml")), ids=lambda path: path.name)
def test_multiads_configs_name_its_arguments(path):
    _check(yaml.safe_load(path.read_text())["model"])
