"""Load an OpenCLIP model for DAPO: real weights by tag or local file, or the tiny random architecture."""

import hashlib
import logging
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import open_clip
import torch
from open_clip.model import CLIP
from torch import nn

logger = logging.getLogger(__name__)

TINY_BACKBONE = "dapo-tiny"
"""A 4-layer, 64-wide CLIP with random weights, for tests and the demo only (never chosen silently)."""


SYNTHETIC_TAG = "synthetic"
"""``pretrained`` tag of the weights shipped for ``dapo-tiny``, pretrained on synthetic defects only."""
SYNTHETIC_WEIGHTS = Path(__file__).parent / "weights" / "dapo-tiny-synthetic.safetensors"
SYNTHETIC_SHA256 = "7fdc3ebff4248c233200860ecb1c35d29f11a8ffbb2ba1ba88ee42d3a3011335"
SYNTHETIC_COMMAND = "dapo-pretrain-tiny --output dapo-tiny-synthetic.safetensors"
"""The command that reproduces :data:`SYNTHETIC_WEIGHTS` (its defaults are the shipped run's)."""


RANDOM_BACKBONE_SEED = 0
"""Seed of the weights of a backbone built without pretrained weights (``dapo-tiny`` in tests and the demo)."""


class BackboneError(RuntimeError):
    """The CLIP backbone cannot be built or its weights cannot be loaded."""


@cache
def _register_tiny_config() -> None:
    open_clip.add_model_config(Path(__file__).parent / "model_configs")


@dataclass(frozen=True)
class ClipBackbone:
    """A frozen CLIP model with the tokenizer that goes with it."""

    model: CLIP
    tokenizer: open_clip.tokenizer.SimpleTokenizer | nn.Module

    @property
    def vision_layers(self) -> int:
        """Number of transformer blocks in the image encoder."""
        return len(self.model.visual.transformer.resblocks)

    @property
    def text_layers(self) -> int:
        """Number of transformer blocks in the text encoder."""
        return len(self.model.transformer.resblocks)


def _check_name(backbone: str) -> None:
    if backbone not in open_clip.list_models():
        vit = [name for name in open_clip.list_models() if name.startswith("ViT-")][:12]
        msg = (
            f"Unknown backbone '{backbone}'. Pass an OpenCLIP model name, e.g. --model.backbone ViT-L-14-336 "
            f"(the paper's), or '{TINY_BACKBONE}' for the tiny test model. Some known names: {', '.join(vit)}."
        )
        raise BackboneError(msg)


def load_clip(backbone: str, pretrained: str | None, image_size: int, quick_gelu: bool = True) -> ClipBackbone:
    """Build a frozen OpenCLIP model at ``image_size`` (open_clip interpolates the position embeddings).

    Args:
        backbone: OpenCLIP model name, e.g. ``ViT-L-14-336``, or ``dapo-tiny``.
        pretrained: An OpenCLIP tag (``openai``) or a path to a local checkpoint file: an open_clip state dict
            (``.pt``/``.bin``/``.safetensors``) or OpenAI's TorchScript file (``ViT-L-14-336px.pt``). ``None``
            builds random weights. ``dapo-tiny`` has one tag, ``synthetic``: the shipped weights pretrained on
            synthetic defects (:data:`SYNTHETIC_WEIGHTS`), besides ``None`` or a file.
        image_size: Input resolution; the patch grid is ``image_size // patch_size``.
        quick_gelu: Use QuickGELU, as OpenAI's CLIP weights were trained with it.

    """
    _register_tiny_config()
    _check_name(backbone)
    if backbone == TINY_BACKBONE and pretrained == SYNTHETIC_TAG:
        pretrained = str(synthetic_weights())
    is_file = bool(pretrained) and Path(pretrained).is_file()
    if pretrained and Path(pretrained).suffix and not is_file:
        msg = f"Backbone weights file not found: {pretrained}. Pass the path of a {backbone} checkpoint file."
        raise BackboneError(msg)
    if backbone == TINY_BACKBONE and pretrained and not is_file:
        msg = (
            f"'{TINY_BACKBONE}' has no pretrained weights to download: pass --model.pretrained {SYNTHETIC_TAG} "
            "(the shipped weights, pretrained on synthetic defects), null (random weights) or a local file."
        )
        raise BackboneError(msg)
    if backbone == TINY_BACKBONE and not pretrained:
        logger.warning("'%s' is a tiny CLIP with RANDOM weights: a test/demo model only.", backbone)
    # open_clip reads TorchScript archives (OpenAI's own format) only without ``weights_only``, which it sets.
    jit_file = is_file and _is_torchscript(Path(pretrained))
    try:
        # Random weights are drawn from a fixed seed: learned checkpoints leave the frozen backbone out, so a
        # reloaded model must meet the very backbone it was trained on. The caller's RNG state is untouched.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_BACKBONE_SEED)
            model = open_clip.create_model(
                backbone,
                pretrained=None if jit_file else pretrained or None,
                force_image_size=image_size,
                force_quick_gelu=quick_gelu,
            )
        if jit_file:
            open_clip.load_checkpoint(model, pretrained, weights_only=False)
    except Exception as error:  # open_clip raises many kinds (network, hub, format); all mean the same to a user
        msg = (
            f"Could not load CLIP weights '{pretrained}' for {backbone}: {error}. Without network access, "
            f"download the checkpoint once (for ViT-L-14-336 with OpenAI weights: the file 'ViT-L-14-336px.pt' "
            f"or open_clip's 'open_clip_pytorch_model.bin') and pass its path: --model.pretrained /path/to/file."
        )
        raise BackboneError(msg) from error
    if not model.transformer.batch_first:
        msg = f"{backbone}: only batch-first open_clip transformers are supported."
        raise BackboneError(msg)
    model.requires_grad_(False).eval()
    return ClipBackbone(model=model, tokenizer=open_clip.get_tokenizer(backbone))


def synthetic_weights() -> Path:
    """The shipped ``dapo-tiny`` weights file, after checking its sha256; logs that they know synthetic data only."""
    if not SYNTHETIC_WEIGHTS.is_file():
        msg = (
            f"The shipped weights {SYNTHETIC_WEIGHTS} are missing: reinstall anomalib-dapo or run {SYNTHETIC_COMMAND}."
        )
        raise BackboneError(msg)
    digest = hashlib.sha256(SYNTHETIC_WEIGHTS.read_bytes()).hexdigest()
    if digest != SYNTHETIC_SHA256:
        msg = (
            f"The shipped weights {SYNTHETIC_WEIGHTS} have sha256 {digest}, not {SYNTHETIC_SHA256}: the file is "
            f"damaged or was replaced. Reinstall anomalib-dapo, or pass a file you made with `{SYNTHETIC_COMMAND}` "
            "as --model.pretrained /path/to/file."
        )
        raise BackboneError(msg)
    logger.warning(
        "'%s' with the '%s' weights: a tiny CLIP pretrained on synthetic defects only, for demos and the zero-shot "
        "rig; its figures say nothing about real products.",
        TINY_BACKBONE,
        SYNTHETIC_TAG,
    )
    return SYNTHETIC_WEIGHTS


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``constants.pkl``), loaded by TorchScript's own reader.

    Such archives hold no Python pickle to execute, so reading them without ``weights_only`` is safe.
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def token_statistics(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std of an embedding table: the "CLIP space" of appendix 10.2."""
    table = table.detach().reshape(-1, table.shape[-1]).float()
    return table.mean(dim=0), table.std(dim=0)
