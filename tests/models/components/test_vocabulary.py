"""Ground-truth defect types matched to the scored vocabulary by name (typed and anomalib's own datamodules)."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from anomalib.data import Folder, MVTecAD
from anomalib.engine import Engine
from PIL import Image

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.data import CrossDataset, SyntheticDefects
from anomalib_dapo.models.components.vocabulary import MissingDefectTypesError, type_id_map
from tiny import PROMPT_OPTIONS, tiny_config

SIZES = {"image_size": 32, "n_train": 2, "n_test_good": 2, "n_test_per_defect": 2}
TYPE_METRICS = ("pixel_TypeAUROC", "pixel_TypeAveragePrecision", "pixel_TypeF1Score", "image_MultiLabelF1")


def _engine(root: Path) -> Engine:
    return Engine(default_root_dir=root, accelerator="cpu", logger=False, enable_progress_bar=False)


@pytest.fixture(scope="module")
def disc(tmp_path_factory, synthetic) -> SyntheticDefects:
    """The synthetic disc: its masks index ``scratch, hole, stain, missing``."""
    return SyntheticDefects(synthetic(**SIZES), "disc", **SIZES)


def test_type_id_map_by_name():
    table = type_id_map(["scratch", "hole", "stain"], ["Hole", "rust", "stain", "scratch"])
    assert table.tolist() == [0, 4, 1, 3]  # normal stays 0; "rust" is scored, never ground truth
    with pytest.raises(MissingDefectTypesError, match=r"lack \['hole', 'stain'\].*\['scratch', 'hole', 'stain'\]"):
        type_id_map(["scratch", "hole", "stain"], ["scratch", "rust"])


def test_reordered_vocabulary_gives_the_same_type_metrics(tiny_checkpoint, tiny_kwargs, disc, tmp_path):
    def metrics(defect_types):
        model = Dapo(weights=str(tiny_checkpoint), defect_types=defect_types, **tiny_kwargs)
        return _engine(tmp_path).test(model, datamodule=disc)[0]

    data_order = metrics(["scratch", "hole", "stain", "missing"])
    reordered = metrics(["missing", "stain", "hole", "scratch"])
    assert {name: reordered[name] for name in TYPE_METRICS} == {name: data_order[name] for name in TYPE_METRICS}
    assert "pixel_TypeAUROC" in metrics(["hole", "rust", "missing", "scratch", "stain"])  # an extra name is scored


def test_ground_truth_ids_follow_the_names(tiny_checkpoint, tiny_kwargs, disc, tmp_path):
    """The remapped masks, checked pixel by pixel against the data's own."""
    model = Dapo(
        weights=str(tiny_checkpoint), defect_types=["missing", "rust", "scratch", "hole", "stain"], **tiny_kwargs
    )
    batches = _engine(tmp_path).predict(model, datamodule=disc, return_predictions=True)
    disc.setup("test")
    own = {item.image_path: item.gt_type_mask for item in disc.test_data}
    new_id = {0: 0, 1: 3, 2: 4, 3: 5, 4: 1}  # data order scratch, hole, stain, missing
    seen = set()
    for batch in batches:
        for path, mask in zip(batch.image_path, batch.gt_type_mask, strict=True):
            expected = own[path].apply_(new_id.get)
            assert torch.equal(mask, expected)
            seen |= set(mask.unique().tolist())
    assert seen == {0, 1, 3, 4, 5}  # every data type was there, "rust" (2) never is


def test_a_vocabulary_lacking_data_types_fails_before_any_work(tiny_checkpoint, tiny_kwargs, disc, tmp_path):
    model = Dapo(weights=str(tiny_checkpoint), defect_types=["scratch", "rust"], **tiny_kwargs)
    with pytest.raises(MissingDefectTypesError, match=r"lack \['hole', 'stain', 'missing'\].*'scratch', 'hole'"):
        _engine(tmp_path).test(model, datamodule=disc)
    assert model.model.text_encoder_calls == 0  # nothing was encoded, no image seen


@pytest.mark.parametrize("model_class", [Dapo, MultiAds])
def test_product_filter_on_typed_datamodules(model_class, tmp_path, synthetic):
    """``false`` scores every type of the target dataset, ``true`` the product's; both give type metrics."""
    root = synthetic(**SIZES)
    kwargs = tiny_config(drop=() if model_class is Dapo else PROMPT_OPTIONS)
    product, every = ("scratch", "hole", "stain"), ("scratch", "hole", "stain", "missing")
    for datamodule in (
        SyntheticDefects(root, "tile", **SIZES),
        CrossDataset("synthetic", root, "synthetic", root, "tile"),
    ):
        for product_filter, vocabulary in ((True, product), (False, every)):
            model = model_class(product_filter=product_filter, weights=None, **kwargs)
            model.weights = "learned"  # zero-shot: tested as it is, not trained
            metrics = _engine(tmp_path).test(model, datamodule=datamodule)[0]
            assert model.model.vocabulary == vocabulary, (type(datamodule).__name__, product_filter)
            assert "pixel_TypeAUROC" in metrics


def _write(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(values).save(path)


@pytest.fixture
def stock_bottle(tmp_path) -> Path:
    """anomalib's MVTec-AD layout, category ``bottle``: ``broken_large`` (type broken) and ``contamination``."""
    rng = np.random.default_rng(0)
    for split, folder, count in (
        ("train", "good", 2),
        ("test", "good", 2),
        ("test", "broken_large", 2),
        ("test", "contamination", 2),
    ):
        for index in range(count):
            _write(
                tmp_path / "bottle" / split / folder / f"{index:03d}.png", rng.integers(0, 255, (32, 32, 3), np.uint8)
            )
            if folder != "good":
                mask = np.zeros((32, 32), np.uint8)
                mask[4 + 8 * index : 12 + 8 * index, 4:20] = 255
                _write(tmp_path / "bottle" / "ground_truth" / folder / f"{index:03d}_mask.png", mask)
    return tmp_path


def test_stock_mvtecad_derives_type_masks_from_the_folders(
    tiny_checkpoint, tiny_kwargs, stock_bottle, tmp_path, recwarn
):
    datamodule = MVTecAD(root=stock_bottle, category="bottle", eval_batch_size=8)
    model = Dapo(weights=str(tiny_checkpoint), defect_types=["contamination", "broken"], **tiny_kwargs)
    batches = _engine(tmp_path).predict(model, datamodule=datamodule, return_predictions=True)
    masks = {
        Path(path).parent.name: mask
        for batch in batches
        for path, mask in zip(batch.image_path, batch.gt_type_mask, strict=True)
    }
    assert masks["broken_large"].unique().tolist() == [0, 2]
    assert masks["contamination"].unique().tolist() == [0, 1]
    assert masks["good"].unique().tolist() == [0]
    metrics = _engine(tmp_path).test(Dapo(weights=str(tiny_checkpoint), **tiny_kwargs), datamodule=datamodule)[0]
    assert {"pixel_TypeAUROC", "image_MultiLabelF1"} <= metrics.keys()  # bottle: broken, contamination
    assert not [w for w in recwarn if "compute" in str(w.message)]


def test_stock_datamodule_without_types_says_once_which_datamodule_gives_them(
    tiny_checkpoint, tiny_kwargs, stock_bottle, tmp_path, caplog, recwarn
):
    bottle = stock_bottle / "bottle"
    datamodule = Folder(
        name="bottle",
        root=bottle,
        normal_dir="train/good",
        abnormal_dir="test/broken_large",
        mask_dir="ground_truth/broken_large",
        eval_batch_size=8,
    )
    model = Dapo(weights=str(tiny_checkpoint), **tiny_kwargs)
    with caplog.at_level(logging.WARNING):
        metrics = _engine(tmp_path).test(model, datamodule=datamodule)[0]
        _engine(tmp_path).test(model, datamodule=datamodule)
    assert not any(name.startswith(("pixel_Type", "image_MultiLabel")) for name in metrics)
    assert caplog.text.count("No defect-type metrics: Folder") == 1
    assert "DefectFolder" in caplog.text
    assert not [
        str(w.message) for w in recwarn if "compute" in str(w.message)
    ]  # torchmetrics' "compute … before update"
