"""TypeVisualizer: anomalib's pictures plus type panels and a legend, by hand and through test and predict runs."""

from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.data import ImageItem
from anomalib.engine import Engine
from anomalib.visualization import ImageVisualizer
from lightning.pytorch import seed_everything
from PIL import Image

from anomalib_dapo.data.dataclasses import TypedImageItem
from anomalib_dapo.data.synthetic import SyntheticDefects
from anomalib_dapo.models.dapo.lightning_model import Dapo
from anomalib_dapo.visualization import TypeVisualizer, type_colour
from anomalib_dapo.visualization.visualizer import new_picture_folder
from tiny import SYNTHETIC

PANEL = 256  # anomalib's default field size
TITLE_BAND = 48  # rows of a panel that may hold its title


def _panel(picture: np.ndarray, index: int) -> np.ndarray:
    """Panel ``index`` of a picture's first row, below the title."""
    start = (index % (picture.shape[1] // PANEL)) * PANEL
    return picture[TITLE_BAND:PANEL, start : start + PANEL].astype(np.float64)


def _types_in_panel(panel: np.ndarray, image: np.ndarray, alpha: float, candidates: range) -> set[int]:
    """The types whose blended colour a type panel shows; every pixel that differs from the image must be one."""
    changed = (panel != image).any(axis=-1)
    explained = np.zeros_like(changed)
    found = set()
    for index in candidates:
        expected = ((1 - alpha) * image + alpha * np.array(type_colour(index))).round()
        match = changed & (np.abs(panel - expected) <= 1).all(axis=-1)
        explained |= match
        if match.any():
            found.add(index)
    assert np.array_equal(explained, changed)
    return found


def _legend_colours(picture: np.ndarray) -> set[tuple[int, ...]]:
    return {tuple(pixel) for pixel in picture[PANEL:].reshape(-1, 3).tolist()}


def _tiny_dapo(tiny_kwargs: dict, **kwargs) -> Dapo:
    """The tiny Dapo with its default visualizer, seeded so its random predictions are the same every run."""
    seed_everything(0)
    return Dapo(**{**tiny_kwargs, "visualizer": True, **kwargs})


def test_dapo_uses_the_type_visualizer():
    assert isinstance(Dapo.configure_visualizer(), TypeVisualizer)


def test_picture_is_anomalib_s_with_both_type_panels_and_a_legend():
    type_mask = torch.zeros(16, 16, dtype=torch.long)
    type_mask[8:14, 2:8] = 2
    item = TypedImageItem(
        image=torch.rand(3, 32, 32),
        gt_mask=type_mask > 0,
        anomaly_map=torch.rand(32, 32),
        pred_mask=torch.rand(32, 32) > 0.5,
        gt_type_mask=type_mask,
        pred_type_mask=torch.zeros_like(type_mask),
    )
    visualizer = TypeVisualizer(vocabulary=("scratch", "hole"))
    picture = np.asarray(visualizer.visualize(item))
    stock = np.asarray(ImageVisualizer().visualize(item))
    assert picture.shape[1] == stock.shape[1] + 2 * PANEL
    assert np.array_equal(picture[:PANEL, : stock.shape[1]], stock)
    image = _panel(picture, 0)
    assert _types_in_panel(_panel(picture, -2), image, visualizer.type_alpha, range(1, 3)) == {2}
    assert np.array_equal(_panel(picture, -1), image)  # nothing predicted
    assert type_colour(2) in _legend_colours(picture)
    assert type_colour(1) not in _legend_colours(picture)


def test_items_without_type_masks_get_anomalib_s_picture_alone():
    item = ImageItem(image=torch.rand(3, 32, 32), anomaly_map=torch.rand(32, 32))
    assert np.array_equal(np.asarray(TypeVisualizer().visualize(item)), np.asarray(ImageVisualizer().visualize(item)))


def test_test_run_saves_ground_truth_types_where_anomalib_saves_its_images(tmp_path, tiny_kwargs, synthetic):
    datamodule = SyntheticDefects(root=synthetic(), category="disc", **SYNTHETIC)
    model = _tiny_dapo(tiny_kwargs)
    Engine(default_root_dir=tmp_path, accelerator="cpu", logger=False, enable_progress_bar=False).test(
        model, datamodule=datamodule
    )
    vocabulary = model.model.vocabulary
    assert model.visualizer.vocabulary == vocabulary
    images = tmp_path / "Dapo" / "SyntheticDefects" / "disc" / "latest" / "images"
    assert sorted(path.parent.name for path in images.glob("*/000.png")) == sorted(["good", *vocabulary])
    for defect in vocabulary:
        picture = np.asarray(Image.open(images / defect / "000.png").convert("RGB"))
        index = vocabulary.index(defect) + 1
        types = _types_in_panel(_panel(picture, -2), _panel(picture, 0), model.visualizer.type_alpha, range(1, 5))
        assert types == {index}
        assert type_colour(index) in _legend_colours(picture)


def test_predict_run_on_an_image_folder_saves_predicted_types(tmp_path: Path, tiny_kwargs: dict):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(2):
        pixels = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    model = _tiny_dapo(tiny_kwargs, defect_types=["scratch", "hole"])
    Engine(default_root_dir=tmp_path / "results", accelerator="cpu", logger=False, enable_progress_bar=False).predict(
        model, data_path=folder
    )
    saved = sorted((tmp_path / "results" / "Dapo" / "latest" / "images" / "images").glob("*.png"))
    assert [path.name for path in saved] == ["0.png", "1.png"]
    for path in saved:
        picture = np.asarray(Image.open(path).convert("RGB"))
        assert picture.shape[1] == 4 * PANEL  # image, anomaly map, predicted mask, predicted types: no ground truth
        types = _types_in_panel(_panel(picture, -1), _panel(picture, 0), model.visualizer.type_alpha, range(1, 3))
        assert types, "the random tiny model predicts some types"
        assert all(type_colour(index) in _legend_colours(picture) for index in types)


def test_a_second_run_writes_new_pictures_and_keeps_the_first(tmp_path: Path, tiny_kwargs: dict):
    folder = tmp_path / "input"
    folder.mkdir()
    Image.fromarray(np.full((64, 64, 3), 128, dtype=np.uint8)).save(folder / "0.png")
    model = _tiny_dapo(tiny_kwargs, defect_types=["scratch"])
    results = tmp_path / "results"
    first = results / "Dapo" / "latest" / "images" / "input" / "0.png"
    for run in range(2):
        engine = Engine(default_root_dir=results, accelerator="cpu", logger=False, enable_progress_bar=False)
        engine.predict(model, data_path=folder)
        if run == 0:
            first_bytes, first_time = first.read_bytes(), first.stat().st_mtime_ns
    assert (results / "Dapo" / "latest" / "images_2" / "input" / "0.png").is_file()
    assert first.read_bytes() == first_bytes
    assert first.stat().st_mtime_ns == first_time


def test_a_given_output_folder_is_used_as_anomalib_does(tmp_path: Path):
    visualizer = TypeVisualizer(output_dir=tmp_path / "mine")
    assert not visualizer.versioned
    assert new_picture_folder(tmp_path) == tmp_path / "images"
    (tmp_path / "images").mkdir()
    (tmp_path / "images_2").mkdir()
    assert new_picture_folder(tmp_path) == tmp_path / "images_3"


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_alpha_bounds_give_the_image_or_the_pure_colour(alpha: float):
    type_mask = torch.ones(8, 8, dtype=torch.long)
    item = TypedImageItem(image=torch.rand(3, 8, 8), gt_type_mask=type_mask)
    picture = np.asarray(TypeVisualizer(type_alpha=alpha, fields=["image"]).visualize(item))
    panel = _panel(picture, -1)
    expected = np.broadcast_to(type_colour(1), panel.shape) if alpha else _panel(picture, 0)
    assert np.array_equal(panel, expected)
