"""Bad and unusual inputs: each gets a clear error that says what to do, or a documented correct behaviour.

docs/reliability.md lists every input tried, with the test that shows it; several live with the code they check
(tests/data, tests/knowledge, tests/models/dapo) and are only referenced there.
"""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from anomalib.engine import Engine
from PIL import Image

from anomalib_dapo import Dapo
from anomalib_dapo.data import (
    CrossDataset,
    DatasetLayoutError,
    DatasetNotFoundError,
    TypedImageBatch,
    TypedMVTecADDataset,
)
from anomalib_dapo.data.images import ImageReadError, read_rgb_image
from anomalib_dapo.model_input import ImageBatchError, NonFiniteInputError
from anomalib_dapo.models.components.checkpoint import CheckpointMismatchError
from tiny import ONE_DISC, PROMPT_OPTIONS, TINY, tiny_config


@pytest.fixture(scope="module")
def data(tmp_path_factory, synthetic) -> Path:
    """A small synthetic dataset in MVTec-AD's layout; tests copy it before changing anything."""
    return synthetic(**ONE_DISC)


def typed_test_split(root: Path) -> TypedMVTecADDataset:
    return TypedMVTecADDataset(root, "disc", split="test", dataset="synthetic")


# ---------------------------------------------------------------- image files


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)


def test_image_modes_read_as_rgb(tmp_path, rgb):
    """Grayscale, palette, RGBA and 16-bit images become float RGB in [0, 1], like their 8-bit RGB twin."""
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    expected_rgb = torch.from_numpy(rgb).permute(2, 0, 1) / 255
    expected_gray = torch.from_numpy(gray).expand(3, -1, -1) / 255
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "gray16.png")  # 0..255 -> 0..65535
    Image.fromarray(np.dstack([rgb, np.zeros_like(gray)])).save(tmp_path / "rgba.png")  # fully transparent
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).convert("RGB").save(tmp_path / "quant.png")
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
    assert cv2.imwrite(str(tmp_path / "rgb16.png"), rgb[..., ::-1].astype(np.uint16) * 257)
    for name, expected in {"gray.png": expected_gray, "gray16.png": expected_gray, "rgba.png": expected_rgb}.items():
        image = read_rgb_image(tmp_path / name)
        assert image.shape == (3, 24, 40)
        assert image.dtype == torch.float32
        torch.testing.assert_close(image, expected, msg=name)  # alpha dropped, as anomalib's reader does
    torch.testing.assert_close(read_rgb_image(tmp_path / "rgb16.png"), expected_rgb, atol=1 / 255, rtol=0)
    torch.testing.assert_close(read_rgb_image(tmp_path / "palette.png"), read_rgb_image(tmp_path / "quant.png"))


def test_16_bit_is_scaled_not_clipped(tmp_path):
    """A dark 16-bit image stays dark: 8-bit RGB conversion would clip every value above 255 to white."""
    ramp = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    assert Image.open(tmp_path / "ramp16.png").mode == "I;16"
    image = read_rgb_image(tmp_path / "ramp16.png")
    torch.testing.assert_close(image[0], torch.from_numpy(ramp / 65535).float())
    assert image.mean().item() == pytest.approx(0.5, abs=1e-3)


def test_typed_dataset_reads_16_bit_and_grayscale_files(data, tmp_path):
    root = shutil.copytree(data, tmp_path / "data")
    good, hole = root / "disc/test/good/000.png", root / "disc/test/hole/000.png"
    gray = np.asarray(Image.open(good).convert("L"))
    Image.fromarray(gray.astype(np.uint16) * 257).save(good)
    Image.open(hole).convert("L").save(hole)
    items = {Path(item.image_path).parent.name: item for item in typed_test_split(root)}
    expected = torch.from_numpy(gray).expand(3, -1, -1) / 255
    torch.testing.assert_close(items["good"].image, expected)
    assert items["hole"].image.shape == (3, 32, 32)
    assert items["hole"].gt_type_mask.any()


def test_images_of_other_sizes_in_one_batch_keep_their_type_ids(data, tmp_path):
    """anomalib's collate resizes a mixed batch to its largest image; type masks keep integer ids (nearest)."""
    root = shutil.copytree(data, tmp_path / "data")
    for path in (root / "disc/test/hole/000.png", root / "disc/ground_truth/hole/000_mask.png"):
        Image.open(path).resize((48, 40), Image.Resampling.NEAREST).save(path)
    items = [*typed_test_split(root)]
    assert {tuple(item.image.shape[-2:]) for item in items} == {(32, 32), (40, 48)}
    batch = TypedImageBatch.collate(items)
    assert batch.image.shape == (len(items), 3, 40, 48)
    assert batch.gt_type_mask.dtype == torch.int64
    assert set(batch.gt_type_mask.unique().tolist()) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "corrupt, truncated or not an image"),
        (b"not an image at all", "corrupt, truncated or not an image"),
        ("truncated", "corrupt, truncated or not an image"),
        (None, "Image file not found"),
    ],
    ids=["empty", "text", "truncated", "missing"],
)
def test_unreadable_image_files_are_named(tmp_path, rgb, content, match):
    path = tmp_path / "bad.png"
    if content == "truncated":
        Image.fromarray(rgb).save(path)
        path.write_bytes(path.read_bytes()[:100])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match) as error:
        read_rgb_image(path)
    assert str(path) in str(error.value)


def test_a_corrupt_file_in_a_dataset_or_a_predicted_folder_is_named(data, tmp_path):
    root = shutil.copytree(data, tmp_path / "data")
    broken = root / "disc/test/scratch/000.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(ImageReadError, match="replace or remove it") as error:
        typed_test_split(root)  # its mask is checked against the image's size when the dataset is built
    assert str(broken) in str(error.value)
    engine = Engine(logger=False, default_root_dir=tmp_path / "results", accelerator="cpu", devices=1)
    with pytest.raises(ImageReadError, match=str(broken)):
        engine.predict(model=Dapo(**TINY), data_path=broken.parent)


@pytest.mark.parametrize(
    ("values", "match"),
    [([np.nan, 0.5], "NaN or infinite"), ([np.inf, 0.5], "NaN or infinite"), ([2.0, 0.5], r"in \[0, 1\]")],
)
def test_float_image_files_must_hold_finite_intensities(tmp_path, values, match):
    array = np.full((8, 8), 0.25, dtype=np.float32)
    array[0, :2] = values
    Image.fromarray(array).save(tmp_path / "float.tiff")
    with pytest.raises(ImageReadError, match=match):
        read_rgb_image(tmp_path / "float.tiff")


def test_float_image_files_in_unit_range_are_read_as_they_are(tmp_path):
    array = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(array).save(tmp_path / "float.tiff")
    torch.testing.assert_close(read_rgb_image(tmp_path / "float.tiff"), torch.from_numpy(array).expand(3, -1, -1))


# ---------------------------------------------------------------- tensors


@pytest.fixture(scope="module")
def model() -> Dapo:
    return Dapo(**TINY).eval()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels_are_refused_before_the_model(model, value):
    """Eagerly (Engine, TorchInferencer, training) a NaN never becomes a score: the batch is refused.

    Exported graphs cannot raise: there such an image gets a NaN score and an anomalous label (test_flows.py).
    """
    images = torch.rand(3, 3, 64, 64)
    images[2, 1, 10, 10] = value
    with pytest.raises(NonFiniteInputError, match=r"Input images \[2\]"), torch.no_grad():
        model(images)
    with pytest.raises(NonFiniteInputError):
        model.model.compute(images)  # the training path


def test_a_checkpoint_that_is_not_dapos_is_refused(tmp_path):
    torch.save({"state_dict": {}, "epoch": 3}, tmp_path / "padim.ckpt")
    with pytest.raises(CheckpointMismatchError, match="not a Dapo checkpoint"):
        Dapo(weights=str(tmp_path / "padim.ckpt"), **TINY)


# ---------------------------------------------------------------- datasets


def test_missing_dataset_root_through_the_engine(tmp_path):
    """The error reaches the user from ``engine.fit`` unchanged: path, expected layout, where to get the data."""
    missing = tmp_path / "nowhere"
    engine = Engine(logger=False, default_root_dir=tmp_path / "results", accelerator="cpu", devices=1, max_epochs=1)
    with pytest.raises(DatasetNotFoundError, match="Expected layout") as error:
        engine.fit(model=Dapo(**TINY), datamodule=CrossDataset("synthetic", missing, "synthetic", missing, "disc"))
    assert str(missing) in str(error.value)
    with pytest.raises(FileNotFoundError, match=str(missing)):  # anomalib's own message for a folder to predict
        engine.predict(model=Dapo(**TINY), data_path=missing)


def test_root_given_one_level_too_deep(data):
    with pytest.raises(DatasetNotFoundError, match=r"categor.*not found: .*disc") as error:
        CrossDataset("synthetic", data / "disc", "synthetic", data / "disc", "disc").prepare_data()
    assert str(error.value).endswith(f"one level too deep: pass the folder above it as the root, {data}")
    assert "<root>/<category>/test/{good,<defect>}/*.png" in str(error.value)


LAYOUT_PROBLEMS = {
    "no_test_folder": r"masks without a test image \(4\): hole/000, missing/000",
    "mask_missing": r"test images without a mask \(1\): hole/000",
    "unknown_defect_folder": r"Unknown raw defect name 'blob' for synthetic\. Known raw names: hole",
    "empty_category": "no test images and no masks",
}


@pytest.mark.parametrize("change", LAYOUT_PROBLEMS)
def test_wrong_layout_names_the_problem(data, tmp_path, change):
    """anomalib's MVTec-AD reader raises a raw pandas error here; the typed datasets say what is wrong where."""
    root = shutil.copytree(data, tmp_path / "data")
    category = root / "disc"
    if change == "no_test_folder":
        shutil.rmtree(category / "test")
    elif change == "mask_missing":
        (category / "ground_truth/hole/000_mask.png").unlink()
    elif change == "unknown_defect_folder":
        for kind, name in (("test", "000.png"), ("ground_truth", "000_mask.png")):
            shutil.copytree(category / kind / "hole", category / kind / "blob")
            assert (category / kind / "blob" / name).is_file()
    else:
        shutil.rmtree(category)
        category.mkdir()
    with pytest.raises(DatasetLayoutError, match=LAYOUT_PROBLEMS[change]) as error:
        typed_test_split(root)
    assert str(category) in str(error.value)
    assert "Expected layout" in str(error.value)


# ---------------------------------------------------------------- weights and options


@pytest.mark.parametrize(
    "content",
    [b"seed_everything: 0\nmodel:\n  class_path: Dapo\n", b"e" * 64, b"\x80\x02K\x01."],
    ids=["config_yaml", "text", "pickled_int"],
)
def test_a_weights_file_that_is_no_checkpoint_says_what_to_pass(tmp_path, content):
    """Text files made torch.load fail with "pop from empty list" or ``KeyError: 101``."""
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(
        CheckpointMismatchError, match=r"is not a readable Dapo checkpoint .*anomalib train --model Dapo"
    ):
        Dapo(weights=str(path), **TINY)


def test_a_checkpoint_of_the_other_model_names_the_model_to_use(tmp_path, tiny_checkpoint):
    from lightning.pytorch import Trainer

    from anomalib_dapo import MultiAds

    multiads = tiny_config(drop=PROMPT_OPTIONS)
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(MultiAds(**multiads))
    trainer.save_checkpoint(tmp_path / "multiads.ckpt")
    with pytest.raises(CheckpointMismatchError, match="is a MultiAds checkpoint, not a Dapo one: use --model MultiAds"):
        Dapo(weights=str(tmp_path / "multiads.ckpt"), **TINY)
    with pytest.raises(CheckpointMismatchError, match="is a Dapo checkpoint, not a MultiAds one: use --model Dapo"):
        MultiAds(weights=str(tiny_checkpoint), **multiads)


@pytest.mark.parametrize("types", [[None], [1, 2]], ids=["none", "numbers"])
def test_defect_types_must_be_names(types):
    from anomalib_dapo.knowledge import KnowledgeBaseError

    with pytest.raises(KnowledgeBaseError, match=r"Defect types must be names \(text\)"):
        Dapo(defect_types=types, **TINY)


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8), r"got torch.uint8: pass images.float\(\) / 255"),
        (torch.rand(2, 3, 64, 64) * 255, r"got values in \[.*\]: divide 8-bit values \(0-255\) by 255"),
        (torch.rand(0, 3, 64, 64), "The batch of images is empty"),
        (torch.rand(3, 64, 64), r"got shape \(3, 64, 64\): .*images.unsqueeze\(0\)"),
    ],
    ids=["uint8", "floats_0_255", "empty", "three_dims"],
)
def test_images_that_are_no_unit_float_batch_are_refused(model, images, match):
    """uint8 images and floats in 0-255 gave silently wrong scores."""
    with pytest.raises(ImageBatchError, match=match), torch.no_grad():
        model(images)


@pytest.mark.parametrize("image_size", [0, -64, 60])
def test_an_image_size_that_does_not_fit_the_patches_is_refused(image_size):
    from anomalib_dapo.backbone import BackboneError

    with pytest.raises(BackboneError, match=rf"image_size {image_size} does not fit dapo-tiny.*--model.image_size \d+"):
        Dapo(**{**TINY, "image_size": image_size})


def test_a_non_ascii_dataset_path_says_how_to_read_it(data, tmp_path, monkeypatch):
    """anomalib refuses such paths as "non-printable characters"; the advice given (an ASCII link) works."""
    from anomalib_dapo.data import DatasetPathError

    root = shutil.copytree(data, tmp_path / "Prüfdaten")
    datamodule = CrossDataset("synthetic", root, "synthetic", root, "disc")
    with pytest.raises(DatasetPathError, match=r"\('ü'\): link the dataset .* ln -s '.*Prüfdaten' datasets/Prufdaten"):
        datamodule.setup()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets/Prufdaten").symlink_to(root)
    linked = CrossDataset("synthetic", "datasets/Prufdaten", "synthetic", "datasets/Prufdaten", "disc")
    linked.setup()
    assert len(linked.test_data) == 5
