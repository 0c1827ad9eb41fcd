"""The plugin's anomalib models."""

from anomalib_dapo.models.dapo import Dapo, DapoModel
from anomalib_dapo.models.multiads import MultiAds, MultiAdsModel

__all__ = ["Dapo", "DapoModel", "MultiAds", "MultiAdsModel"]
