"""The float32 heads of a mixed-precision run (``--trainer.precision bf16-mixed``, Lightning's autocast).

Lightning runs each step under ``torch.autocast`` when asked for mixed precision; the image encoder then computes
in half precision. The similarity heads divide cosines by ``τ`` = 0.07, which magnifies half-precision rounding
14-fold, and the text encoder gives the states they compare with: both run in float32.
"""

from contextlib import AbstractContextManager, nullcontext

import torch


def float32(device: torch.device) -> AbstractContextManager:
    """Within the block, autocast is off on ``device`` when it was on (else nothing changes, as in exports)."""
    return torch.autocast(device.type, enabled=False) if torch.is_autocast_enabled(device.type) else nullcontext()
