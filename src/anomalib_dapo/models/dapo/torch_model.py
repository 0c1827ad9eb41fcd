"""DAPO's network: a frozen CLIP with hybrid prompts, progressive prefix tuning and stage adapters (paper §4)."""

from collections.abc import Sequence
from contextlib import nullcontext
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812
from einops import rearrange
from open_clip.model import CLIP
from torch import nn

from anomalib_dapo.backbone.text import project, text_features, text_positions, trim, warn_overlong
from anomalib_dapo.data.dataclasses import TypedInferenceBatch
from anomalib_dapo.models.components.export import CLIP_TEXT_SIDE
from anomalib_dapo.models.components.few_shot import ReferenceMemory
from anomalib_dapo.models.components.options import OptionEnum
from anomalib_dapo.models.dapo.progressive import ProgressivePrompts, run_prompted_blocks
from anomalib_dapo.models.dapo.prompts import HybridPrompts, TokenInit, initial_statistics


class ImageScore(OptionEnum):
    """How the image anomaly score is formed. The DAPO paper defines none; Dapo's default is ``global``."""

    FUSION = "fusion"
    """Mean of the global abnormal probability and the anomaly map's maximum (MultiADS §4.2.2; MultiAds' default)."""
    GLOBAL = "global"
    """The global abnormal probability alone, as the DAPO authors' released code scores images (Dapo's default)."""
    MAP_MAX = "map_max"
    """The anomaly map's maximum alone (a common choice of CLIP-based methods, for comparison)."""


class Aggregation(OptionEnum):
    """How the defect prototypes form the single abnormal prototype of the global branch (appendix 11)."""

    MEAN = "mean"
    """``1/K Σ_k z^{D_k}`` (paper default)."""
    ATTENTION = "attention"
    """Weighted by each prototype's softmax similarity to the image embedding (the paper's ablation)."""


class AdapterInit(OptionEnum):
    """Initial weights of the stage adapters."""

    RANDOM = "random"
    """``nn.Linear``'s default (uniform, zero mean): the adapters learn the joint space from the training types."""
    PROJECTION = "projection"
    """CLIP's own image projection (zero bias): the adapters start where CLIP puts its image embedding, so before
    any training a patch already meets the text of its defect as the backbone aligned them."""


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


class StageAdapters(nn.Module):
    """``M`` linear adapters mapping patch tokens of ``M`` encoder stages into the joint space (§4.2.1).

    Held as one stacked weight so that all stages are projected in one batched product.
    """

    def __init__(self, num_stages: int, in_features: int, out_features: int) -> None:
        super().__init__()
        layers = [nn.Linear(in_features, out_features) for _ in range(num_stages)]
        self.weight = nn.Parameter(torch.stack([layer.weight.T for layer in layers]).detach())
        self.bias = nn.Parameter(torch.stack([layer.bias for layer in layers]).detach())

    @classmethod
    def for_clip(cls, clip: CLIP, num_stages: int, init: AdapterInit | str = AdapterInit.RANDOM) -> "StageAdapters":
        """Adapters from ``clip``'s vision width to its joint space, initialised per ``init``."""
        adapters = cls(num_stages, clip.visual.transformer.width, embed_dim(clip))
        if AdapterInit(init) == AdapterInit.PROJECTION:
            width = clip.visual.transformer.width
            projection = project(torch.eye(width, device=adapters.weight.device), clip.visual.proj).detach()
            with torch.no_grad():
                adapters.weight.copy_(projection.expand_as(adapters.weight))
                adapters.bias.zero_()
        return adapters

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Project ``(M, B, P, in)`` stage tokens to ``(M, B, P, out)``."""
        return torch.einsum("mbpi,mio->mbpo", tokens, self.weight.to(tokens.dtype)) + self.bias[:, None, None]


def name_order(vocabulary: Sequence[str]) -> list[int]:
    """The states ``normal, vocabulary…`` in the order of their names (normal first): the models compute in it.

    A softmax or mean over the states sums them in their order, so float rounding would otherwise make a reordered
    vocabulary give probabilities a few ulps apart, and type metrics that differ in their last digits.
    """
    return [0, *(1 + index for index in sorted(range(len(vocabulary)), key=lambda index: vocabulary[index]))]


def similarity_maps(
    patches: torch.Tensor, states: torch.Tensor, temperature: float, order: Sequence[int] | None = None
) -> torch.Tensor:
    """``S_i = softmax_k(cos(Z^p_i, z^k) / τ)`` for all stages at once (§4.3).

    Args:
        patches: Adapted patch embeddings, ``(M, B, P, D)``.
        states: State embeddings ``z^N, z^{D_1..K}``, ``(K + 1, D)``, or one set per image ``(B, K + 1, D)``.
        temperature: ``τ``.
        order: The states' :func:`name_order`: the softmax runs in it, so that the maps of a reordered vocabulary
            are the same numbers reordered. ``None``: their own order.

    Returns:
        ``(B, M, K + 1, h, w)`` with ``h = w = sqrt(P)``, the states in their own order.

    """
    order = list(order) if order is not None else list(range(states.shape[-2]))
    back = sorted(range(len(order)), key=order.__getitem__)
    cosine = F.normalize(patches, dim=-1) @ F.normalize(states[..., order, :], dim=-1).transpose(-1, -2)
    probs = (cosine / temperature).softmax(dim=-1)[..., back]
    side = round(patches.shape[2] ** 0.5)
    return rearrange(probs, "m b (h w) k -> b m k h w", h=side, w=side)


def upsample(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """``UP``: bilinear upsampling of ``(..., C, h, w)`` maps to ``size``."""
    lead = maps.shape[:-3]
    flat = F.interpolate(maps.flatten(0, -4), size=tuple(size), mode="bilinear", align_corners=False)
    return flat.unflatten(0, lead)


def typed_predictions(
    stage_probs: torch.Tensor,
    global_score: torch.Tensor,
    defect_logits: torch.Tensor,
    size: Sequence[int],
    image_score: ImageScore,
    reference_maps: torch.Tensor | None = None,
) -> TypedInferenceBatch:
    """Inference outputs from the stage maps and the global similarities (Dapo and MultiAds alike).

    Type map ``Σ_i UP(S_i) / M`` (MultiADS eq. 3), anomaly map ``1 − UP(S)[0]`` (eq. 4), with few-shot
    references ``M_final = (M_x + M_ref) / 2``, ``M_ref = Σ_i UP(1 − S'_i) / M`` (MultiADS §4.2.3), image score
    per ``image_score``, and the multi-label type probabilities ``σ`` of eq. 11.

    Args:
        stage_probs: ``S_i``, ``(B, M, K + 1, h, w)``.
        global_score: Abnormal probability of the global image embedding, ``(B,)``.
        defect_logits: ``(cos(z^x, z^{D_k}) − cos(z^x, z^N)) / τ``, ``(B, K)``.
        size: Input image size ``(H, W)``.
        image_score: How the image score is formed.
        reference_maps: ``1 − S'_i``, ``(B, M, h, w)``, when few-shot.

    """
    # UP is linear, so the mean of upsampled stage maps is the upsampled mean: upsample once.
    type_map = upsample(stage_probs.mean(dim=1), size)
    anomaly_map = 1 - type_map[:, 0]
    if reference_maps is not None:
        anomaly_map = (anomaly_map + upsample(reference_maps.mean(dim=1, keepdim=True), size)[:, 0]) / 2
    map_score = anomaly_map.flatten(1).amax(dim=1)
    scores = {
        ImageScore.FUSION: (global_score + map_score) / 2,
        ImageScore.GLOBAL: global_score,
        ImageScore.MAP_MAX: map_score,
    }
    return TypedInferenceBatch(
        pred_score=scores[image_score],
        anomaly_map=anomaly_map.unsqueeze(1),
        pred_type_map=type_map,
        # Same indices as argmax (first maximum on ties), several times faster on CPU across channels.
        pred_type_mask=type_map.max(dim=1).indices,
        pred_type_probs=defect_logits.sigmoid(),
    )


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
        prompt_length: ``l``, learnable context tokens per prompt (5).
        num_prompts: ``E``, prompts per state (10).
        prompt_tokens: Progressive prompt tokens per layer in each encoder (4).
        text_depth: ``N_d``, text layers that receive prompt tokens (12).
        vision_depth: Vision layers that receive prompt tokens; ``None`` = all (the paper).
        alpha: ``α`` of the progressive connection (0.01).
        progressive: Progressive connection (eq. 10) or plain prefix tuning (ablation).
        adapter_layers: 1-based encoder layers whose patch tokens are adapted, ``M`` of them (6, 12, 18, 24).
        adapter_init: Initial adapter weights: ``random`` (the paper's linear layers) or CLIP's ``projection``.
        temperature: ``τ`` of the similarities (0.07).
        token_init: Initialisation of the learnable tokens (``clip``).
        image_score: Image score formation (``global``, the DAPO authors' code; see :class:`ImageScore`).
        aggregation: Abnormal prototype aggregation (``mean``).
        normal_word: Normal state word ("normal"; released code: "flawless").
        abnormal_word: Literal anomaly word ("anomaly").
        object_word: Literal object word ("object").
        gradient_checkpointing: Recompute encoder activations during backward to save memory.
        autocast_dtype: On CUDA, the image encoder runs under autocast with this dtype (bf16 needs no loss
            scaling); the text encoder and the similarity heads stay in float32. ``None``: float32 throughout.
            No effect on CPU.

    """

    def __init__(
        self,
        clip: CLIP,
        tokenizer: nn.Module,
        prompt_length: int = 5,
        num_prompts: int = 10,
        prompt_tokens: int = 4,
        text_depth: int = 12,
        vision_depth: int | None = None,
        alpha: float = 0.01,
        progressive: bool = True,
        adapter_layers: Sequence[int] = (6, 12, 18, 24),
        adapter_init: AdapterInit | str = AdapterInit.RANDOM,
        temperature: float = 0.07,
        token_init: TokenInit | str = TokenInit.CLIP,
        image_score: ImageScore | str = ImageScore.GLOBAL,
        aggregation: Aggregation | str = Aggregation.MEAN,
        normal_word: str = "normal",
        abnormal_word: str = "anomaly",
        object_word: str = "object",
        gradient_checkpointing: bool = False,
        autocast_dtype: torch.dtype | None = torch.bfloat16,
    ) -> None:
        super().__init__()
        vision_layers = len(clip.visual.transformer.resblocks)
        text_layers = len(clip.transformer.resblocks)
        vision_depth = vision_layers if vision_depth is None else vision_depth
        check_layers("text_depth", [text_depth], text_layers, minimum=1)
        check_layers("vision_depth", [vision_depth], vision_layers, minimum=1)
        check_layers("adapter_layers", adapter_layers, vision_layers, minimum=1)
        self.clip = clip.requires_grad_(False).eval()
        self.adapter_layers = tuple(adapter_layers)
        self.temperature = temperature
        self.image_score = ImageScore(image_score)
        self.aggregation = Aggregation(aggregation)
        self.gradient_checkpointing = gradient_checkpointing
        self.autocast_dtype = autocast_dtype
        token_init = TokenInit(token_init)
        token_table = clip.token_embedding.weight
        self.prompts = HybridPrompts(
            tokenizer,
            token_table,
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
            *initial_statistics(token_table, token_init),
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
        check_images(images)
        check_finite(images)
        autocast = self.autocast_dtype is not None and images.device.type == "cuda"
        # nullcontext rather than autocast(enabled=False), which would switch off a surrounding mixed precision.
        with torch.autocast("cuda", dtype=self.autocast_dtype) if autocast else nullcontext():
            image, patches = self.encode_image(images)
        if autocast:
            # Cosines divided by τ = 0.07 magnify half-precision rounding 14-fold: the heads run in float32.
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


class NonFiniteInputError(ValueError):
    """Input images hold NaN or infinite values, which would otherwise come out as NaN scores."""


class ImageBatchError(ValueError):
    """Input images are not a batch of float RGB images ``(B, 3, H, W)`` (in ``[0, 1]`` before pre-processing)."""


def check_images(images: torch.Tensor, unit_range: bool = False) -> None:
    """Refuse what is no batch of float RGB images, and with ``unit_range`` pixels outside ``[0, 1]``.

    uint8 images or floats in 0–255 would otherwise be normalised as if in ``[0, 1]``: silently wrong scores.
    Skipped while exporting a graph, whose input signature fixes shape and type.
    """
    if torch.compiler.is_exporting() or torch.jit.is_tracing():
        return
    if images.ndim != 4 or images.shape[1] != 3:
        msg = (
            f"Dapo takes a batch of RGB images (B, 3, H, W), got shape {tuple(images.shape)}: "
            "add the batch dimension with images.unsqueeze(0) for a single image (3, H, W)."
        )
        raise ImageBatchError(msg)
    if not len(images):
        msg = "The batch of images is empty: pass at least one image (B >= 1)."
        raise ImageBatchError(msg)
    if not images.is_floating_point():
        msg = f"Dapo takes float images in [0, 1], got {images.dtype}: pass images.float() / 255 for 8-bit images."
        raise ImageBatchError(msg)
    finite = images[torch.isfinite(images)] if unit_range else images.new_empty(0)  # NaN, inf: check_finite
    if finite.numel() and (finite.amin() < 0 or finite.amax() > 1):
        msg = (
            f"Dapo takes float images in [0, 1], got values in [{finite.amin().item():g}, {finite.amax().item():g}]: "
            "divide 8-bit values (0-255) by 255; the model normalises the images itself."
        )
        raise ImageBatchError(msg)


def check_finite(images: torch.Tensor) -> None:
    """Refuse images with NaN or infinite values before the model (skipped while exporting a graph).

    An exported graph cannot raise: there a NaN input gives NaN scores and maps (and ``pred_label`` false).
    """
    if torch.compiler.is_exporting() or torch.jit.is_tracing():
        return
    bad = ~torch.isfinite(images.flatten(1)).all(dim=1)
    if bad.any():
        msg = (
            f"Input images {bad.nonzero().flatten().tolist()} of the batch hold NaN or infinite values. "
            "Dapo scores finite images only: check the image files or the transforms that produced them."
        )
        raise NonFiniteInputError(msg)


def check_layers(name: str, layers: Sequence[int], available: int, minimum: int) -> None:
    """Raise a ``ValueError`` naming the option unless every layer number lies in ``minimum..available``."""
    if not layers or any(not minimum <= layer <= available for layer in layers):
        msg = (
            f"{name}={list(layers)} does not fit a backbone with {available} layers (allowed: {minimum}..{available})."
        )
        raise ValueError(msg)


def embed_dim(clip: CLIP) -> int:
    """Width of CLIP's joint image-text space."""
    projection = clip.text_projection
    return projection.out_features if isinstance(projection, nn.Linear) else projection.shape[1]
