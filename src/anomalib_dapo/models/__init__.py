"""The plugin's anomalib models."""

from anomalib_dapo.models.dapo import Dapo, DapoModel

__all__ = ["Dapo", "DapoModel"]
