from pathlib import Path

import pytest
import yaml
from anomalib.data import AnomalibDataModule

from anomalib_dapo import knowledge
from anomalib_dapo.data.cross import CrossDataset

CONFIGS = Path(__file__).parents[2] / "configs"
TRANSFERS = {
    "mvtec_to_visa": ("mvtec_ad", "visa"),
    "mvtec_to_mpdd": ("mvtec_ad", "mpdd"),
    "mvtec_to_realiad": ("mvtec_ad", "real_iad"),
    "mvtec_to_mad_sim": ("mvtec_ad", "mad_sim"),
    "mvtec_to_mad_real": ("mvtec_ad", "mad_real"),
    "visa_to_mvtec": ("visa", "mvtec_ad"),
}


@pytest.mark.parametrize("path", sorted((CONFIGS / "data").glob("*.yaml")), ids=lambda path: path.stem)
def test_data_configs_instantiate(path):
    datamodule = AnomalibDataModule.from_config(path)
    assert (
        type(datamodule).__module__ + "." + type(datamodule).__name__ == yaml.safe_load(path.read_text())["class_path"]
    )
    assert datamodule.train_batch_size == 8


@pytest.mark.parametrize("transfer", TRANSFERS)
def test_transfer_configs_follow_the_paper(tmp_path, transfer):
    config = yaml.safe_load((CONFIGS / f"dapo_{transfer}.yaml").read_text())
    assert set(config) == {"seed_everything", "trainer", "model", "data"}
    assert config["model"]["class_path"] == "anomalib_dapo.Dapo"
    assert config["model"]["init_args"]["image_size"] == 518
    assert config["trainer"]["max_epochs"] == 2
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(config["data"]))
    datamodule = AnomalibDataModule.from_config(tmp_path / "data.yaml")
    assert isinstance(datamodule, CrossDataset)
    assert (datamodule.source, datamodule.target) == TRANSFERS[transfer]
    assert datamodule.category in knowledge.categories(datamodule.target)
    assert datamodule.train_batch_size == datamodule.eval_batch_size == 8
