"""MultiADS: multi-type anomaly segmentation with defect-aware prompt ensembles as an anomalib model.

Paper: Sadikaj, Zhou, Halilaj, Schmid, Staab and Plant (2025), *MultiADS: Defect-aware Supervision for
Multi-type Anomaly Detection and Segmentation in Zero-Shot Learning*, https://arxiv.org/abs/2504.06740. See
``README.md`` beside this file.

Example:
    >>> from anomalib_dapo.models.multiads import MultiAds
    >>> model = MultiAds(backbone="dapo-tiny", pretrained=None, image_size=64)

"""

from anomalib_dapo.models.multiads.lightning_model import MultiAds
from anomalib_dapo.models.multiads.torch_model import MultiAdsModel

__all__ = ["MultiAds", "MultiAdsModel"]
