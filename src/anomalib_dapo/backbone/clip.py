"""Load an OpenCLIP model for DAPO: real weights by tag or local file, or the tiny random architecture."""

import hashlib
import logging
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import open_clip
import torch
from open_clip.model import CLIP, resize_pos_embed
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


class _OpenClipProgress(logging.Filter):
    """open_clip's step-by-step messages, which it logs on the root logger; errors pass."""

    folder = str(Path(open_clip.__file__).parent)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or not record.pathname.startswith(self.folder)


@contextmanager
def _quiet_open_clip() -> Iterator[None]:
    """Keep open_clip's progress messages (and its "no pretrained weights" warning) off the console.

    :func:`load_clip` says itself what matters (random weights, a missing file). The null handler keeps
    open_clip's ``logging.info`` calls from installing a plain console handler on an unconfigured root logger
    (``logging.basicConfig``), which would print every later record a second time.
    """
    root, guard, progress = logging.getLogger(), logging.NullHandler(), _OpenClipProgress()
    root.addHandler(guard)
    root.addFilter(progress)
    try:
        yield
    finally:
        root.removeFilter(progress)
        root.removeHandler(guard)


@cache
def _register_tiny_config() -> None:
    open_clip.add_model_config(Path(__file__).parent / "model_configs")


@dataclass(frozen=True)
class ClipBackbone:
    """A frozen CLIP model with the tokenizer that goes with it."""

    model: CLIP
    tokenizer: open_clip.tokenizer.SimpleTokenizer | nn.Module


def _check_name(backbone: str) -> None:
    if backbone not in open_clip.list_models():
        vit = [name for name in open_clip.list_models() if name.startswith("ViT-")][:12]
        msg = (
            f"Unknown backbone '{backbone}'. Pass an OpenCLIP model name, e.g. --model.backbone ViT-L-14-336 "
            f"(the paper's), or '{TINY_BACKBONE}' for the tiny test model. Some known names: {', '.join(vit)}."
        )
        raise BackboneError(msg)


def _check_image_size(backbone: str, image_size: int) -> None:
    """Refuse an input size that is not a positive multiple of the backbone's patch size (pixels would be cut)."""
    patch = open_clip.get_model_config(backbone)["vision_cfg"].get("patch_size")
    if not isinstance(patch, int) or (isinstance(image_size, int) and image_size > 0 and not image_size % patch):
        return
    nearest = max(patch, round(image_size / patch) * patch) if isinstance(image_size, int | float) else patch
    msg = (
        f"image_size {image_size!r} does not fit {backbone}: it takes a positive multiple of its patch size "
        f"{patch}. Pass e.g. --model.image_size {nearest}."
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
    _check_image_size(backbone, image_size)
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
    elif not pretrained:
        logger.warning("%s has RANDOM weights (pretrained=None): pass --model.pretrained openai or a file.", backbone)
    # OpenAI's TorchScript archives go through torch.jit.load alone; open_clip reads every other file with
    # weights_only=True. No file is ever unpickled with arbitrary objects.
    jit_file = is_file and _is_torchscript(Path(pretrained))
    try:
        # Random weights are drawn from a fixed seed: learned checkpoints leave the frozen backbone out, so a
        # reloaded model must meet the very backbone it was trained on. The caller's RNG state is untouched.
        with torch.random.fork_rng(devices=[]), _quiet_open_clip():
            torch.manual_seed(RANDOM_BACKBONE_SEED)
            model = open_clip.create_model(
                backbone,
                pretrained=None if jit_file else pretrained or None,
                force_image_size=image_size,
                force_quick_gelu=quick_gelu,
            )
        if jit_file:
            _load_torchscript(model, Path(pretrained), backbone)
    except BackboneError:
        raise
    except Exception as error:  # open_clip raises many kinds (network, hub, format); all mean the same to a user
        if is_file:
            raise BackboneError(_not_clip_weights(Path(pretrained), backbone, error)) from error
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
    return ClipBackbone(model=model, tokenizer=_tokenizer(backbone))


@cache
def _tokenizer(backbone: str) -> open_clip.tokenizer.SimpleTokenizer | nn.Module:
    """open_clip's tokenizer of ``backbone``, built once per process and shared by every model built on it.

    Building one reads and parses the BPE vocabulary (about 0.1 s on a CPU core), which every model construction
    paid; tokenizing only reads it (a shared BPE cache of the words seen is all that grows).
    """
    with _quiet_open_clip():
        return open_clip.get_tokenizer(backbone)


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
    """Whether ``path`` looks like a TorchScript archive (a zip with ``constants.pkl``).

    Only a routing guess: a file taken for TorchScript is read by ``torch.jit.load`` alone, which executes no
    Python pickle, so a crafted zip that merely looks like one is refused there.
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def _load_torchscript(model: CLIP, path: Path, backbone: str) -> None:
    """Load OpenAI's TorchScript CLIP into ``model``: the archive's state dict less its three scalars, resized.

    The steps of ``open_clip.load_checkpoint`` for this format, which it reaches only through ``torch.load``
    without ``weights_only``.
    """
    try:
        archive = torch.jit.load(path, map_location="cpu")
    except RuntimeError as error:
        raise BackboneError(_not_clip_weights(path, backbone, error)) from error
    state = archive.state_dict()
    for key in ("input_resolution", "context_length", "vocab_size"):
        state.pop(key, None)
    resize_pos_embed(state, model)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise BackboneError(_not_clip_weights(path, backbone, error)) from error


def _not_clip_weights(path: Path, backbone: str, error: Exception) -> str:
    """The message for a weights file that cannot be read as CLIP weights: a learned checkpoint, or no checkpoint."""
    if _is_model_checkpoint(path):
        return (
            f"{path} is a checkpoint of a trained model (Lightning), not CLIP weights: pass it as --model.weights, "
            f"and as --model.pretrained the CLIP weights of {backbone} it was trained on."
        )
    if isinstance(error, pickle.UnpicklingError):
        reason = "it holds Python objects besides tensors, which are never unpickled"
    elif "loading state_dict" in str(error):
        reason = "its tensors do not fit this architecture: check --model.backbone"
    else:
        reason = f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else 'unreadable'}"
    return (
        f"{path} is not a CLIP checkpoint for {backbone} ({reason}). Pass OpenAI's TorchScript file "
        "(ViT-L-14-336px.pt) or an open_clip state dict (open_clip_pytorch_model.bin, .safetensors) of that model."
    )


def _is_model_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a Lightning checkpoint (Dapo's, MultiAds' or another model's), read without unpickling."""
    try:
        if any(name.startswith("anomalib") for name in torch.serialization.get_unsafe_globals_in_checkpoint(path)):
            return True
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # anything unreadable is simply not a checkpoint
        return False
    return isinstance(checkpoint, dict) and "pytorch-lightning_version" in checkpoint


def token_statistics(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and std of an embedding table: the "CLIP space" of appendix 10.2."""
    table = table.detach().reshape(-1, table.shape[-1]).float()
    return table.mean(dim=0), table.std(dim=0)
