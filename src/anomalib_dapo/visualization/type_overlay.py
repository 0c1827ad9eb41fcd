"""Colour-coded defect-type overlays with a legend naming each type, as plain PIL images.

Type ``k`` of a mask (0 = normal) is ``names[k - 1]`` and is drawn in ``type_colour(k)``; normal pixels keep
the image. A typed pixel is ``round((1 - alpha) * image + alpha * colour)``, per channel.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
    (174, 199, 232),
    (255, 187, 120),
    (152, 223, 138),
    (255, 152, 150),
    (197, 176, 213),
    (196, 156, 148),
    (247, 182, 210),
    (199, 199, 199),
    (219, 219, 141),
    (158, 218, 229),
)
"""matplotlib's qualitative ``tab20``, dark shades first, so up to ten types get tab10's well-separated colours."""

TypeMask = np.ndarray | torch.Tensor


class LegendEntry(NamedTuple):
    """One line of the legend: the type index in the masks, its name and its colour."""

    index: int
    name: str
    colour: tuple[int, int, int]


def type_colour(index: int) -> tuple[int, int, int]:
    """Colour of type ``index`` (1-based); the palette repeats beyond its 20 colours."""
    if index < 1:
        msg = f"Type indices start at 1 (0 is normal), got {index}."
        raise ValueError(msg)
    return PALETTE[(index - 1) % len(PALETTE)]


def type_name(index: int, names: Sequence[str]) -> str:
    """Name of type ``index``; ``"type k"`` for an index beyond the vocabulary (e.g. masks of another one)."""
    return names[index - 1] if index <= len(names) else f"type {index}"


def _as_array(type_mask: TypeMask) -> np.ndarray:
    """An ``(H, W)`` int64 array of a numpy or torch mask."""
    if isinstance(type_mask, torch.Tensor):
        type_mask = type_mask.detach().cpu().numpy()
    mask = np.asarray(type_mask).squeeze()
    if mask.ndim != 2:
        msg = f"A defect-type mask must be (H, W), got shape {np.asarray(type_mask).shape}."
        raise ValueError(msg)
    return mask.astype(np.int64)


def type_legend_entries(names: Sequence[str], masks: Sequence[TypeMask] | None = None) -> list[LegendEntry]:
    """Legend entries of the types present in any of ``masks``, in type order; all of ``names`` if ``None``."""
    if masks is None:
        indices = range(1, len(names) + 1)
    else:
        present = set().union(*(np.unique(_as_array(mask)).tolist() for mask in masks))
        indices = sorted(present - {0})
    return [LegendEntry(index, type_name(index, names), type_colour(index)) for index in indices]


def overlay_type_mask(image: Image.Image, type_mask: TypeMask, alpha: float = 0.5) -> Image.Image:
    """Blend each type's colour into ``image`` where the mask has that type; normal pixels are unchanged.

    The mask is resized to the image with nearest-neighbour sampling, so no mixed (non-existent) types appear.
    """
    if not 0.0 <= alpha <= 1.0:
        msg = f"alpha must be in [0, 1], got {alpha}."
        raise ValueError(msg)
    mask = _as_array(type_mask)
    if mask.shape != (image.height, image.width):
        mask_image = Image.fromarray(mask.astype(np.int32), mode="I")
        mask = np.asarray(mask_image.resize(image.size, Image.Resampling.NEAREST)).astype(np.int64)
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    colours = np.zeros_like(pixels)
    for index in np.unique(mask[mask > 0]).tolist():
        colours[mask == index] = type_colour(index)
    blended = np.where((mask > 0)[..., None], (1.0 - alpha) * pixels + alpha * colours, pixels)
    return Image.fromarray(blended.round().astype(np.uint8))


def draw_legend(entries: Sequence[LegendEntry], width: int, font_size: int = 20) -> Image.Image:
    """A white strip ``width`` wide listing each entry as a colour swatch and its name, wrapping into rows."""
    font = ImageFont.load_default(size=font_size)
    pad = font_size // 2
    items = [("Defect types:", None)] + [(entry.name, entry.colour) for entry in entries]
    if not entries:
        items.append(("none", None))
    # Lay the items out first, to size the strip before drawing.
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    positions: list[tuple[int, int]] = []
    x, y = pad, pad
    for text, colour in items:
        item_width = measure.textbbox((0, 0), text, font=font)[2] + (font_size + pad if colour else 0)
        if x > pad and x + item_width > width - pad:
            x, y = pad, y + font_size + pad
        positions.append((x, y))
        x += item_width + 2 * pad
    legend = Image.new("RGB", (width, y + font_size + pad), "white")
    draw = ImageDraw.Draw(legend)
    for (text, colour), (x, y) in zip(items, positions, strict=True):
        if colour is not None:
            draw.rectangle((x, y, x + font_size - 1, y + font_size - 1), fill=colour, outline="black")
            x += font_size + pad
        draw.text((x, y), text, font=font, fill="black")
    return legend


def with_legend(picture: Image.Image, entries: Sequence[LegendEntry], font_size: int = 20) -> Image.Image:
    """``picture`` with the legend of ``entries`` below it, as wide as the picture."""
    legend = draw_legend(entries, picture.width, font_size)
    combined = Image.new("RGB", (picture.width, picture.height + legend.height), "white")
    combined.paste(picture.convert("RGB"), (0, 0))
    combined.paste(legend, (0, picture.height))
    return combined


def render_type_overlay(
    image: Image.Image,
    type_mask: TypeMask,
    names: Sequence[str],
    alpha: float = 0.5,
    font_size: int = 20,
) -> Image.Image:
    """``image`` with its defect types coloured in and a legend of the types present below it."""
    return with_legend(overlay_type_mask(image, type_mask, alpha), type_legend_entries(names, [type_mask]), font_size)
