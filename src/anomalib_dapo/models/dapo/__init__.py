"""DAPO: defect-aware prompt optimisation (Nazer et al., 2025) as an anomalib model."""

from anomalib_dapo.models.dapo.lightning_model import Dapo
from anomalib_dapo.models.dapo.torch_model import DapoModel

__all__ = ["Dapo", "DapoModel"]
