"""The image input contract of the plugin's models and of their exports: float RGB batches in ``[0, 1]``.

Below both the models and :mod:`anomalib_dapo.deploy`, which checks and resizes images before an exported graph
exactly as the models' own pre-processing does.
"""

import torch
from torchvision.transforms.v2 import InterpolationMode, Resize


class ImageBatchError(ValueError):
    """Input images are not a batch of float RGB images ``(B, 3, H, W)`` (in ``[0, 1]`` before pre-processing)."""


class NonFiniteInputError(ValueError):
    """Input images hold NaN or infinite values, which would otherwise come out as NaN scores."""


def _exporting() -> bool:
    """A graph is being exported: its input signature fixes shape and type, and it cannot raise."""
    return torch.compiler.is_exporting() or torch.jit.is_tracing()


def check_images(images: torch.Tensor, model: str, unit_range: bool = False) -> None:
    """Refuse what is no batch of float RGB images, and with ``unit_range`` pixels outside ``[0, 1]``.

    uint8 images or floats in 0–255 would otherwise be normalised as if in ``[0, 1]``: silently wrong scores.
    Skipped while exporting a graph.

    Args:
        images: The batch given to the model.
        model: The model's name (``Dapo``, ``MultiAds``), for the message.
        unit_range: Also refuse finite values outside ``[0, 1]`` (images before the pre-processing).
            Defaults to ``False``.

    Raises:
        ImageBatchError: With the fix in the message.

    """
    if _exporting():
        return
    if images.ndim != 4 or images.shape[1] != 3:
        msg = (
            f"{model} takes a batch of RGB images (B, 3, H, W), got shape {tuple(images.shape)}: "
            "add the batch dimension with images.unsqueeze(0) for a single image (3, H, W)."
        )
        raise ImageBatchError(msg)
    if not len(images):
        msg = "The batch of images is empty: pass at least one image (B >= 1)."
        raise ImageBatchError(msg)
    if not images.is_floating_point():
        msg = f"{model} takes float images in [0, 1], got {images.dtype}: pass images.float() / 255 for 8-bit images."
        raise ImageBatchError(msg)
    finite = images[torch.isfinite(images)] if unit_range else images.new_empty(0)  # NaN, inf: check_finite
    if finite.numel() and (finite.amin() < 0 or finite.amax() > 1):
        msg = (
            f"{model} takes float images in [0, 1], got values in [{finite.amin().item():g}, "
            f"{finite.amax().item():g}]: divide 8-bit values (0-255) by 255; the model normalises the images itself."
        )
        raise ImageBatchError(msg)


def check_finite(images: torch.Tensor, model: str) -> None:
    """Refuse images with NaN or infinite values before the model (skipped while exporting a graph).

    An exported graph cannot raise: there a NaN input gives NaN scores and maps (and ``pred_label`` true, see
    :func:`anomalib_dapo.models.components.export.flag_non_finite`).

    Args:
        images: The batch given to the model, ``(B, 3, H, W)``.
        model: The model's name, for the message.

    Raises:
        NonFiniteInputError: Naming the images of the batch that hold such values.

    """
    if _exporting():
        return
    bad = ~torch.isfinite(images.flatten(1)).all(dim=1)
    if bad.any():
        msg = (
            f"Input images {bad.nonzero().flatten().tolist()} of the batch hold NaN or infinite values. "
            f"{model} scores finite images only: check the image files or the transforms that produced them."
        )
        raise NonFiniteInputError(msg)


def clip_resize(size: int | tuple[int, int]) -> Resize:
    """The resize of the models' pre-processing (``Engine`` runs it with antialiasing; exported graphs without).

    The plugin's inferencers run it before an exported graph, so that they see the images ``Engine`` sees.
    """
    return Resize(size, antialias=True, interpolation=InterpolationMode.BICUBIC)
