"""DAPO as an anomalib model: defect-aware prompt optimisation on a frozen CLIP.

Paper: Nazer, Zhou, Halilaj, Sadikaj and Staab (2025), *Defect-aware Hybrid Prompt Optimization via Progressive
Tuning for Zero-Shot Multi-type Anomaly Detection and Segmentation* (the text followed: ``shared/papers/dapo.txt``;
it gives no public link). See this package's ``README.md``.

Training learns the prompts and adapters on an auxiliary dataset with per-pixel defect types
(``anomalib train --model Dapo --data <typed datamodule>``); the learned model then runs zero-shot on any
anomalib datamodule, scoring the target's defect types named only by text::

    anomalib test --model Dapo --model.weights learned.ckpt --data MPDD --data.category tubes

Besides anomalib's score, label, anomaly map and mask, each batch gets ``pred_type_map``,
``pred_type_mask`` and ``pred_type_probs`` (see :mod:`anomalib_dapo.data.dataclasses`).
"""

from collections.abc import Sequence
from pathlib import Path

import torch
from anomalib.data import Batch
from anomalib.metrics import Evaluator
from anomalib.models.components import AnomalibModule
from anomalib.visualization import Visualizer
from torch import nn

from anomalib_dapo.backbone import load_clip
from anomalib_dapo.models.components.adapters import AdapterInit
from anomalib_dapo.models.components.checkpoint import LearnedWeights
from anomalib_dapo.models.components.predictions import ImageScore
from anomalib_dapo.models.components.similarity import upsample
from anomalib_dapo.models.components.typed_module import TypedPromptModule
from anomalib_dapo.models.components.vocabulary import StageVocabulary
from anomalib_dapo.models.dapo.loss import DapoLoss
from anomalib_dapo.models.dapo.prompts import TokenInit
from anomalib_dapo.models.dapo.torch_model import Aggregation, DapoModel

LAYOUT_OPTIONS = ("prompt_length", "num_prompts", "prompt_tokens", "text_depth", "vision_depth", "adapter_layers")
"""The options that shape Dapo's learned tensors: a checkpoint loads only with those of its training run."""


class Dapo(TypedPromptModule, AnomalibModule):
    """DAPO: defect-aware hybrid prompts with progressive prompt tuning (paper defaults throughout).

    Example:
        Learn the prompts on MVTec-AD's typed test split, then test zero-shot on an MPDD category:

        >>> from anomalib.data import MPDD
        >>> from anomalib.engine import Engine
        >>> from anomalib_dapo import Dapo
        >>> from anomalib_dapo.data import CrossDataset
        >>> engine = Engine(max_epochs=2)
        >>> cross = CrossDataset("mvtec_ad", "./datasets/MVTecAD", "mpdd", "./datasets/MPDD", "tubes")
        >>> engine.fit(Dapo(), datamodule=cross)
        >>> learned = engine.trainer.checkpoint_callback.best_model_path
        >>> engine.test(Dapo(weights=learned), datamodule=MPDD(category="tubes"))

        On a GPU, ``Engine(precision="bf16-mixed")`` (``--trainer.precision bf16-mixed``) runs the image encoder
        in bfloat16; the text encoder and the similarity heads stay in float32.

    Args:
        backbone: OpenCLIP model name; ``dapo-tiny`` for tests and demos. Defaults to ``"ViT-L-14-336"``.
        pretrained: OpenCLIP weights tag (``synthetic``: the shipped ``dapo-tiny`` weights), a local checkpoint
            file, or ``None`` for random weights. Defaults to ``"openai"``.
        image_size: Input resolution (the position embeddings are interpolated). Defaults to ``518``.
        weights: A checkpoint of a trained Dapo (``anomalib train`` writes one) whose learned prompts and
            adapters are loaded; the model is then zero-shot on its test data. Defaults to ``None``.
        defect_types: The defect vocabulary to score (e.g. ``[scratch, dent]``), at once: ``model(images)``
            needs no trainer. Defaults to ``None``: in a run, the datamodule's or the knowledge base's for its
            dataset and category, else (and outside a run) the generic "anomaly" state.
        product_filter: Score only the defect types of the tested product (MultiADS-F) rather than every
            type of its dataset, when the vocabulary comes from the datamodule or the knowledge base.
            Defaults to ``True``.
        object_agnostic: Score one generic abnormal state with no defect words, as the AnomalyCLIP baseline of
            the paper's table 3 (``K = 1``); training then needs binary masks only. Defaults to ``False``.
        k_shot: Normal reference images compared with each test image (MultiADS §4.2.3, eq. 5); 0 is zero-shot.
            Defaults to ``0``.
        few_shot_source: A folder of normal reference images. Defaults to ``None``: the datamodule's train split.
        prompt_length: ``l``, learnable context tokens per prompt. Defaults to ``5``.
        num_prompts: ``E``, prompts per state. Defaults to ``10``.
        prompt_tokens: Progressive prompt tokens per layer. Defaults to ``4``.
        text_depth: ``N_d``, text layers with prompt tokens. Defaults to ``None``: every text layer (the
            paper's 12 of 12).
        vision_depth: Vision layers with prompt tokens. Defaults to ``None``: every vision layer (the paper's
            24 of 24).
        alpha: ``α`` of the progressive connection. Defaults to ``0.01``.
        progressive: Progressive connection (eq. 10); ``False`` = plain prefix tuning (ablation). Defaults to
            ``True``.
        adapter_layers: Layers whose patch tokens are adapted, ``M`` stages. Defaults to ``None``: the quarter
            points of the vision tower (layers 6, 12, 18, 24 of ViT-L's 24).
        adapter_init: ``random`` (paper) or ``projection``: the adapters start as CLIP's image projection, so a
            defect kind never trained on is still met by its name (see docs/tiny_clip.md). Defaults to
            ``random``.
        temperature: ``τ``. Defaults to ``0.07``.
        lambda_local: ``λ`` of eq. 9. Defaults to ``4``.
        focal_gamma: ``γ`` of the focal loss. Defaults to ``2``.
        token_init: ``clip`` (paper), ``random`` or ``offset`` (appendix 10.2). Defaults to ``clip``.
        image_score: ``global``: the global abnormal probability alone, as the DAPO authors' released code
            scores images (the paper defines no image score); ``fusion``: its mean with the anomaly map's
            maximum (MultiADS §4.2.2); ``map_max``: the map's maximum alone. Defaults to ``global``.
        aggregation: ``mean`` (paper) or ``attention`` prototype aggregation (appendix 11). Defaults to ``mean``.
        normal_word: Normal state word (the authors' code uses ``flawless``). Defaults to ``"normal"``.
        abnormal_word: Literal anomaly word. Defaults to ``"anomaly"``.
        object_word: Literal object word. Defaults to ``"object"``.
        learning_rate: Adam learning rate. Defaults to ``1e-3``.
        gradient_checkpointing: Trade compute for memory when training. Defaults to ``False``.
        quick_gelu: QuickGELU activations, as OpenAI's CLIP weights need. Defaults to ``True``.
        type_outputs: Exports return the defect-type outputs beside anomalib's four fields (for the plugin's
            inferencers); ``False``: anomalib's fields alone, for anomalib's stock inferencers and tools.
            Defaults to ``True``.
        export_untrained: Allow exporting a model without learned weights (random prompts and adapters).
            Defaults to ``False``.
        pre_processor: anomalib's pre-processor, or ``True`` for CLIP's resize and normalisation. Defaults to
            ``True``.
        post_processor: anomalib's post-processor, or ``True`` for the typed one. Defaults to ``True``.
        evaluator: anomalib's evaluator, or ``True`` for the binary and type metrics. Defaults to ``True``.
        visualizer: anomalib's visualizer, or ``True`` for the typed one. Defaults to ``True``.

    """

    def __init__(
        self,
        backbone: str = "ViT-L-14-336",
        pretrained: str | None = "openai",
        image_size: int = 518,
        weights: str | None = None,
        defect_types: Sequence[str] | None = None,
        product_filter: bool = True,
        object_agnostic: bool = False,
        k_shot: int = 0,
        few_shot_source: Path | str | None = None,
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
        lambda_local: float = 4.0,
        focal_gamma: float = 2.0,
        token_init: TokenInit | str = TokenInit.CLIP,
        image_score: ImageScore | str = ImageScore.GLOBAL,
        aggregation: Aggregation | str = Aggregation.MEAN,
        normal_word: str = "normal",
        abnormal_word: str = "anomaly",
        object_word: str = "object",
        learning_rate: float = 1e-3,
        gradient_checkpointing: bool = False,
        quick_gelu: bool = True,
        type_outputs: bool = True,
        export_untrained: bool = False,
        pre_processor: nn.Module | bool = True,
        post_processor: nn.Module | bool = True,
        evaluator: Evaluator | bool = True,
        visualizer: Visualizer | bool = True,
    ) -> None:
        self.image_size = image_size
        super().__init__(
            pre_processor=pre_processor,
            post_processor=post_processor,
            evaluator=evaluator,
            visualizer=visualizer,
        )
        self.set_options(weights, defect_types, product_filter, object_agnostic, k_shot, few_shot_source, learning_rate)
        self.set_export_options(type_outputs, export_untrained)
        clip = load_clip(backbone, pretrained, image_size, quick_gelu)
        self.model = DapoModel(
            clip.model,
            clip.tokenizer,
            prompt_length=prompt_length,
            num_prompts=num_prompts,
            prompt_tokens=prompt_tokens,
            text_depth=text_depth,
            vision_depth=vision_depth,
            alpha=alpha,
            progressive=progressive,
            adapter_layers=adapter_layers,
            adapter_init=adapter_init,
            temperature=temperature,
            token_init=token_init,
            image_score=image_score,
            aggregation=aggregation,
            normal_word=normal_word,
            abnormal_word=abnormal_word,
            object_word=object_word,
            gradient_checkpointing=gradient_checkpointing,
        )
        self.loss = DapoLoss(lambda_local=lambda_local, focal_gamma=focal_gamma)
        self.learned = LearnedWeights(self.model, "Dapo", backbone, image_size, layout_options=LAYOUT_OPTIONS)
        self.apply_vocabulary(self.stage_vocabulary())  # usable at once, without a trainer
        if weights is not None:
            self.load_weights(weights)

    def encode_vocabulary(self, vocabulary: StageVocabulary) -> None:
        """Score ``vocabulary``'s defect types from now on (text features are recomputed once)."""
        self.model.set_vocabulary(vocabulary.defect_types, vocabulary.defect_words)

    def training_loss(self, batch: Batch, type_mask: torch.Tensor) -> torch.Tensor:
        """Eq. 9 on a batch of images with integer type masks."""
        outputs = self.model.compute(batch.image)
        stage_probs = upsample(outputs.stage_probs, type_mask.shape[-2:])
        return self.loss(outputs.global_logits, batch.gt_label, list(stage_probs.unbind(dim=1)), type_mask)
