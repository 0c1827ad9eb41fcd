"""Frozen OpenCLIP backbone: loading with clear errors and the tiny test architecture."""

from anomalib_dapo.backbone.clip import TINY_BACKBONE, BackboneError, ClipBackbone, load_clip

__all__ = ["TINY_BACKBONE", "BackboneError", "ClipBackbone", "load_clip"]
