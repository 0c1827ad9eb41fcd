"""MultiADS as an anomalib model: hand-crafted defect-aware prompts and linear adapters on a frozen CLIP.

The baseline DAPO compares with (Sadikaj et al., §4): per defect type a prompt ensemble naming the product
and the defect, the text features of each ensemble averaged into a state, and linear adapters on the patch
tokens of four encoder stages trained with a multi-class focal and a dice loss. Only the adapters learn::

    anomalib train --model MultiAds --data anomalib_dapo.data.CrossDataset ...
    anomalib test --model MultiAds --model.weights learned.ckpt --model.product_filter true --data MPDD ...

The outputs, metrics and checkpoints are Dapo's (see :class:`anomalib_dapo.models.components.TypedPromptModule`).
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
from anomalib_dapo.models.components.typed_module import TypedPromptModule
from anomalib_dapo.models.dapo.checkpoint import LearnedWeights
from anomalib_dapo.models.dapo.torch_model import ImageScore, upsample
from anomalib_dapo.models.multiads.loss import multiads_loss
from anomalib_dapo.models.multiads.prompts import OBJECT_WORD
from anomalib_dapo.models.multiads.torch_model import MultiAdsModel


class MultiAds(TypedPromptModule, AnomalibModule):
    """MultiADS: defect-aware hand-crafted prompt ensembles with linear stage adapters (paper defaults).

    Args:
        backbone: OpenCLIP model name (``ViT-L-14-336``; ``dapo-tiny`` for tests and demos).
        pretrained: OpenCLIP weights tag (``openai``), a local checkpoint file, or ``None`` for random weights.
        image_size: Input resolution (518, as Dapo; the position embeddings are interpolated).
        weights: A checkpoint of a trained MultiAds whose adapters are loaded; the model is then zero-shot
            (few-shot with ``k_shot``) on its test data.
        defect_types: The defect vocabulary to score. ``None``: from the datamodule or the knowledge base,
            else the generic "anomaly" state.
        class_name: The product named in the prompts. ``None``: the datamodule's category, else "object".
            Training prompts always say "object": a training batch mixes products.
        product_filter: Score only the tested product's defect types (MultiADS-F, §4.2.4) rather than every
            type of its dataset (MultiADS), when the vocabulary comes from the knowledge base.
        object_agnostic: Score the single generic abnormal state, with no defect words and no product name.
        k_shot: Normal reference images compared with each test image (§4.2.3); 0 is zero-shot.
        few_shot_source: A folder of normal reference images. ``None``: the datamodule's train split.
        adapter_layers: Layers whose patch tokens are adapted, ``m`` stages (6, 12, 18, 24).
        temperature: ``τ`` (0.07).
        focal_gamma: ``γ`` of the focal loss (2).
        image_score: ``fusion`` (the paper: mean of ``a_x`` and the map maximum), ``global`` or ``map_max``.
        learning_rate: Adam learning rate (1e-3).
        quick_gelu: QuickGELU activations, as OpenAI's CLIP weights need.
        type_outputs: Exports return the defect-type outputs beside anomalib's four fields (for the plugin's
            inferencers); ``False``: anomalib's fields alone, for anomalib's stock inferencers and tools.
        export_untrained: Allow exporting a model without learned weights (random adapters).

    """

    def __init__(
        self,
        backbone: str = "ViT-L-14-336",
        pretrained: str | None = "openai",
        image_size: int = 518,
        weights: str | None = None,
        defect_types: Sequence[str] | None = None,
        class_name: str | None = None,
        product_filter: bool = False,
        object_agnostic: bool = False,
        k_shot: int = 0,
        few_shot_source: Path | str | None = None,
        adapter_layers: Sequence[int] = (6, 12, 18, 24),
        temperature: float = 0.07,
        focal_gamma: float = 2.0,
        image_score: ImageScore | str = ImageScore.FUSION,
        learning_rate: float = 1e-3,
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
        self.class_name = class_name
        self.focal_gamma = focal_gamma
        clip = load_clip(backbone, pretrained, image_size, quick_gelu)
        self.model = MultiAdsModel(
            clip.model,
            clip.tokenizer,
            adapter_layers=adapter_layers,
            temperature=temperature,
            image_score=image_score,
        )
        self.learned = LearnedWeights(self.model, backbone=backbone, image_size=image_size)
        self.object_name = self.product_name()  # what an export without a datamodule names
        if weights is not None:
            self.load_weights(weights)

    def product_name(self) -> str:
        """The product the evaluation prompts name: ``class_name``, else the datamodule's category, else "object"."""
        if self.object_agnostic:
            return OBJECT_WORD
        if self.class_name is not None:
            return self.class_name
        return getattr(self._datamodule(), "category", None) or OBJECT_WORD

    def use_vocabulary(self, defect_types: Sequence[str]) -> None:
        """Score ``defect_types`` on the current object name from now on (text features are encoded once)."""
        self.model.set_vocabulary(defect_types, self.defect_words(defect_types), self.object_name)
        self.announce(
            (self.object_name, *defect_types),
            "MultiAds scores %d defect types of a %s: %s",
            len(defect_types),
            self.object_name,
            ", ".join(defect_types),
        )

    def on_train_epoch_start(self) -> None:
        """Train with prompts on a generic object."""
        self.object_name = OBJECT_WORD
        super().on_train_epoch_start()

    def on_validation_epoch_start(self) -> None:
        """Evaluate with prompts naming the product."""
        self.object_name = self.product_name()
        super().on_validation_epoch_start()

    def setup(self, stage: str) -> None:
        """Name the product in the evaluation prompts, then set up as every model of the plugin."""
        self.object_name = self.product_name()
        super().setup(stage)

    def training_loss(self, batch: Batch, type_mask: torch.Tensor) -> torch.Tensor:
        """Eq. 2 on a batch of images with integer type masks."""
        stage_probs = upsample(self.model.compute(batch.image).stage_probs, type_mask.shape[-2:])
        return multiads_loss(stage_probs, type_mask, self.focal_gamma)
