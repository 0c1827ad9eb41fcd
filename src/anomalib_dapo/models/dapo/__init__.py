"""DAPO: defect-aware prompt optimisation as an anomalib model.

Paper: Nazer, Zhou, Halilaj, Sadikaj and Staab (2025), *Defect-aware Hybrid Prompt Optimization via Progressive
Tuning for Zero-Shot Multi-type Anomaly Detection and Segmentation* (no public link in the paper's text). See
``README.md`` beside this file.

Example:
    >>> from anomalib_dapo.models.dapo import Dapo
    >>> model = Dapo(backbone="dapo-tiny", pretrained=None, image_size=64)

"""

from anomalib_dapo.models.dapo.lightning_model import Dapo
from anomalib_dapo.models.dapo.torch_model import DapoModel

__all__ = ["Dapo", "DapoModel"]
