"""Type overlays: exact blended colours where a typed defect is, the image elsewhere, and a legend of the types."""

import numpy as np
import pytest
import torch
from PIL import Image

from anomalib_dapo.visualization import (
    PALETTE,
    LegendEntry,
    draw_legend,
    overlay_type_mask,
    render_type_overlay,
    type_colour,
    type_legend_entries,
)

NAMES = ("scratch", "hole", "stain")


@pytest.fixture
def image() -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8))


@pytest.fixture
def mask() -> np.ndarray:
    """An 8×12 mask (4× smaller than the image): a scratch block top-left, a stain block bottom-right."""
    mask = np.zeros((8, 12), dtype=np.int64)
    mask[1:3, 1:4] = 1
    mask[5:8, 8:12] = 3
    return mask


def _upsampled(mask: np.ndarray, factor: int = 4) -> np.ndarray:
    return mask.repeat(factor, axis=0).repeat(factor, axis=1)


def test_typed_pixels_blend_the_type_colour_and_normal_pixels_keep_the_image(image, mask):
    alpha = 0.4
    overlay = np.asarray(overlay_type_mask(image, mask, alpha=alpha))
    original = np.asarray(image).astype(np.float64)
    full = _upsampled(mask)
    for index in (1, 3):
        expected = ((1 - alpha) * original + alpha * np.array(PALETTE[index - 1])).round().astype(np.uint8)
        assert np.array_equal(overlay[full == index], expected[full == index])
    assert np.array_equal(overlay[full == 0], np.asarray(image)[full == 0])
    assert overlay.shape == original.shape


def test_torch_masks_with_a_channel_axis_are_accepted(image, mask):
    from_torch = overlay_type_mask(image, torch.from_numpy(mask)[None])
    assert np.array_equal(np.asarray(from_torch), np.asarray(overlay_type_mask(image, mask)))


def test_legend_entries_list_the_present_types_in_order_with_their_names_and_colours(mask):
    other = np.zeros_like(mask)
    other[0, 0] = 5
    assert type_legend_entries(NAMES, [mask, other]) == [
        LegendEntry(1, "scratch", PALETTE[0]),
        LegendEntry(3, "stain", PALETTE[2]),
        LegendEntry(5, "type 5", PALETTE[4]),
    ]
    assert [entry.name for entry in type_legend_entries(NAMES)] == list(NAMES)
    assert type_legend_entries(NAMES, [np.zeros_like(mask)]) == []


def test_palette_repeats_and_normal_has_no_colour():
    assert type_colour(len(PALETTE) + 1) == type_colour(1)
    assert len(set(PALETTE)) == len(PALETTE)
    with pytest.raises(ValueError, match="start at 1"):
        type_colour(0)


def test_bad_inputs_are_refused(image, mask):
    with pytest.raises(ValueError, match="alpha"):
        overlay_type_mask(image, mask, alpha=1.5)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        overlay_type_mask(image, np.zeros((2, 3, 8, 12)))


def test_rendered_overlay_has_a_legend_with_a_swatch_per_present_type(image, mask):
    rendered = render_type_overlay(image, mask, NAMES, alpha=0.5, font_size=12)
    assert rendered.width == image.width
    assert rendered.height > image.height
    pixels = np.asarray(rendered)
    assert np.array_equal(pixels[: image.height], np.asarray(overlay_type_mask(image, mask, alpha=0.5)))
    legend = pixels[image.height :].reshape(-1, 3)
    colours = {tuple(pixel) for pixel in legend.tolist()}
    assert PALETTE[0] in colours  # scratch
    assert PALETTE[2] in colours  # stain
    assert PALETTE[1] not in colours  # hole is absent from the mask
    assert (legend == 0).all(axis=1).any()  # the black names


def test_legend_wraps_into_rows_when_narrow():
    entries = type_legend_entries(NAMES)
    wide = draw_legend(entries, width=800, font_size=12)
    narrow = draw_legend(entries, width=120, font_size=12)
    assert narrow.height > wide.height
    assert narrow.width == 120
