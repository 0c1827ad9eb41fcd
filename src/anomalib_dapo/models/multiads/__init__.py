"""MultiADS: multi-type anomaly segmentation with defect-aware prompts (Sadikaj et al.) as an anomalib model."""

from anomalib_dapo.models.multiads.lightning_model import MultiAds
from anomalib_dapo.models.multiads.torch_model import MultiAdsModel

__all__ = ["MultiAds", "MultiAdsModel"]
