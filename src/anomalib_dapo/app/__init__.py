"""A web page for inspectors: drop in an image, name the defects, see the score, the anomaly map and the types.

``pip install anomalib-dapo[app]``, then ``dapo-app --weights learned.ckpt`` (or ``--export model.pt``).
"""

from anomalib_dapo.app.inspector import Inspection, Inspector, load_inspector

__all__ = ["Inspection", "Inspector", "load_inspector"]
