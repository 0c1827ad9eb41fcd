"""The plugin's anomalib models."""

from anomalib_dapo.compat import name_on_anomalib
from anomalib_dapo.models.dapo import Dapo, DapoModel
from anomalib_dapo.models.multiads import MultiAds, MultiAdsModel

name_on_anomalib(Dapo, MultiAds)

__all__ = ["Dapo", "DapoModel", "MultiAds", "MultiAdsModel"]
