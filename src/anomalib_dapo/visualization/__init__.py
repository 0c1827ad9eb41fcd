"""Defect-type pictures: colour-coded type overlays with a legend, and anomalib's visualizer extended with them."""

from anomalib_dapo.visualization.type_overlay import (
    PALETTE,
    LegendEntry,
    draw_legend,
    overlay_type_mask,
    render_type_overlay,
    type_colour,
    type_legend_entries,
    type_name,
    with_legend,
)
from anomalib_dapo.visualization.visualizer import TypeVisualizer

__all__ = [
    "PALETTE",
    "LegendEntry",
    "TypeVisualizer",
    "draw_legend",
    "overlay_type_mask",
    "render_type_overlay",
    "type_colour",
    "type_legend_entries",
    "type_name",
    "with_legend",
]
