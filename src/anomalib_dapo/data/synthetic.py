"""A small procedural multi-defect dataset in MVTec-AD's layout, for demos and tests that cannot download data.

Three products (``disc``, ``grid``, ``tile``) are rendered with numpy and Pillow, and each defect type is painted
by its own function with a mask that marks exactly the pixels it changed. Which defects a product shows comes
from the knowledge base (dataset ``"synthetic"``), so the folders on disk always match the loader's vocabulary.

Every image has its own random generator, seeded from the global seed, the image's folder name and its index:
the same seed gives byte-identical files, and adding a category, a defect or more images leaves the other
images unchanged.
"""

import colorsys
import itertools
import json
import shutil
import tempfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
from anomalib.data.utils import TestSplitMode, ValSplitMode
from PIL import Image, ImageDraw
from torchvision.transforms.v2 import Transform

from anomalib_dapo import knowledge
from anomalib_dapo.data.dataset_base import NORMAL_FOLDER
from anomalib_dapo.data.mvtecad import TypedMVTecAD, TypedMVTecADDataset
from anomalib_dapo.knowledge import DatasetSpec
from anomalib_dapo.knowledge.datasets import SYNTHETIC as SPEC

CATEGORIES: tuple[str, ...] = ("disc", "grid", "tile")
METADATA_FILE = "synthetic.json"
# Bump when rendering changes, so a folder made by an older version is not mistaken for the new data.
GENERATOR_VERSION = 1
MIN_IMAGE_SIZE = 32
GRID_BARS = 5
# Painters retry when a defect lands mostly off the product, so no mask is (nearly) empty.
MAX_PAINT_ATTEMPTS = 50


@dataclass(frozen=True)
class _Product:
    """A defect-free rendering and what the defect painters need to know about it."""

    image: np.ndarray  # (H, W, 3) float32, 0-255
    background: np.ndarray  # (H, W, 3) float32: what shows where the product is absent
    foreground: np.ndarray  # (H, W) bool: product pixels; defects are painted only there
    colour: np.ndarray  # (3,) base surface colour, to pick a stain of a clearly different hue
    parts: tuple[np.ndarray, ...]  # (H, W) bool masks of the pieces the ``missing`` defect may remove


def _coordinates(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates of every pixel, as float32 ``(H, W)`` arrays."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return yy, xx


def _jittered_colour(rng: np.random.Generator, base: Sequence[float], amount: float) -> np.ndarray:
    """Shift a base colour by a small random amount per channel."""
    return np.asarray(base, dtype=np.float32) + rng.uniform(-amount, amount, 3).astype(np.float32)


def _grain(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Per-pixel luminance noise, ``(H, W, 1)`` so it adds equally to all channels."""
    return rng.normal(0.0, sigma, (size, size, 1)).astype(np.float32)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Blotchy low-frequency noise (unit scale): a coarse random grid upsampled bicubically."""
    coarse = rng.standard_normal((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))


def _plain_background(rng: np.random.Generator, size: int, base: Sequence[float]) -> np.ndarray:
    """Render a flat background with a slight colour shift and grain."""
    colour = _jittered_colour(rng, base, 8.0)
    return np.broadcast_to(colour, (size, size, 3)) + _grain(rng, size, 2.0)


def _angular_distance(theta: np.ndarray, angle: float) -> np.ndarray:
    """Absolute angle between ``theta`` and ``angle``, in ``[0, pi]``."""
    return np.abs((theta - angle + np.pi) % (2 * np.pi) - np.pi)


def _render_disc(rng: np.random.Generator, size: int) -> _Product:
    """Render a brushed blue disc with a darker hub, a centre bore and 4-6 mounting holes on a light background.

    The pieces that can go missing are rim sectors between the mounting holes.
    """
    yy, xx = _coordinates(size)
    background = _plain_background(rng, size, (205, 205, 200))
    cy, cx = size / 2 + rng.uniform(-0.06, 0.06, 2) * size
    radius = size * rng.uniform(0.36, 0.40)
    r = np.hypot(yy - cy, xx - cx) / radius
    theta = np.arctan2(yy - cy, xx - cx)
    rotation = rng.uniform(0, 2 * np.pi)
    n_holes = int(rng.integers(4, 7))
    colour = _jittered_colour(rng, (70, 110, 170), 12.0)

    # Concentric brushing marks, as on a turned metal part.
    brushing = 1 + 0.05 * np.sin(r * rng.uniform(35, 45) + rng.uniform(0, 2 * np.pi))
    shade = np.where(r < 0.25, 0.72, 1.0) * brushing
    surface = colour * shade[..., None] + _grain(rng, size, 3.0)

    spacing = 2 * np.pi / n_holes
    hole_centres = [rotation + spacing * k for k in range(n_holes)]
    holes = np.zeros((size, size), dtype=bool)
    for angle in hole_centres:
        hy, hx = cy + 0.62 * radius * np.sin(angle), cx + 0.62 * radius * np.cos(angle)
        holes |= np.hypot(yy - hy, xx - hx) < 0.08 * radius
    foreground = (r < 1) & (r >= 0.1) & ~holes

    # Sectors centred between holes and narrow enough (60 % of the spacing) never to touch them.
    rim = (r >= 0.35) & (r < 1)
    parts = tuple(rim & (_angular_distance(theta, angle + spacing / 2) < 0.3 * spacing) for angle in hole_centres)
    image = np.where(foreground[..., None], surface, background)
    return _Product(image, background, foreground, colour, parts)


def _bar_starts(rng: np.random.Generator, size: int, width: int) -> list[int]:
    """First pixel of each of the ``GRID_BARS`` evenly spaced bars along one axis, with a common shift."""
    pitch = size / GRID_BARS
    shift = rng.uniform(-0.04, 0.04) * size
    return [round(shift + pitch * (k + 0.5) - width / 2) for k in range(GRID_BARS)]


def _bar_profile(size: int, starts: Sequence[int], width: int) -> tuple[np.ndarray, np.ndarray]:
    """Which pixels of one axis lie on a bar, and a rounded shading across each bar (bright middle)."""
    on_bar = np.zeros(size, dtype=bool)
    profile = np.ones(size, dtype=np.float32)
    across = 0.8 + 0.35 * np.sin(np.pi * (np.arange(width) + 0.5) / width)
    for start in starts:
        lo, hi = max(start, 0), min(start + width, size)
        on_bar[lo:hi] = True
        profile[lo:hi] = across[lo - start : hi - start]
    return on_bar, profile


def _render_grid(rng: np.random.Generator, size: int) -> _Product:
    """Render a regular mesh of grey metal bars across a beige background.

    The pieces that can go missing are bar segments between two crossings.
    """
    background = _plain_background(rng, size, (215, 205, 180))
    colour = _jittered_colour(rng, (95, 100, 110), 10.0)
    width = max(2, round(size * rng.uniform(0.05, 0.06)))
    row_starts, col_starts = _bar_starts(rng, size, width), _bar_starts(rng, size, width)
    rows, row_shade = _bar_profile(size, row_starts, width)
    cols, col_shade = _bar_profile(size, col_starts, width)

    foreground = rows[:, None] | cols[None, :]
    # Vertical bars lie on top at the crossings.
    shade = np.where(cols[None, :], col_shade[None, :], row_shade[:, None])
    surface = colour * shade[..., None] + _grain(rng, size, 3.0)
    image = np.where(foreground[..., None], surface, background)

    parts = []
    for bar in row_starts:
        for left, right in itertools.pairwise(col_starts):
            parts.append(_box(size, bar, bar + width, left + width, right))
    for bar in col_starts:
        for top, bottom in itertools.pairwise(row_starts):
            parts.append(_box(size, top + width, bottom, bar, bar + width))
    return _Product(image, background, foreground, colour, tuple(parts))


def _box(size: int, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Boolean mask of an axis-aligned rectangle (clipped to the image)."""
    mask = np.zeros((size, size), dtype=bool)
    mask[max(top, 0) : max(bottom, 0), max(left, 0) : max(right, 0)] = True
    return mask


def _render_tile(rng: np.random.Generator, size: int) -> _Product:
    """Render a mottled terracotta tile with bevelled edges, slightly rotated, filling most of a dark background."""
    yy, xx = _coordinates(size)
    background = _plain_background(rng, size, (60, 60, 66))
    cy, cx = size / 2 + rng.uniform(-0.03, 0.03, 2) * size
    half = size * rng.uniform(0.41, 0.44)
    angle = np.deg2rad(rng.uniform(-4, 4))
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = (yy - cy) * np.cos(angle) - (xx - cx) * np.sin(angle)
    inset = half - np.maximum(np.abs(u), np.abs(v))  # distance to the tile's border, positive inside
    foreground = inset > 0

    colour = _jittered_colour(rng, (185, 150, 115), 12.0)
    texture = 1 + 0.08 * _smooth_noise(rng, size, 8) + 0.04 * _smooth_noise(rng, size, 24)
    bevel = 0.8 + 0.2 * np.clip(inset / (0.04 * size), 0, 1)
    surface = colour * (texture * bevel)[..., None] + _grain(rng, size, 3.0)
    image = np.where(foreground[..., None], surface, background)
    return _Product(image, background, foreground, colour, ())


def _point_on_product(product: _Product, rng: np.random.Generator) -> tuple[float, float]:
    """Draw the ``(row, column)`` of a product pixel uniformly."""
    rows, cols = np.nonzero(product.foreground)
    index = rng.integers(len(rows))
    return float(rows[index]), float(cols[index])


def _paint_scratch(product: _Product, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint one or two thin (1-2 px) straight lines, all dark or all bright, at random angles and lengths."""
    size = product.foreground.shape[0]
    canvas = Image.new("L", (size, size))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 3))):
        y, x = _point_on_product(product, rng)
        angle = rng.uniform(0, np.pi)
        half = size * rng.uniform(0.1, 0.2)
        dy, dx = half * np.sin(angle), half * np.cos(angle)
        draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=255, width=int(rng.integers(1, 3)))
    mask = (np.asarray(canvas) > 0) & product.foreground
    tone = rng.uniform(15, 45) if rng.random() < 0.5 else rng.uniform(225, 250)
    image = product.image.copy()
    image[mask] = tone
    return image, mask


def _paint_hole(product: _Product, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint a dark round blob, darkest in the middle like a pit."""
    size = product.foreground.shape[0]
    yy, xx = _coordinates(size)
    y, x = _point_on_product(product, rng)
    distance = np.hypot(yy - y, xx - x) / (size * rng.uniform(0.035, 0.07))
    mask = (distance < 1) & product.foreground
    image = product.image.copy()
    image[mask] = (12 + 25 * distance[mask])[:, None]
    return image, mask


def _contrasting_colour(colour: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a saturated colour whose hue is at least a third of the hue circle away from ``colour``'s."""
    hue, _, _ = colorsys.rgb_to_hsv(*(colour / 255).clip(0, 1))
    rgb = colorsys.hsv_to_rgb((hue + rng.uniform(1 / 3, 2 / 3)) % 1, rng.uniform(0.7, 0.9), rng.uniform(0.6, 0.85))
    return np.asarray(rgb, dtype=np.float32) * 255


def _paint_stain(product: _Product, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint an irregular patch (a few ellipses) of a contrasting hue, blended so the texture shows through."""
    size = product.foreground.shape[0]
    yy, xx = _coordinates(size)
    y, x = _point_on_product(product, rng)
    blob = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(3, 6))):
        oy, ox = rng.normal(0, 0.04 * size, 2)
        ry, rx = size * rng.uniform(0.04, 0.09, 2)
        blob |= ((yy - y - oy) / ry) ** 2 + ((xx - x - ox) / rx) ** 2 < 1
    mask = blob & product.foreground
    alpha = rng.uniform(0.6, 0.8)
    image = product.image.copy()
    image[mask] = (1 - alpha) * image[mask] + alpha * _contrasting_colour(product.colour, rng)
    return image, mask


def _paint_missing(product: _Product, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replace one removable piece of the product by the background behind it."""
    mask = product.parts[rng.integers(len(product.parts))] & product.foreground
    image = product.image.copy()
    image[mask] = product.background[mask]
    return image, mask


def _paint_crack(product: _Product, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint a dark jagged fracture: a random walk of short segments with sharp turns, often with a branch."""
    size = product.foreground.shape[0]
    canvas = Image.new("L", (size, size))
    draw = ImageDraw.Draw(canvas)
    width = 1 if size < 96 else 2
    y, x = _point_on_product(product, rng)
    heading = rng.uniform(0, 2 * np.pi)
    points = [(x, y)]
    for _ in range(int(rng.integers(5, 9))):
        heading += rng.uniform(0.5, 1.0) * rng.choice([-1, 1])  # zig-zag: alternate sharp turns
        step = size * rng.uniform(0.03, 0.06)
        x, y = x + step * np.cos(heading), y + step * np.sin(heading)
        points.append((x, y))
    draw.line(points, fill=255, width=width)
    if rng.random() < 0.7:
        bx, by = points[len(points) // 2]
        angle = heading + rng.uniform(1.0, 2.0)
        length = size * rng.uniform(0.05, 0.1)
        draw.line([(bx, by), (bx + length * np.cos(angle), by + length * np.sin(angle))], fill=255, width=width)
    mask = (np.asarray(canvas) > 0) & product.foreground
    image = product.image.copy()
    image[mask] = rng.uniform(10, 35)
    return image, mask


def _paint_burn(product: _Product, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint a scorched patch: a charred black core fading through brown into the surface, irregular outline."""
    size = product.foreground.shape[0]
    yy, xx = _coordinates(size)
    y, x = _point_on_product(product, rng)
    radius = size * rng.uniform(0.07, 0.11)
    wobble = 1 + 0.25 * _smooth_noise(rng, size, 6)
    distance = np.hypot(yy - y, xx - x) / (radius * wobble.clip(0.5, 1.5))
    mask = (distance < 1) & product.foreground
    char = np.asarray((25, 15, 10), dtype=np.float32)
    scorch = np.asarray((120, 65, 25), dtype=np.float32)
    depth = distance[mask][:, None]
    colour = (1 - depth) * char + depth * scorch
    alpha = 0.95 - 0.35 * depth
    image = product.image.copy()
    image[mask] = (1 - alpha) * image[mask] + alpha * colour
    return image, mask


def _paint_contamination(product: _Product, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Scatter a cluster of small pale particles (dust, chips) of slightly varied tone over the surface."""
    size = product.foreground.shape[0]
    yy, xx = _coordinates(size)
    y, x = _point_on_product(product, rng)
    spread = size * rng.uniform(0.06, 0.1)
    specks = np.zeros((size, size), dtype=bool)
    tone = np.zeros((size, size), dtype=np.float32)
    for _ in range(int(rng.integers(8, 16))):
        sy, sx = rng.normal(0, spread, 2)
        speck = np.hypot(yy - y - sy, xx - x - sx) < size * rng.uniform(0.008, 0.018)
        specks |= speck
        tone[speck] = rng.uniform(195, 245)
    mask = specks & product.foreground
    image = product.image.copy()
    image[mask] = tone[mask][:, None] * np.asarray((1.0, 0.97, 0.9), dtype=np.float32)
    return image, mask


_RENDERERS: dict[str, Callable[[np.random.Generator, int], _Product]] = {
    "disc": _render_disc,
    "grid": _render_grid,
    "tile": _render_tile,
}
_PAINTERS: dict[str, Callable[[_Product, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "scratch": _paint_scratch,
    "hole": _paint_hole,
    "stain": _paint_stain,
    "missing": _paint_missing,
    "crack": _paint_crack,
    "burn": _paint_burn,
    "contamination": _paint_contamination,
}
DEFECT_KINDS: tuple[str, ...] = tuple(_PAINTERS)
"""Every defect kind the generator can paint; the knowledge base picks which the dataset's products show."""


def product_defects(category: str) -> tuple[str, ...]:
    """Defect folders of a product, in knowledge-base order; raises ``ValueError`` for an unknown product."""
    if category not in _RENDERERS:
        msg = f"Unknown synthetic category {category!r}; use one of {CATEGORIES}."
        raise ValueError(msg)
    return knowledge.raw_defects(SPEC, category)


def _check_image_size(image_size: int) -> None:
    """Reject images too small for the products' geometry (bars and holes a few pixels wide)."""
    if image_size < MIN_IMAGE_SIZE:
        msg = f"image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}."
        raise ValueError(msg)


def render_sample(
    category: str,
    defect: str | None,
    image_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one image of a product, with one defect or none (``defect=None``).

    The defect is painted after the product is rendered from ``rng``, so a generator in the same state gives
    the same defect-free image for ``defect=None``: the two differ only inside the mask.

    Returns:
        The ``(H, W, 3)`` uint8 RGB image and the ``(H, W)`` bool mask of the defect pixels (all ``False``
        for a normal image).

    """
    if defect is not None and defect not in product_defects(category):
        msg = f"Product {category!r} has no {defect!r} defect; it has {product_defects(category)}."
        raise ValueError(msg)
    return render_any(category, defect, image_size, rng)


def paintable_kinds(category: str) -> tuple[str, ...]:
    """Every kind of :data:`DEFECT_KINDS` the generator can paint on a product (``missing`` needs parts)."""
    product_defects(category)
    return tuple(kind for kind in DEFECT_KINDS if kind != "missing" or category != "tile")


def render_any(
    category: str,
    defect: str | None,
    image_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """As :func:`render_sample`, with any kind of :func:`paintable_kinds`, not only the dataset's own."""
    if defect is not None and defect not in paintable_kinds(category):
        msg = f"The generator cannot paint {defect!r} on {category!r}; it can paint {paintable_kinds(category)}."
        raise ValueError(msg)
    _check_image_size(image_size)
    gain = rng.uniform(0.92, 1.08)  # overall brightness of the shot
    product = _RENDERERS[category](rng, image_size)
    image, mask = product.image, np.zeros(product.foreground.shape, dtype=bool)
    if defect is not None:
        image, mask = _paint_defect(product, defect, rng)
    return np.clip(np.rint(image * gain), 0, 255).astype(np.uint8), mask


def _paint_defect(product: _Product, defect: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paint a defect, redrawing it while its mask is too small to see (e.g. a scratch between grid bars)."""
    min_pixels = product.foreground.shape[0] // 8
    for _ in range(MAX_PAINT_ATTEMPTS):
        image, mask = _PAINTERS[defect](product, rng)
        if mask.sum() >= min_pixels:
            return image, mask
    msg = f"Could not paint a visible {defect!r} defect in {MAX_PAINT_ATTEMPTS} attempts."
    raise RuntimeError(msg)


def _sample_rng(seed: int, category: str, split: str, label: str, index: int) -> np.random.Generator:
    """Seed one image's generator from folder names, not positions, so other folders never shift it."""
    folder = zlib.crc32(f"{category}/{split}/{label}".encode())
    return np.random.default_rng([seed, folder, index])


def _write_category(directory: Path, category: str, params: dict) -> None:
    """Write one product's ``train/good``, ``test/<label>`` and ``ground_truth/<defect>`` folders."""
    folders = [("train", NORMAL_FOLDER, params["n_train"]), ("test", NORMAL_FOLDER, params["n_test_good"])]
    folders += [("test", defect, params["n_test_per_defect"]) for defect in product_defects(category)]
    for split, label, count in folders:
        (directory / split / label).mkdir(parents=True)
        if label != NORMAL_FOLDER:
            (directory / "ground_truth" / label).mkdir(parents=True)
        for index in range(count):
            rng = _sample_rng(params["seed"], category, split, label, index)
            defect = None if label == NORMAL_FOLDER else label
            image, mask = render_sample(category, defect, params["image_size"], rng)
            Image.fromarray(image).save(directory / split / label / f"{index:03d}.png")
            if defect is not None:
                mask_path = directory / "ground_truth" / label / f"{index:03d}_mask.png"
                Image.fromarray(mask.astype(np.uint8) * 255).save(mask_path)


def _is_generated(root: Path, params: dict) -> bool:
    """Whether ``root`` already holds this exact dataset; raise if it holds anything else."""
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        return False
    try:
        if json.loads((root / METADATA_FILE).read_text()) == params:
            return True
    except (OSError, ValueError):
        pass  # no readable record: the folder holds something else
    msg = (
        f"{root} already exists and does not hold a synthetic dataset generated with {params}. "
        "Refusing to overwrite it: remove it or pick another root."
    )
    raise FileExistsError(msg)


def generate_synthetic_dataset(
    root: Path | str,
    categories: Sequence[str] = CATEGORIES,
    n_train: int = 8,
    n_test_good: int = 6,
    n_test_per_defect: int = 6,
    image_size: int = 128,
    seed: int = 0,
) -> Path:
    """Write the synthetic dataset under ``root`` in MVTec-AD's layout, unless it is already there.

    Layout per category: ``train/good/000.png``, ``test/good/000.png``, ``test/<defect>/000.png`` and
    ``ground_truth/<defect>/000_mask.png`` (0/255 grayscale), plus ``<root>/synthetic.json`` with the
    parameters. The dataset is built in a temporary sibling folder and moved into place at the end, so an
    interrupted run leaves nothing behind.

    Returns:
        ``root`` as a ``Path``.

    Raises:
        FileExistsError: ``root`` is not empty and was not generated with the same parameters.
        ValueError: An unknown category or an ``image_size`` below ``MIN_IMAGE_SIZE``.

    """
    root = Path(root)
    for category in categories:
        product_defects(category)
    _check_image_size(image_size)
    params = {
        "version": GENERATOR_VERSION,
        "categories": list(categories),
        "n_train": n_train,
        "n_test_good": n_test_good,
        "n_test_per_defect": n_test_per_defect,
        "image_size": image_size,
        "seed": seed,
    }
    if _is_generated(root, params):
        return root

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    try:
        staging.chmod(root.parent.stat().st_mode & 0o777)  # mkdtemp's private 0o700 would stick to the dataset
        for category in categories:
            _write_category(staging / category, category, params)
        (staging / METADATA_FILE).write_text(json.dumps(params, indent=2) + "\n")
        if root.exists():
            root.rmdir()  # empty, checked above
        staging.rename(root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return root


class SyntheticDefectsDataset(TypedMVTecADDataset):
    """The built-in synthetic dataset's typed dataset (laid out like MVTec-AD)."""

    spec: ClassVar[DatasetSpec] = SPEC


class WrittenSyntheticDefects(TypedMVTecAD):
    """The built-in synthetic dataset as it lies on disk, for runs that read it and never write it (reports)."""

    spec: ClassVar[DatasetSpec] = SPEC


class SyntheticDefects(WrittenSyntheticDefects):
    """Datamodule of the built-in synthetic dataset: procedural images for demos and tests, not a benchmark.

    Products ``disc``, ``grid`` and ``tile`` with ``scratch``, ``hole``, ``stain`` and ``missing`` defects
    (each product shows some of them) are drawn by :func:`generate_synthetic_dataset`; results on them say
    nothing about real industrial data. :meth:`prepare_data` generates all categories under ``root`` if they
    are not there yet (it never downloads), then items load like typed MVTec-AD ones, with ``gt_type_mask``.

    Args:
        root: Dataset folder. Defaults to ``"./datasets/SyntheticDefects"``.
        category: ``"disc"``, ``"grid"`` or ``"tile"``.
        seed: Seed of the generator; also seeds anomalib's random splits, if any.
        image_size: Side of the square images in pixels.
        n_train: Normal training images per category.
        n_test_good: Normal test images per category.
        n_test_per_defect: Test images per defect type of a category.
        train_batch_size, eval_batch_size, num_workers, train_augmentations, val_augmentations,
        test_augmentations, augmentations, test_split_mode, test_split_ratio, val_split_mode,
        val_split_ratio: As in anomalib's ``MVTecAD`` (``num_workers`` defaults to 0 for small CPU runs).

    """

    def __init__(
        self,
        root: Path | str = "./datasets/SyntheticDefects",
        category: str = "disc",
        seed: int = 0,
        image_size: int = 128,
        n_train: int = 8,
        n_test_good: int = 6,
        n_test_per_defect: int = 6,
        train_batch_size: int = 32,
        eval_batch_size: int = 32,
        num_workers: int = 0,
        train_augmentations: Transform | None = None,
        val_augmentations: Transform | None = None,
        test_augmentations: Transform | None = None,
        augmentations: Transform | None = None,
        test_split_mode: TestSplitMode | str = TestSplitMode.FROM_DIR,
        test_split_ratio: float = 0.2,
        val_split_mode: ValSplitMode | str = ValSplitMode.SAME_AS_TEST,
        val_split_ratio: float = 0.5,
    ) -> None:
        product_defects(category)
        super().__init__(
            root=root,
            category=category,
            train_batch_size=train_batch_size,
            eval_batch_size=eval_batch_size,
            num_workers=num_workers,
            train_augmentations=train_augmentations,
            val_augmentations=val_augmentations,
            test_augmentations=test_augmentations,
            augmentations=augmentations,
            test_split_mode=test_split_mode,
            test_split_ratio=test_split_ratio,
            val_split_mode=val_split_mode,
            val_split_ratio=val_split_ratio,
            seed=seed,
        )
        self.image_size = image_size
        self.n_train = n_train
        self.n_test_good = n_test_good
        self.n_test_per_defect = n_test_per_defect

    def prepare_data(self) -> None:
        """Generate the dataset (all categories) under ``root`` unless it is already there; never downloads."""
        generate_synthetic_dataset(
            self.root,
            categories=CATEGORIES,
            n_train=self.n_train,
            n_test_good=self.n_test_good,
            n_test_per_defect=self.n_test_per_defect,
            image_size=self.image_size,
            seed=self.seed,
        )


def main() -> None:
    """``dapo-synthetic``: write the synthetic dataset from the command line and print its root."""
    from jsonargparse import auto_cli

    print(auto_cli(generate_synthetic_dataset, as_positional=False))
