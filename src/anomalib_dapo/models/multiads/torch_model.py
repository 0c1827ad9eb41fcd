"""MultiADS' network: a frozen CLIP, hand-crafted defect-aware prompt ensembles and linear stage adapters (§4)."""

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812
from open_clip.model import CLIP
from torch import nn

from anomalib_dapo.backbone.text import encode_text, trim, warn_overlong
from anomalib_dapo.data.dataclasses import TypedInferenceBatch
from anomalib_dapo.model_input import check_finite, check_images
from anomalib_dapo.models.components.adapters import StageAdapters
from anomalib_dapo.models.components.export import CLIP_TEXT_SIDE
from anomalib_dapo.models.components.few_shot import ReferenceMemory
from anomalib_dapo.models.components.layers import resolve_adapter_layers
from anomalib_dapo.models.components.precision import float32
from anomalib_dapo.models.components.predictions import ImageScore, typed_predictions
from anomalib_dapo.models.components.similarity import name_order, similarity_maps
from anomalib_dapo.models.multiads.prompts import OBJECT_WORD, state_prompts

TEXT_CHUNK = 1024
"""Prompts encoded per text-encoder pass (a product's states are some 4,500 prompts with MVTec-AD's 20 types)."""


class MultiAdsForward(NamedTuple):
    """What one pass computes before the inference or training heads."""

    image: torch.Tensor
    """The unit global image embedding ``z^x``, ``(B, D)``."""
    patches: torch.Tensor
    """Adapted patch embeddings ``z^p_i``, ``(M, B, P, D)``."""
    stage_probs: torch.Tensor
    """``S_i`` at patch resolution, ``(B, M, K + 1, h, w)``."""
    states: torch.Tensor
    """The state embeddings of each image's product, ``(B, K + 1, D)``."""


class MultiAdsModel(nn.Module):
    """The MultiADS network on a frozen OpenCLIP model: only the ``M`` linear adapters learn.

    The state embeddings are fixed text: they are encoded once per vocabulary and set of product names (one set
    of states per product), and the text encoder never runs per batch.

    Args:
        clip: The frozen OpenCLIP model.
        tokenizer: Its tokenizer.
        adapter_layers: 1-based, increasing encoder layers whose patch tokens are adapted. Defaults to ``None``:
            the quarter points of the vision tower (layers 6, 12, 18, 24 of ViT-L's 24).
        temperature: ``τ`` of the similarities. Defaults to ``0.07``.
        image_score: Image score formation. Defaults to ``fusion``: the mean of ``a_x`` and the map maximum
            (§4.2.2).

    Under Lightning's mixed precision (``--trainer.precision bf16-mixed``) the image encoder computes in half
    precision; the text encoder and the similarity heads stay in float32
    (:mod:`anomalib_dapo.models.components.precision`).

    """

    def __init__(
        self,
        clip: CLIP,
        tokenizer: nn.Module,
        adapter_layers: Sequence[int] | None = None,
        temperature: float = 0.07,
        image_score: ImageScore | str = ImageScore.FUSION,
    ) -> None:
        super().__init__()
        self.adapter_layers = resolve_adapter_layers(clip, adapter_layers)
        if list(self.adapter_layers) != sorted(set(self.adapter_layers)):
            msg = f"adapter_layers={list(self.adapter_layers)} must be increasing, e.g. [6, 12, 18, 24]."
            raise ValueError(msg)
        self.clip = clip.requires_grad_(False).eval()
        self.tokenizer = tokenizer
        self.temperature = temperature
        self.image_score = ImageScore(image_score)
        self.adapters = StageAdapters.for_clip(clip, len(self.adapter_layers))
        self.references = ReferenceMemory()
        self.register_buffer("states", torch.empty(0), persistent=False)
        self.vocabulary: tuple[str, ...] = ()
        self.class_names: tuple[str, ...] = ()
        self.text_encoder_calls = 0

    def set_vocabulary(
        self,
        defect_types: Sequence[str],
        defect_words: Sequence[str],
        class_names: Sequence[str] = (OBJECT_WORD,),
    ) -> None:
        """Score the ``K`` defect states of ``defect_types`` (type ``k`` ↔ ``defect_types[k - 1]``) on each product.

        Encodes the prompt ensembles of every product of ``class_names`` (state set ``p`` ↔ ``class_names[p]``):
        each state embedding is the mean of its prompts' unit text features (§4.1.1).
        """
        if (tuple(defect_types), tuple(class_names)) == (self.vocabulary, self.class_names) and self.states.numel():
            return
        self.text_encoder_calls += 1
        ensembles_per_product = [state_prompts(defect_types, defect_words, name) for name in class_names]
        warn_overlong(self.tokenizer, ensembles_per_product[0], ["normal", *defect_types])
        self.states = torch.stack(
            [
                torch.stack([self.encode_texts(texts).mean(dim=0) for texts in ensembles])
                for ensembles in ensembles_per_product
            ]
        )
        self.vocabulary, self.class_names = tuple(defect_types), tuple(class_names)

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit text features ``(N, D)`` of ``texts``, in chunks (bounded memory), each at the length it needs."""
        device = self.clip.token_embedding.weight.device
        with torch.no_grad(), float32(device):
            return torch.cat(
                [
                    encode_text(
                        self.clip,
                        trim(self.clip, self.tokenizer(texts[start : start + TEXT_CHUNK]).to(device)),
                        normalize=True,
                    )
                    for start in range(0, len(texts), TEXT_CHUNK)
                ]
            )

    def train(self, mode: bool = True) -> "MultiAdsModel":
        """Switch mode; the frozen CLIP stays in eval mode."""
        super().train(mode)
        self.clip.eval()
        return self

    def export_text_side(self) -> list[tuple[nn.Module, str]]:
        """The ``(owner, attribute)`` pairs only text encoding uses (the states are encoded by ``set_vocabulary``)."""
        if not self.states.numel():
            msg = "No vocabulary set: call set_vocabulary(defect_types, defect_words) first."
            raise RuntimeError(msg)
        return [(self.clip, name) for name in CLIP_TEXT_SIDE] + [(self, "tokenizer")]

    def encode_image(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The global embedding ``z^x`` ``(B, D)`` and adapted patch embeddings ``z^p_i`` ``(M, B, P, D)`` (§4.1.2)."""
        with torch.no_grad():  # the encoder is frozen: only the adapters need a graph
            outputs = self.clip.visual.forward_intermediates(
                images,
                indices=[layer - 1 for layer in self.adapter_layers],
                normalize_intermediates=True,
                output_fmt="NLC",
            )
        return outputs["image_features"], self.adapters(torch.stack(outputs["image_intermediates"]))

    def compute(self, images: torch.Tensor, products: torch.Tensor | None = None) -> MultiAdsForward:
        """Image–text similarities shared by training and inference.

        Args:
            images: The images, ``(B, 3, H, W)``.
            products: Index into ``class_names`` of each image's product, ``(B,)``; ``None``: the first product.

        """
        if not self.states.numel():
            msg = "No vocabulary set: call set_vocabulary(defect_types, defect_words) first."
            raise RuntimeError(msg)
        check_images(images, "MultiAds")
        check_finite(images, "MultiAds")
        image, patches = self.encode_image(images)  # in the trainer's precision
        # images.shape[0], not len(images), which an exported graph would fix to the example's batch size
        states = self.states[0].expand(images.shape[0], -1, -1) if products is None else self.states[products]
        with float32(images.device):  # cosines / τ magnify half-precision rounding: the heads run in float32
            image, patches = image.float(), patches.float()
            return MultiAdsForward(
                image=F.normalize(image, dim=-1),
                patches=patches,
                stage_probs=similarity_maps(patches, states, self.temperature, name_order(self.vocabulary)),
                states=states,
            )

    def forward(self, images: torch.Tensor) -> MultiAdsForward | TypedInferenceBatch:
        """Similarities in training mode; anomalib's inference fields plus the type outputs in eval mode."""
        outputs = self.compute(images)
        if self.training:
            return outputs
        with float32(images.device):
            # a_x: 1 − the normal state's share of the softmax over the K + 1 global similarities (§4.2).
            global_cos = torch.einsum("bd,bkd->bk", outputs.image, F.normalize(outputs.states, dim=-1))
            order = name_order(self.vocabulary)  # normal first: the softmax in name order, as for the maps
            global_score = 1 - (global_cos[:, order] / self.temperature).softmax(dim=-1)[:, 0]
            return typed_predictions(
                outputs.stage_probs,
                global_score,
                (global_cos[:, 1:] - global_cos[:, :1]) / self.temperature,
                images.shape[-2:],
                self.image_score,
                self.references(outputs.patches),
            )
