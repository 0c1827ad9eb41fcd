"""Write the learned-weights file a user shares: a training checkpoint without the optimizer's state.

``anomalib train`` writes a Lightning checkpoint that also holds Adam's two moments of every learned tensor
(about 40 MB for ViT-L-14-336) so that training can resume. What another user needs to test or predict is
the learned prompts and adapters, the calibration and the model's hyper-parameters: about 13 MB::

    python -m anomalib_dapo.share results/Dapo/.../weights/lightning/model.ckpt dapo-learned.ckpt

The file is what Lightning's ``save_weights_only`` writes; load it with ``--model.weights`` or ``--ckpt_path``.
"""

import argparse
import os
import pickle
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from anomalib.utils.serialization import anomalib_safe_globals

from anomalib_dapo.models.components.checkpoint import META_KEY, safe_globals

TRAINING_STATE = ("optimizer_states", "lr_schedulers", "callbacks")
"""What only resuming training needs: the checkpoint keys Lightning's ``save_weights_only`` leaves out."""


class ShareError(ValueError):
    """The source is not a plugin checkpoint, or the target would overwrite a file."""


def share(source: Path | str, target: Path | str) -> Path:
    """Write ``source``'s learned weights without training state to ``target`` (a new file), atomically.

    Raises:
        ShareError: ``target`` exists, or ``source`` is not a checkpoint written by the plugin's models.

    """
    source, target = Path(source), Path(target)
    if target.exists():
        msg = f"{target} exists: pass a new file name (nothing is overwritten)."
        raise ShareError(msg)
    try:
        with anomalib_safe_globals(extra=safe_globals()):
            checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        msg = f"{source} is not a readable checkpoint ({type(error).__name__}): pass the model.ckpt of a training run."
        raise ShareError(msg) from error
    if not isinstance(checkpoint, dict) or META_KEY not in checkpoint or "state_dict" not in checkpoint:
        msg = f"{source} is not a checkpoint written by 'anomalib train --model Dapo' (or MultiAds)."
        raise ShareError(msg)
    shared = {key: value for key, value in checkpoint.items() if key not in TRAINING_STATE}
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(shared, temporary)
        os.replace(temporary, target)  # the file appears whole, or not at all
    finally:
        Path(temporary).unlink(missing_ok=True)
    return target


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m anomalib_dapo.share SOURCE TARGET``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the model.ckpt written by anomalib train")
    parser.add_argument("target", type=Path, help="the learned-weights file to write (must not exist)")
    args = parser.parse_args(argv)
    try:
        path = share(args.source, args.target)
    except (ShareError, FileNotFoundError) as error:
        parser.exit(1, f"error: {error}\n")
    before, after = args.source.stat().st_size / 2**20, path.stat().st_size / 2**20
    print(f"Wrote {path} ({after:.1f} MB; the training checkpoint is {before:.1f} MB).")


if __name__ == "__main__":
    main()
