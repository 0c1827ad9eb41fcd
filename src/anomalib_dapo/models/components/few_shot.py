"""Few-shot normal references: a per-stage patch memory and the reference anomaly map (MultiADS §4.2.3, eq. 5)."""

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F  # noqa: N812
from einops import rearrange
from torch import nn
from torch.utils.data import Dataset

from anomalib_dapo.data.images import FolderImages


class ReferenceMemory(nn.Module):
    """Adapted patch embeddings of ``k`` normal reference images at every stage, and the map they give a query.

    The memory is rebuilt for each run from the current weights (see ``TypedPromptModule.collect_references``),
    so it is never part of a checkpoint. Empty, it gives no map and the model stays zero-shot.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("patches", torch.empty(0), persistent=False)

    @property
    def num_references(self) -> int:
        """``k``, the reference images held (0 when empty)."""
        return self.patches.shape[1] if self.patches.numel() else 0

    def store(self, patches: torch.Tensor) -> None:
        """Hold the reference patches, ``(M, k, P, D)``, unit-normalised once here rather than per query."""
        with torch.inference_mode(False):  # an ordinary tensor, usable after the validation loop's inference mode
            self.patches = F.normalize(patches, dim=-1)

    def forward(self, patches: torch.Tensor) -> torch.Tensor | None:
        """Per-stage reference anomaly maps ``1 − S'_i``, ``(B, M, h, w)``, or ``None`` without references.

        Eq. 5 compares each query patch ``z^{p1}_i[a, b]`` with the patch at the same position ``[a, b]`` of the
        references; of the ``k`` references the nearest (highest cosine) is kept, so one matching normal image
        is enough. A same-position comparison is what reveals a missing piece: its patch shows background,
        which a search over every position of the memory would find elsewhere and call normal.

        Args:
            patches: Adapted query patch embeddings ``Z^p_i``, ``(M, B, P, D)``.

        """
        if not self.patches.numel():
            return None
        cosine = torch.einsum("mbpd,mkpd->mbkp", F.normalize(patches, dim=-1), self.patches.to(patches.dtype))
        side = round(patches.shape[2] ** 0.5)
        return rearrange(1 - cosine.amax(dim=2), "m b (h w) -> b m h w", h=side, w=side)


def reference_images(
    k_shot: int,
    folder: Path | None,
    dataset: Dataset | None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None,
) -> torch.Tensor:
    """The first ``k_shot`` normal images of ``folder`` (every image there), else of ``dataset``, transformed.

    Images of ``dataset`` labelled anomalous are skipped, so only normal images become references.

    Args:
        k_shot: Number of reference images.
        folder: A folder of normal images; takes precedence over ``dataset``.
        dataset: An anomalib dataset, typically the datamodule's train split.
        transform: The model's pre-processing transform (resize, normalisation), applied to each image.

    Returns:
        ``(k_shot, C, H, W)``.

    Raises:
        ValueError: Neither source is given, or it holds fewer than ``k_shot`` normal images.

    """
    if folder is not None:
        source, where = FolderImages(folder), str(folder)
    elif dataset is not None:
        source, where = dataset, "the datamodule's train split"
    else:
        msg = (
            f"k_shot={k_shot} needs normal reference images: pass few_shot_source (a folder of normal images) "
            "or a datamodule whose train split holds normal images."
        )
        raise ValueError(msg)
    images: list[torch.Tensor] = []
    for index in range(len(source)):
        item = source[index]
        if item.gt_label is not None and bool(item.gt_label):
            continue
        images.append(transform(item.image) if transform is not None else item.image)
        if len(images) == k_shot:
            return torch.stack([image.as_subclass(torch.Tensor) for image in images])
    msg = f"k_shot={k_shot} but {where} holds only {len(images)} normal images."
    raise ValueError(msg)
