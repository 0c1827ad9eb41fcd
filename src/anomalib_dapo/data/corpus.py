"""Close-up views of the synthetic products with one defect kind each: the tiny CLIP's corpus and its test rig.

A view is a ``size``-pixel window cut from a product rendered at ``zoom × size`` pixels, placed over the defect,
so a defect covers ``zoom²`` times more of the view than of a whole product at ``size`` pixels: at 64 pixels a
whole-image defect is a few pixels, which let a first contrastive attempt learn the products and not the defects.
Every view has its own generator, seeded from the seed, its product, its kind and its index, like the dataset's.
"""

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anomalib_dapo.data.synthetic import CATEGORIES, paintable_kinds, render_any

NORMAL = "normal"
"""The state of a view with no defect."""


@dataclass(frozen=True)
class Views:
    """A set of views: ``images`` ``(N, S, S, 3)`` uint8, ``masks`` ``(N, S, S)`` bool, and per view its labels."""

    images: np.ndarray
    masks: np.ndarray
    products: tuple[str, ...]
    kinds: tuple[str, ...]  # NORMAL or a defect kind


def product_states(product: str, kinds: Sequence[str] | None = None) -> tuple[str, ...]:
    """``NORMAL`` then the defect kinds of ``kinds`` (default: all) that the generator can paint on ``product``."""
    paintable = paintable_kinds(product)
    return (NORMAL, *(kind for kind in (paintable if kinds is None else kinds) if kind in paintable))


def render_view(
    product: str,
    kind: str,
    rng: np.random.Generator,
    size: int = 64,
    zoom: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """One ``size``-pixel view of ``product`` with defect ``kind`` (or ``NORMAL``) and its defect mask.

    A defect view's window holds a defect pixel drawn at random, at least an eighth of the window from its edge.
    """
    full = size * zoom
    image, mask = render_any(product, None if kind == NORMAL else kind, full, rng)
    margin = size // 8
    if mask.any():
        rows, cols = np.nonzero(mask)
        pick = rng.integers(len(rows))
        top = int(np.clip(rows[pick] - rng.integers(margin, size - margin), 0, full - size))
        left = int(np.clip(cols[pick] - rng.integers(margin, size - margin), 0, full - size))
    else:
        top, left = (int(value) for value in rng.integers(0, full - size + 1, 2))
    window = (slice(top, top + size), slice(left, left + size))
    return image[window], mask[window]


def make_views(
    per_state: int,
    seed: int,
    products: Sequence[str] = CATEGORIES,
    kinds: Sequence[str] | None = None,
    size: int = 64,
    zoom: int = 2,
) -> Views:
    """``per_state`` views of every state of :func:`product_states` of every product, grouped by product and state."""
    images, masks, labels = [], [], []
    for product in products:
        for kind in product_states(product, kinds):
            folder = zlib.crc32(f"view/{product}/{kind}".encode())
            for index in range(per_state):
                image, mask = render_view(product, kind, np.random.default_rng([seed, folder, index]), size, zoom)
                images.append(image)
                masks.append(mask)
                labels.append((product, kind))
    return Views(
        images=np.stack(images),
        masks=np.stack(masks),
        products=tuple(product for product, _ in labels),
        kinds=tuple(kind for _, kind in labels),
    )
