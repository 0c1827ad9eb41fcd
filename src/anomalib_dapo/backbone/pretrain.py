"""Pretrain the tiny CLIP on captioned synthetic defects, so that it knows the defect words (``dapo-pretrain-tiny``).

The corpus is close-up views (:mod:`anomalib_dapo.data.corpus`) of the three synthetic products, each normal or
with one of seven defect kinds. Each step draws one view of every (product, state) pair, so the batch's captions
are all different and a product's name never tells two of its images apart: only the defect does. Two losses:

* ``L_clip``: open_clip's symmetric contrastive loss (``open_clip.loss.ClipLoss``) between each view and its
  caption, drawn from several templates;
* ``L_dense``: per patch, a cross-entropy over the captions of the view's product, the target being the caption
  of the patch's own state (its defect kind where the defect covers at least ``DENSE_COVER`` of the patch, normal
  where the patch has no defect pixel, ignored in between). Patch tokens go through ``ln_post`` and the image
  projection, at the last layer and at ``DENSE_LAYERS``, which is where Dapo's adapters read them.

``L = L_clip + L_dense``. Seeded: the same arguments give the same weights on the same software.
"""

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F  # noqa: N812
from open_clip.loss import ClipLoss
from open_clip.model import CLIP
from safetensors.torch import save_file

from anomalib_dapo import knowledge
from anomalib_dapo.backbone.clip import TINY_BACKBONE, _register_tiny_config
from anomalib_dapo.data.corpus import NORMAL, Views, make_views

logger = logging.getLogger(__name__)

IMAGE_SIZE = 64
"""Resolution the tiny CLIP is pretrained at (the demo's and tests')."""
DENSE_LAYERS = (2,)
"""Intermediate layers whose patch tokens are aligned besides the last one."""
DENSE_COVER = 0.2
"""Share of a patch's pixels a defect must cover for the patch to count as that defect."""
PRODUCT_WORDS = {"disc": "metal disc", "grid": "wire grid", "tile": "clay tile"}
DEFECT_TEMPLATES = (
    "{defect} anomaly object.",
    "a photo of a {product} with a {defect}.",
    "a {defect} on the {product}.",
    "a close-up photo of a {defect}.",
    "a {product} showing a {defect} defect.",
)
NORMAL_TEMPLATES = (
    "normal object.",
    "a photo of a normal {product}.",
    "a flawless {product}.",
    "a close-up photo of a normal surface.",
    "a {product} without defects.",
)
CLIP_MEAN = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
CLIP_STD = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)


def caption(product: str, state: str, template: int) -> str:
    """Caption ``template`` (an index into the state's templates) of a view of ``product`` in ``state``."""
    if state == NORMAL:
        return NORMAL_TEMPLATES[template].format(product=PRODUCT_WORDS[product])
    return DEFECT_TEMPLATES[template].format(product=PRODUCT_WORDS[product], defect=knowledge.prompt_words(state))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 images to CLIP-normalised ``(N, 3, H, W)`` float tensors."""
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    return (pixels - CLIP_MEAN) / CLIP_STD


def tiny_clip(seed: int = 0) -> CLIP:
    """The ``dapo-tiny`` architecture at ``IMAGE_SIZE`` with weights drawn from ``seed``, in training mode."""
    _register_tiny_config()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return open_clip.create_model(TINY_BACKBONE, force_image_size=IMAGE_SIZE, force_quick_gelu=True)


def image_tokens(model: CLIP, images: torch.Tensor, layers: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """The image embedding ``(B, D)`` and the projected patch tokens ``(L, B, P, D)`` of ``layers`` (1-based)."""
    visual = model.visual
    x = visual._embeds(images)
    taps = []
    for index, block in enumerate(visual.transformer.resblocks, start=1):
        x = block(x)
        if index in layers:
            taps.append(x[:, 1:])
    pooled, _ = visual._pool(x)
    return pooled @ visual.proj, visual.ln_post(torch.stack(taps)) @ visual.proj


def patch_targets(
    masks: torch.Tensor, patch: int, defect_class: torch.Tensor, normal_class: torch.Tensor
) -> torch.Tensor:
    """Per patch, the class of its state (see module docstring), ``-100`` (ignored) for a partly covered patch.

    Args:
        masks: Defect masks ``(B, H, W)``.
        patch: Patch side in pixels.
        defect_class: Class of each view's defect caption ``(B,)`` (its own caption for a defect view).
        normal_class: Class of the normal caption of each view's product ``(B,)``.

    """
    cover = F.avg_pool2d(masks[:, None].float(), patch).flatten(1)
    targets = torch.full_like(cover, -100, dtype=torch.long)
    targets = torch.where(cover == 0, normal_class[:, None], targets)
    return torch.where(cover >= DENSE_COVER, defect_class[:, None], targets)


class Pretrainer:
    """Draws the batches of one pretraining run and computes ``L`` on them (module docstring)."""

    def __init__(self, model: CLIP, views: Views, seed: int) -> None:
        self.model = model
        self.views = views
        self.rng = np.random.default_rng(seed)
        self.tokenizer = open_clip.get_tokenizer(TINY_BACKBONE)
        self.clip_loss = ClipLoss()
        pairs = sorted(set(zip(views.products, views.kinds, strict=True)))
        self.pairs = pairs
        self.members = [
            np.flatnonzero([(p, k) == pair for p, k in zip(views.products, views.kinds, strict=True)]) for pair in pairs
        ]
        products = [product for product, _ in pairs]
        self.normal_class = torch.tensor([pairs.index((product, NORMAL)) for product in products])
        self.same_product = torch.tensor([[a == b for b in products] for a in products])
        self.patch = model.visual.patch_size[0]

    def batch(self) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """One augmented view of every (product, state) pair, its mask, and a caption of a random template."""
        picks = [int(self.rng.choice(members)) for members in self.members]
        images, masks = self.views.images[picks], self.views.masks[picks]
        turns, flips = self.rng.integers(0, 4), self.rng.random() < 0.5  # the whole batch alike: cheap and enough
        images, masks = np.rot90(images, turns, axes=(1, 2)), np.rot90(masks, turns, axes=(1, 2))
        if flips:
            images, masks = images[:, :, ::-1], masks[:, :, ::-1]
        templates = self.rng.integers(0, len(DEFECT_TEMPLATES), len(self.pairs))
        captions = [caption(product, kind, int(t)) for (product, kind), t in zip(self.pairs, templates, strict=True)]
        return to_tensor(np.ascontiguousarray(images)), torch.from_numpy(np.ascontiguousarray(masks)), captions

    def loss(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``L_clip`` and ``L_dense`` on a fresh batch."""
        images, masks, captions = self.batch()
        model = self.model
        image, patches = image_tokens(model, images, (*DENSE_LAYERS, len(model.visual.transformer.resblocks)))
        text = F.normalize(model.encode_text(self.tokenizer(captions)), dim=-1)
        scale = model.logit_scale.exp()
        clip = self.clip_loss(F.normalize(image, dim=-1), text, scale)
        targets = patch_targets(masks, self.patch, torch.arange(len(self.pairs)), self.normal_class)
        logits = scale * F.normalize(patches, dim=-1) @ text.T  # (L, B, P, B)
        logits = logits.masked_fill(~self.same_product[None, :, None, :], -torch.inf)
        dense = F.cross_entropy(logits.flatten(0, 2), targets.repeat(len(patches), 1).flatten())
        return clip, dense


def pretrain_tiny_clip(
    output: Path | str,
    steps: int = 2000,
    views_per_state: int = 160,
    learning_rate: float = 1e-3,
    warmup: int = 100,
    seed: int = 0,
    log_every: int = 100,
) -> Path:
    """Pretrain ``dapo-tiny`` (see the module docstring) and write its weights as float16 safetensors.

    Args:
        output: The ``.safetensors`` file to write; it must not exist (nothing is overwritten).
        steps: Optimiser steps, each on one view of every (product, state) pair (23 views).
        views_per_state: Corpus views per (product, state) pair.
        learning_rate: Peak AdamW learning rate, reached after ``warmup`` steps, then cosine decay to 0.
        warmup: Linear warm-up steps.
        seed: Seed of the corpus, the initial weights and the batches.
        log_every: Steps between progress lines.

    Returns:
        The path written; its sha256 and the time taken are printed.

    """
    output = Path(output)
    if output.exists():
        msg = f"{output} exists: refusing to overwrite it. Remove it or pass another --output."
        raise FileExistsError(msg)
    start = time.perf_counter()
    torch.manual_seed(seed)
    views = make_views(views_per_state, seed=seed)
    model = tiny_clip(seed)
    trainer = Pretrainer(model, views, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step / steps, 1.0))),
    )
    print(f"corpus: {len(views.kinds)} views in {time.perf_counter() - start:.0f} s; {steps} steps")
    for step in range(1, steps + 1):
        clip, dense = trainer.loss()
        optimizer.zero_grad(set_to_none=True)
        (clip + dense).backward()
        optimizer.step()
        schedule.step()
        if step % log_every == 0 or step == steps:
            elapsed = time.perf_counter() - start
            print(f"step {step}/{steps}: L_clip {clip.item():.3f}  L_dense {dense.item():.3f}  ({elapsed:.0f} s)")
    output.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.detach().half().contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, output)
    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    print(f"wrote {output} ({output.stat().st_size / 2**20:.1f} MiB), sha256 {digest}")
    print(f"pretraining took {time.perf_counter() - start:.0f} s")
    return output


def main() -> None:
    """``dapo-pretrain-tiny``: pretrain the tiny CLIP from the command line."""
    from jsonargparse import auto_cli

    auto_cli(pretrain_tiny_clip, as_positional=False)
