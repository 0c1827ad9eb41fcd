"""The stock ``anomalib`` console script: fit -> test (zero-shot, two datamodules) -> predict, in subprocesses."""

import re
import subprocess
import sys

import pytest

from anomalib_dapo.data import generate_synthetic_dataset
from console import anomalib

MODEL = [
    "--model", "Dapo",  # the short name resolves through the plugin's registration, with no import by the user
    "--model.backbone", "dapo-tiny",
    "--model.pretrained", "null",
    "--model.image_size", "64",
    "--model.text_depth", "4",
    "--model.adapter_layers", "[2, 4]",
    "--model.num_prompts", "2",
]  # fmt: skip


def metric(output: str, name: str) -> float:
    match = re.search(rf"{name}\s*│\s*([0-9.]+)", output)
    assert match, f"{name} not reported:\n{output[-3000:]}"
    return float(match.group(1))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    generate_synthetic_dataset(root / "source", image_size=64, seed=0, n_test_per_defect=3, n_test_good=3)
    generate_synthetic_dataset(root / "target", image_size=64, seed=1, n_test_per_defect=3, n_test_good=3)
    return root


def test_fit_test_predict_through_the_console_script(data):
    cross = [
        "--data", "anomalib_dapo.data.CrossDataset",
        "--data.source", "synthetic", "--data.source_root", str(data / "source"),
        "--data.target", "synthetic", "--data.target_root", str(data / "target"),
        "--data.target_category", "tile",
    ]  # fmt: skip
    trainer = ["--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--default_root_dir", str(data / "results")]
    anomalib("fit", *MODEL, *cross, *trainer, cwd=data)
    weights = data / "results/Dapo/CrossDataset/tile/latest/weights/lightning/model.ckpt"
    assert weights.is_file()

    # The config.yaml that training saved loads through anomalib's own get_model (as its lightning_inference tool
    # does), in a fresh interpreter where nothing imported the plugin.
    config = weights.parents[2] / "config.yaml"
    code = (
        "import sys, yaml; from anomalib.models import get_model; "
        "print(type(get_model(yaml.safe_load(open(sys.argv[1]))['model'])).__name__)"
    )
    loaded = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True, check=False)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert loaded.stdout.strip().splitlines()[-1] == "Dapo"

    # Zero-shot on the plugin's typed datamodule: binary and multi-type metrics.
    typed = [
        "--data",
        "anomalib_dapo.data.SyntheticDefects",
        "--data.root",
        str(data / "target"),
        "--data.category",
        "disc",
    ]
    typed += ["--data.seed", "1", "--data.image_size", "64", "--data.n_test_per_defect", "3", "--data.n_test_good", "3"]
    output = anomalib("test", *MODEL, "--model.weights", str(weights), *typed, *trainer, cwd=data)
    assert 0.0 <= metric(output, "image_AUROC") <= 1.0
    assert 0.0 <= metric(output, "pixel_TypeAUROC") <= 1.0
    assert "Dapo scores 4 defect types: scratch, hole, stain, missing" in output

    # Zero-shot on anomalib's own MVTecAD datamodule (the synthetic set has its layout): binary metrics.
    stock = ["--data", "MVTecAD", "--data.root", str(data / "target"), "--data.category", "grid"]
    output = anomalib(
        "test",
        *MODEL,
        "--model.weights",
        str(weights),
        "--model.defect_types",
        "[scratch, stain]",
        *stock,
        *trainer,
        cwd=data,
    )
    assert 0.0 <= metric(output, "pixel_AUROC") <= 1.0
    assert "Dapo scores 2 defect types: scratch, stain" in output

    # Predict on a bare folder, with a vocabulary given by text.
    folder = data / "target/tile/test/hole"
    anomalib(
        "predict",
        *MODEL,
        "--model.weights",
        str(weights),
        "--model.defect_types",
        "[hole, rust]",
        "--data",
        str(folder),
        *trainer[:-2],
        "--default_root_dir",
        str(data / "predict"),
        cwd=data,
    )
    written = sorted((data / "predict").rglob("*.png"))
    assert len(written) == len(list(folder.glob("*.png")))


@pytest.mark.slow
def test_predict_one_image_file_with_named_defect_types(tmp_path, tiny_checkpoint):
    """README, "From one image to score, map and defect types" (on the command line), with the tiny backbone."""
    from PIL import Image

    Image.new("RGB", (96, 80), (120, 90, 60)).save(tmp_path / "part.png")
    output = anomalib(
        "predict", *MODEL, "--model.weights", str(tiny_checkpoint), "--model.defect_types", "[scratch, dent]",
        "--data", str(tmp_path / "part.png"), "--trainer.accelerator", "cpu", "--default_root_dir", str(tmp_path),
        cwd=tmp_path,
    )  # fmt: skip
    assert "Dapo scores 2 defect types: scratch, dent" in output
    (picture,) = (tmp_path / "Dapo").rglob("part.png")
    assert Image.open(picture).width > 96  # anomalib's panels, the type panels and their legend


@pytest.mark.slow
def test_a_seed_in_the_config_makes_training_reproducible(data):
    """anomalib 2.7's CLI ignores ``seed_everything``; the plugin applies it: two runs learn bit-identical tensors."""
    import torch

    from anomalib_dapo.models.components.checkpoint import safe_globals

    cross = [
        "--data", "anomalib_dapo.data.CrossDataset",
        "--data.source", "synthetic", "--data.source_root", str(data / "source"),
        "--data.target", "synthetic", "--data.target_root", str(data / "target"),
        "--data.target_category", "tile", "--data.train_batch_size", "4",
    ]  # fmt: skip
    learned = []
    for run in ("a", "b"):
        root = data / f"seeded_{run}"
        trainer = ["--trainer.max_epochs", "1", "--trainer.accelerator", "cpu", "--default_root_dir", str(root)]
        anomalib("fit", *MODEL, *cross, *trainer, "--seed_everything", "7", cwd=data)
        path = root / "Dapo/CrossDataset/tile/latest/weights/lightning/model.ckpt"
        with torch.serialization.safe_globals(safe_globals()):
            learned.append(torch.load(path, weights_only=True)["state_dict"])
    assert learned[0].keys() == learned[1].keys() and learned[0]
    assert all(torch.equal(learned[0][name], learned[1][name]) for name in learned[0])


@pytest.mark.slow
def test_a_reordered_vocabulary_gives_the_same_type_metrics_through_anomalib_test(data, tiny_checkpoint):
    """``--model.defect_types`` is matched to the data's types by name: its order changes no number."""
    typed = ["--data", "anomalib_dapo.data.SyntheticDefects", "--data.root", str(data / "target")]
    typed += ["--data.category", "disc", "--data.seed", "1", "--data.image_size", "64"]
    typed += ["--data.n_test_per_defect", "3", "--data.n_test_good", "3"]
    trainer = ["--trainer.accelerator", "cpu", "--default_root_dir", str(data / "reordered")]
    names = ("pixel_TypeAUROC", "pixel_TypeAveragePrecision", "pixel_TypeF1Score", "image_MultiLabelF1")
    reported = []
    for order in ("[scratch, hole, stain, missing]", "[missing, stain, scratch, hole]"):
        output = anomalib(
            "test", *MODEL, "--model.weights", str(tiny_checkpoint), "--model.defect_types", order, *typed, *trainer,
            cwd=data,
        )  # fmt: skip
        reported.append({name: metric(output, name) for name in names})
    assert reported[0] == reported[1]
