"""DAPO's network: a frozen CLIP with hybrid prompts, progressive prefix tuning and stage adapters (paper §4)."""

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812
from open_clip.model import CLIP
from torch import nn

from anomalib_dapo.backbone.text import project, text_features, text_positions, trim, warn_overlong
from anomalib_dapo.data.dataclasses import TypedInferenceBatch
from anomalib_dapo.model_input import check_finite, check_images
from anomalib_dapo.models.components.adapters import AdapterInit, StageAdapters
from anomalib_dapo.models.components.export import CLIP_TEXT_SIDE
from anomalib_dapo.models.components.few_shot import ReferenceMemory
from anomalib_dapo.models.components.layers import resolve_adapter_layers, resolve_prompt_depth
from anomalib_dapo.models.components.options import OptionEnum
from anomalib_dapo.models.components.precision import float32
from anomalib_dapo.models.components.predictions import ImageScore, typed_predictions
from anomalib_dapo.models.components.similarity import name_order, similarity_maps
from anomalib_dapo.models.dapo.progressive import ProgressivePrompts, run_prompted_blocks
from anomalib_dapo.models.dapo.prompts import HybridPrompts, TokenInit, initial_statistics


class Aggregation(OptionEnum):
    """How the defect prototypes form the single abnormal prototype of the global branch (appendix 11)."""

    MEAN = "mean"
    """``1/K Σ_k z^{D_k}`` (paper default)."""
    ATTENTION = "attention"
    """Weighted by each prototype's softmax similarity to the image embedding (the paper's ablation)."""


class DapoForward(NamedTuple):
    """What one pass computes before the inference or training heads."""

    global_logits: torch.Tensor
    """``s / τ`` of eq. 7, ``(B, 2)``: normal and abnormal similarity of the image embedding."""
    defect_logits: torch.Tensor
    """``(B, K)``: ``(cos(z^x, z^{D_k}) − cos(z^x, z^N)) / τ``, the argument of eq. 11."""
    stage_probs: torch.Tensor
    """``S_i`` at patch resolution, ``(B, M, K + 1, h, w)``."""
    patches: torch.Tensor
    """Adapted patch embeddings ``Z^p_i``, ``(M, B, P, D)``, which few-shot references are compared with."""


class DapoModel(nn.Module):
    """The DAPO network on a frozen OpenCLIP model.

    Only the hybrid prompt contexts, the progressive prompt tokens of both encoders and the stage adapters
    have gradients. The state embeddings depend only on the vocabulary and the learned tokens: in eval
    without gradients they are computed once per vocabulary and cached, so the text encoder never runs per
    batch at test or predict time. When ``references`` holds normal patches (few-shot), the anomaly map also
    compares each image with them.

    Args:
        clip: The frozen OpenCLIP model.
        tokenizer: Its tokenizer.
        prompt_length: ``l``, learnable context tokens per prompt. Defaults to ``5``.
        num_prompts: ``E``, prompts per state. Defaults to ``10``.
        prompt_tokens: Progressive prompt tokens per layer in each encoder. Defaults to ``4``.
        text_depth: ``N_d``, text layers that receive prompt tokens. Defaults to ``None``: all of them (the
            paper's 12 of 12).
        vision_depth: Vision layers that receive prompt tokens. Defaults to ``None``: all of them (the paper's
            24 of 24).
        alpha: ``α`` of the progressive connection. Defaults to ``0.01``.
        progressive: Progressive connection (eq. 10) or plain prefix tuning (ablation). Defaults to ``True``.
        adapter_layers: 1-based encoder layers whose patch tokens are adapted, ``M`` of them. Defaults to
            ``None``: the quarter points of the vision tower (layers 6, 12, 18, 24 of ViT-L's 24).
        adapter_init: Initial adapter weights: ``random`` (the paper's linear layers) or CLIP's ``projection``.
            Defaults to ``random``.
        temperature: ``τ`` of the similarities. Defaults to ``0.07``.
        token_init: Initialisation of the learnable tokens. Defaults to ``clip``.
        image_score: Image score formation (see :class:`ImageScore`). Defaults to ``global``, the DAPO
            authors' code.
        aggregation: Abnormal prototype aggregation. Defaults to ``mean``.
        normal_word: Normal state word. Defaults to ``"normal"`` (the released code: ``"flawless"``).
        abnormal_word: Literal anomaly word. Defaults to ``"anomaly"``.
        object_word: Literal object word. Defaults to ``"object"``.
        gradient_checkpointing: Recompute encoder activations during backward to save memory. Defaults to
            ``False``.

    Under Lightning's mixed precision (``--trainer.precision bf16-mixed``) the image encoder computes in half
    precision; the text encoder and the similarity heads stay in float32
    (:mod:`anomalib_dapo.models.components.precision`).

    """

    def __init__(
        self,
        clip: CLIP,
        tokenizer: nn.Module,
        prompt_length: int = 5,
        num_prompts: int = 10,
        prompt_tokens: int = 4,
        text_depth: int | None = None,
        vision_depth: int | None = None,
        alpha: float = 0.01,
        progressive: bool = True,
        adapter_layers: Sequence[int] | None = None,
        adapter_init: AdapterInit | str = AdapterInit.RANDOM,
        temperature: float = 0.07,
        token_init: TokenInit | str = TokenInit.CLIP,
        image_score: ImageScore | str = ImageScore.GLOBAL,
        aggregation: Aggregation | str = Aggregation.MEAN,
        normal_word: str = "normal",
        abnormal_word: str = "anomaly",
        object_word: str = "object",
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        text_depth = resolve_prompt_depth("text_depth", text_depth, len(clip.transformer.resblocks))
        vision_depth = resolve_prompt_depth("vision_depth", vision_depth, len(clip.visual.transformer.resblocks))
        self.adapter_layers = resolve_adapter_layers(clip, adapter_layers)
        self.clip = clip.requires_grad_(False).eval()
        self.temperature = temperature
        self.image_score = ImageScore(image_score)
        self.aggregation = Aggregation(aggregation)
        self.gradient_checkpointing = gradient_checkpointing
        token_init = TokenInit(token_init)
        # One pass over the token table (49 408 rows) serves the contexts and the text prompt tokens.
        text_statistics = initial_statistics(clip.token_embedding.weight, token_init)
        self.prompts = HybridPrompts(
            tokenizer,
            text_statistics,
            context_length=prompt_length,
            num_prompts=num_prompts,
            prefix_slots=prompt_tokens,
            init=token_init,
            normal_word=normal_word,
            abnormal_word=abnormal_word,
            object_word=object_word,
        )
        # The vision tower has no token table: its position embeddings are the nearest "CLIP space".
        self.text_prompts = ProgressivePrompts(
            text_depth,
            prompt_tokens,
            *text_statistics,
            alpha=alpha,
            progressive=progressive,
        )
        self.vision_prompts = ProgressivePrompts(
            vision_depth,
            prompt_tokens,
            *initial_statistics(clip.visual.positional_embedding, token_init),
            alpha=alpha,
            progressive=progressive,
        )
        self.adapters = StageAdapters.for_clip(clip, len(self.adapter_layers), adapter_init)
        self.references = ReferenceMemory()
        self.register_buffer("tokens", torch.empty(0, dtype=torch.long), persistent=False)
        self.register_buffer("state_cache", torch.empty(0), persistent=False)
        self.vocabulary: tuple[str, ...] = ()
        self.text_encoder_calls = 0
        self.register_load_state_dict_post_hook(_states_loaded)

    def clear_states(self) -> None:
        """Forget the cached state embeddings: the next evaluation encodes the current prompts."""
        self.state_cache = torch.empty(0, device=self.tokens.device)

    def set_vocabulary(self, defect_types: Sequence[str], defect_words: Sequence[str]) -> None:
        """Select the ``K`` defect states scored from now on (type ``k`` ↔ ``defect_types[k - 1]``)."""
        if tuple(defect_types) == self.vocabulary and self.tokens.numel():
            return
        tokens = self.prompts.tokenize(defect_words)
        texts = [[text] for text in self.prompts.texts(defect_words)]
        warn_overlong(self.prompts.tokenizer, texts, [self.prompts.normal_word, *defect_types])
        self.vocabulary = tuple(defect_types)
        # Encoded at the length the longest prompt needs: the state embeddings are those of the full context.
        self.tokens = trim(self.clip, tokens).to(self.tokens.device)
        self.clear_states()

    def train(self, mode: bool = True) -> "DapoModel":
        """Switch mode; the frozen CLIP stays in eval mode."""
        super().train(mode)
        self.clip.eval()
        return self

    def encode_states(self) -> torch.Tensor:
        """State embeddings ``[z^N, z^{D_1}, …, z^{D_K}]``, ``(K + 1, D)``: eq. 5–6, the mean over ``E`` prompts."""
        if not self.tokens.numel():
            msg = "No vocabulary set: call set_vocabulary(defect_types, defect_words) first."
            raise RuntimeError(msg)
        self.text_encoder_calls += 1
        clip = self.clip
        embeddings = self.prompts.embed(clip.token_embedding, self.tokens)
        num_prompts, num_states = embeddings.shape[:2]
        positions, attn_mask = text_positions(clip, self.tokens.shape[1])
        x, _ = run_prompted_blocks(
            clip.transformer.resblocks,
            embeddings.flatten(0, 1) + positions.to(embeddings.dtype),
            self.text_prompts,
            slot_start=1,
            attn_mask=attn_mask,
            gradient_checkpointing=self.gradient_checkpointing,
        )
        features = text_features(clip, x, self.tokens.repeat(num_prompts, 1))
        return features.unflatten(0, (num_prompts, num_states)).mean(dim=0)

    def states(self) -> torch.Tensor:
        """State embeddings: fresh when gradients are needed (the prompts are learning), else cached per vocabulary.

        Prompts with ``requires_grad`` off (as in exported models) never learn: their cache is always used.
        """
        text_parameters = (*self.prompts.parameters(), *self.text_prompts.parameters())
        if torch.is_grad_enabled() and any(parameter.requires_grad for parameter in text_parameters):
            self.clear_states()  # parameters are about to change
            return self.encode_states()
        if not self.state_cache.numel():
            self.state_cache = self.encode_states()
        return self.state_cache

    def export_text_side(self) -> list[tuple[nn.Module, str]]:
        """Cache the vocabulary's state embeddings; the ``(owner, attribute)`` pairs only text encoding uses."""
        with torch.no_grad():
            self.states()
        return [(self.clip, name) for name in CLIP_TEXT_SIDE] + [(self.prompts, "tokenizer")]

    def encode_image(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 4: the global embedding ``z^x`` ``(B, D)`` and adapted patch embeddings ``Z^p`` ``(M, B, P, D)``."""
        visual = self.clip.visual
        x = visual._embeds(images)
        length = x.shape[1]
        x = torch.cat([x, x.new_zeros(x.shape[0], self.vision_prompts.num_tokens, x.shape[2])], dim=1)
        x, taps = run_prompted_blocks(
            visual.transformer.resblocks,
            x,
            self.vision_prompts,
            slot_start=length,
            taps=self.adapter_layers,
            gradient_checkpointing=self.gradient_checkpointing,
        )
        pooled, _ = visual._pool(x[:, :length])
        global_embedding = project(pooled, visual.proj)
        patch_tokens = visual.ln_post(torch.stack(taps)[:, :, 1:length])
        return global_embedding, self.adapters(patch_tokens)

    def abnormal_prototype(self, image: torch.Tensor, defects: torch.Tensor) -> torch.Tensor:
        """The single abnormal prototype of eq. 7, ``(B, D)``, aggregated per ``self.aggregation``."""
        if self.aggregation == Aggregation.MEAN:
            return defects.mean(dim=0).expand(image.shape[0], -1)
        weights = ((image @ defects.T) / self.temperature).softmax(dim=-1)
        return weights @ defects

    def compute(self, images: torch.Tensor) -> DapoForward:
        """Image–text similarities shared by training and inference."""
        check_images(images, "Dapo")
        check_finite(images, "Dapo")
        image, patches = self.encode_image(images)  # in the trainer's precision
        # Cosines divided by τ = 0.07 magnify half-precision rounding 14-fold: the states and heads run in float32.
        with float32(images.device):
            image, patches = image.float(), patches.float()
            states = self.states()
            image, unit_states = F.normalize(image, dim=-1), F.normalize(states, dim=-1)
            normal, defects = unit_states[0], unit_states[1:]
            order = name_order(self.vocabulary)
            by_name = [index - 1 for index in order[1:]]  # the prototype's mean or weighted sum runs in name order
            prototype = F.normalize(self.abnormal_prototype(image, defects[by_name]), dim=-1)
            global_cos = torch.stack([image @ normal, (image * prototype).sum(dim=-1)], dim=-1)
            defect_cos = image @ defects.T - (image @ normal).unsqueeze(-1)
            return DapoForward(
                global_logits=global_cos / self.temperature,
                defect_logits=defect_cos / self.temperature,
                stage_probs=similarity_maps(patches, states, self.temperature, order),
                patches=patches,
            )

    def forward(self, images: torch.Tensor) -> DapoForward | TypedInferenceBatch:
        """Similarities in training mode; anomalib's inference fields plus the type outputs in eval mode."""
        outputs = self.compute(images)
        if self.training:
            return outputs
        with float32(images.device):
            return typed_predictions(
                outputs.stage_probs,
                outputs.global_logits.softmax(dim=-1)[:, 1],
                outputs.defect_logits,
                images.shape[-2:],
                self.image_score,
                self.references(outputs.patches),
            )


def _states_loaded(model: DapoModel, _keys: object) -> None:
    """After ``load_state_dict`` (learned-weights files and Lightning checkpoint restores go through it too).

    A module-level function, so that a pickled model (``to_torch``) keeps its hook.
    """
    model.clear_states()
