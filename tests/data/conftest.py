"""Tiny image and mask writers shared by the dataset tests (datasets are written in their on-disk layouts)."""

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

SIZE = 16


def _save(array: np.ndarray, path: Path, palette: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if palette:
        image = image.convert("P")  # no-op on values: builds a grey palette whose indices are the values
        image.putpalette([channel for value in range(256) for channel in (value, 255 - value, value // 2)])
    image.save(path)
    return path


@pytest.fixture
def write_image() -> Callable[..., Path]:
    """``write_image(path)``: a small RGB image (PNG or JPEG by suffix)."""

    def write(path: Path, size: int = SIZE) -> Path:
        return _save(np.full((size, size, 3), 128, dtype=np.uint8), path)

    return write


@pytest.fixture
def write_mask() -> Callable[..., np.ndarray]:
    """``write_mask(path, {value: (row0, row1, col0, col1)}, palette=False)``: a mask of boxes; returns its values."""

    def write(path: Path, boxes: dict[int, tuple[int, int, int, int]], palette: bool = False) -> np.ndarray:
        values = np.zeros((SIZE, SIZE), dtype=np.uint8)
        for value, (row0, row1, col0, col1) in boxes.items():
            values[row0:row1, col0:col1] = value
        _save(values, path, palette)
        return values

    return write


@pytest.fixture
def defect_tree(write_image: Callable[..., Path], write_mask: Callable[..., np.ndarray]) -> Callable[..., dict]:
    """Write one MVTec-style category; image ``i`` of a defect has foreground on row ``i`` only.

    ``defect_tree(category_root, {"good": 2, "Burrs": 12}, train=2, mask_suffix="_mask", padded=True)`` returns
    ``{image path: binary mask}``, so a mask paired with the wrong image is caught pixel by pixel.
    """

    def write(
        category_root: Path,
        test: dict[str, int],
        train: int = 2,
        mask_suffix: str = "_mask",
        padded: bool = True,
    ) -> dict[str, np.ndarray]:
        expected = {}
        for index in range(train):
            write_image(category_root / "train" / "good" / f"{index:03d}.png")
        for label, count in test.items():
            for index in range(count):
                name = f"{index:03d}" if padded else str(index)
                image = write_image(category_root / "test" / label / f"{name}.png")
                mask = np.zeros((SIZE, SIZE), dtype=np.uint8)
                if label != "good":
                    mask_path = category_root / "ground_truth" / label / f"{name}{mask_suffix}.png"
                    mask = write_mask(mask_path, {255: (index, index + 1, 0, SIZE)}) > 0
                expected[str(image)] = mask
        return expected

    return write


@pytest.fixture
def write_visa(write_image: Callable[..., Path], write_mask: Callable[..., np.ndarray]) -> Callable[..., None]:
    """Write a raw VisA release: ``write_visa(root, {category: {name: (label, {mask id: box})}})``.

    Each category also gets three normal images, two in the train split and one in the test split.
    """

    def write(root: Path, anomalies: dict[str, dict[str, tuple[str, dict]]]) -> None:
        split_rows = [["object", "split", "label", "image", "mask"]]
        for category, images in anomalies.items():
            data = root / category / "Data"
            annotations = [["image", "label", "mask"]]
            for name, (label, boxes) in images.items():
                image, mask = f"{category}/Data/Images/Anomaly/{name}.JPG", f"{category}/Data/Masks/Anomaly/{name}.png"
                write_image(data / "Images" / "Anomaly" / f"{name}.JPG")
                write_mask(data / "Masks" / "Anomaly" / f"{name}.png", boxes)
                annotations.append([image, label, mask])
                split_rows.append([category, "test", "anomaly", image, mask])
            for index, split in enumerate(("train", "train", "test")):
                write_image(data / "Images" / "Normal" / f"{index:03d}.JPG")
                image = f"{category}/Data/Images/Normal/{index:03d}.JPG"
                annotations.append([image, "normal", ""])
                split_rows.append([category, split, "normal", image, ""])
            with (root / category / "image_anno.csv").open("w", newline="") as file:
                csv.writer(file).writerows(annotations)
        (root / "split_csv").mkdir(parents=True, exist_ok=True)
        with (root / "split_csv" / "1cls.csv").open("w", newline="") as file:
            csv.writer(file).writerows(split_rows)

    return write


@pytest.fixture
def write_realiad(write_image: Callable[..., Path], write_mask: Callable[..., np.ndarray]) -> Callable[..., dict]:
    """Write Real-IAD's pcb: ``write_realiad(root, resolution=1024, json_location="realiad_jsons/pcb.json")``.

    Two normal training views; in the test split a normal view, a scratch (``HS``), a normal view under ``NG/``
    and a missing part (``QS``). Returns ``{image path: expected type mask}`` of the test split.
    """
    scratch, missing = 2, 3  # pcb's vocabulary: contamination, scratch, missing, foreign

    def write(root: Path, resolution: int = 1024, json_location: str = "realiad_jsons/pcb.json") -> dict:
        images = root / f"realiad_{resolution}" / "pcb"
        expected = {}

        def sample(folder: str, number: int, view: int, anomaly_class: str, box=None, type_index: int = 0) -> dict:
            stem = f"pcb_{number:04d}_{folder.replace('/', '_')}_C{view}_20231021130155"
            image = write_image(images / folder / f"S{number:04d}" / f"{stem}.jpg")
            mask_path = None
            mask = torch.zeros(SIZE, SIZE, dtype=torch.int64)
            if box is not None:
                mask_path = f"{folder}/S{number:04d}/{stem}.png"
                mask = torch.from_numpy(write_mask(images / mask_path, {255: box}) > 0).long() * type_index
            expected[str(image)] = mask
            relative = f"{folder}/S{number:04d}/{stem}.jpg"
            return {"category": "pcb", "anomaly_class": anomaly_class, "image_path": relative, "mask_path": mask_path}

        train = [sample("OK", 1, view, "OK") for view in (1, 2)]
        test = [
            sample("OK", 2, 1, "OK"),
            sample("NG/HS", 3, 1, "HS", (2, 5, 2, 5), scratch),
            sample("NG/HS", 3, 2, "OK"),  # a view under NG/ that shows no defect: normal
            sample("NG/QS", 4, 1, "QS", (8, 12, 0, 16), missing),
        ]
        json_file = root / json_location
        json_file.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"meta": {"prefix": "", "normal_class": "OK"}, "train": train, "test": test}
        json_file.write_text(json.dumps(metadata))
        return {path: mask for path, mask in expected.items() if "_0001_" not in path}

    return write
