"""anomalib-dapo: zero-shot multi-type industrial anomaly segmentation (DAPO) as an anomalib plugin.

Public names are imported lazily so that importing the package never pulls in torch (the start-up hook,
``anomalib_dapo_plugin``, does not import it at all).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {name: "anomalib_dapo.models" for name in ("Dapo", "DapoModel", "MultiAds", "MultiAdsModel")}

if TYPE_CHECKING:
    from anomalib_dapo.models import Dapo, DapoModel, MultiAds, MultiAdsModel


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    msg = f"module 'anomalib_dapo' has no attribute '{name}'"
    raise AttributeError(msg)


__all__ = ["Dapo", "DapoModel", "MultiAds", "MultiAdsModel", "__version__"]
