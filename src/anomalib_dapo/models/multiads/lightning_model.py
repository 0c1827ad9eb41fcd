"""MultiADS as an anomalib model: hand-crafted defect-aware prompts and linear adapters on a frozen CLIP.

Paper: Sadikaj, Zhou, Halilaj, Schmid, Staab and Plant (2025), *MultiADS: Defect-aware Supervision for
Multi-type Anomaly Detection and Segmentation in Zero-Shot Learning*, https://arxiv.org/abs/2504.06740. See this
package's ``README.md``.

The baseline DAPO compares with (§4): per defect type a prompt ensemble naming the product and the defect, the
text features of each ensemble averaged into a state, and linear adapters on the patch tokens of four encoder
stages trained with a multi-class focal and a dice loss. Only the adapters learn::

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
from anomalib_dapo.models.components.checkpoint import LearnedWeights
from anomalib_dapo.models.components.predictions import ImageScore
from anomalib_dapo.models.components.similarity import upsample
from anomalib_dapo.models.components.typed_module import TypedPromptModule
from anomalib_dapo.models.components.vocabulary import StageVocabulary
from anomalib_dapo.models.multiads.loss import multiads_loss
from anomalib_dapo.models.multiads.prompts import OBJECT_WORD
from anomalib_dapo.models.multiads.torch_model import MultiAdsModel


class MultiAds(TypedPromptModule, AnomalibModule):
    """MultiADS: defect-aware hand-crafted prompt ensembles with linear stage adapters (paper defaults).

    Example:
        Learn the adapters on MVTec-AD's typed test split, then test MultiADS-F zero-shot on an MPDD category:

        >>> from anomalib.data import MPDD
        >>> from anomalib.engine import Engine
        >>> from anomalib_dapo import MultiAds
        >>> from anomalib_dapo.data import CrossDataset
        >>> engine = Engine(max_epochs=2)
        >>> cross = CrossDataset("mvtec_ad", "./datasets/MVTecAD", "mpdd", "./datasets/MPDD", "tubes")
        >>> engine.fit(MultiAds(), datamodule=cross)
        >>> learned = engine.trainer.checkpoint_callback.best_model_path
        >>> engine.test(MultiAds(weights=learned, product_filter=True), datamodule=MPDD(category="tubes"))

    Args:
        backbone: OpenCLIP model name; ``dapo-tiny`` for tests and demos. Defaults to ``"ViT-L-14-336"``.
        pretrained: OpenCLIP weights tag, a local checkpoint file, or ``None`` for random weights. Defaults to
            ``"openai"``.
        image_size: Input resolution, as Dapo's (the position embeddings are interpolated). Defaults to ``518``.
        weights: A checkpoint of a trained MultiAds whose adapters are loaded; the model is then zero-shot
            (few-shot with ``k_shot``) on its test data. Defaults to ``None``.
        defect_types: The defect vocabulary to score, at once: ``model(images)`` needs no trainer. Defaults to
            ``None``: in a run, the datamodule's or the knowledge base's, else (and outside a run) the generic
            "anomaly" state.
        class_name: The product named in the test prompts. Training prompts name each training image's own
            product (the ``category`` of its sample, as ``CrossDataset`` records it; else the datamodule's
            category). Defaults to ``None``: the datamodule's category, else "object".
        product_filter: Score only the tested product's defect types (MultiADS-F, §4.2.4) rather than every
            type of its dataset (MultiADS), when the vocabulary comes from the datamodule or the knowledge base.
            Defaults to ``False``.
        object_agnostic: Score the single generic abnormal state, with no defect words and no product name.
            Defaults to ``False``.
        k_shot: Normal reference images compared with each test image (§4.2.3); 0 is zero-shot. Defaults to ``0``.
        few_shot_source: A folder of normal reference images. Defaults to ``None``: the datamodule's train split.
        adapter_layers: Layers whose patch tokens are adapted, ``m`` stages. Defaults to ``None``: the quarter
            points of the vision tower (layers 6, 12, 18, 24 of ViT-L's 24).
        temperature: ``τ``. Defaults to ``0.07``.
        focal_gamma: ``γ`` of the focal loss. Defaults to ``2``.
        image_score: ``fusion`` (the paper: mean of ``a_x`` and the map maximum), ``global`` or ``map_max``.
            Defaults to ``fusion``.
        learning_rate: Adam learning rate. Defaults to ``1e-3``.
        quick_gelu: QuickGELU activations, as OpenAI's CLIP weights need. Defaults to ``True``.
        type_outputs: Exports return the defect-type outputs beside anomalib's four fields (for the plugin's
            inferencers); ``False``: anomalib's fields alone, for anomalib's stock inferencers and tools.
            Defaults to ``True``.
        export_untrained: Allow exporting a model without learned weights (random adapters). Defaults to
            ``False``.
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
        class_name: str | None = None,
        product_filter: bool = False,
        object_agnostic: bool = False,
        k_shot: int = 0,
        few_shot_source: Path | str | None = None,
        adapter_layers: Sequence[int] | None = None,
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
        self.learned = LearnedWeights(self.model, "MultiAds", backbone, image_size)
        self.train_products: tuple[str, ...] = (OBJECT_WORD,)
        self.train_product_of: dict[str, int] = {}
        # Usable at once, without a trainer: the product is ``class_name`` or "object" until a datamodule names one.
        self.apply_vocabulary(self.stage_vocabulary())
        if weights is not None:
            self.load_weights(weights)

    def product_name(self) -> str:
        """The product the evaluation prompts name: ``class_name``, else the datamodule's category, else "object"."""
        if self.object_agnostic:
            return OBJECT_WORD
        if self.class_name is not None:
            return self.class_name
        return getattr(self._datamodule(), "category", None) or OBJECT_WORD

    def training_products(self) -> tuple[tuple[str, ...], dict[str, int]]:
        """The products of the training images, and the index of each image's (by path).

        From the ``category`` of each sample of the training data where it has one (``CrossDataset``), else the
        datamodule's category for every image; "object" object-agnostic or when neither is known.
        """
        datamodule = self._datamodule()
        samples = getattr(getattr(datamodule, "train_data", None), "samples", None)
        if self.object_agnostic:
            return (OBJECT_WORD,), {}
        if samples is not None and "category" in samples:
            products = tuple(dict.fromkeys(samples.category))
            index = {name: position for position, name in enumerate(products)}
            return products, {
                str(path): index[name] for path, name in zip(samples.image_path, samples.category, strict=True)
            }
        return (getattr(datamodule, "category", None) or OBJECT_WORD,), {}

    def stage_vocabulary(self, stage: str | None = None) -> StageVocabulary:
        """The defect types as every model of the plugin resolves them, of the products the prompts name.

        The products are the training images' during ``fit``, else the tested product (see :meth:`product_name`).
        """
        products = self.train_products if stage == "fit" else (self.product_name(),)
        return StageVocabulary(self.resolve_vocabulary(stage), products)

    def encode_vocabulary(self, vocabulary: StageVocabulary) -> None:
        """Score ``vocabulary``'s defect types on its products from now on (text features are encoded once)."""
        self.model.set_vocabulary(vocabulary.defect_types, vocabulary.defect_words, vocabulary.products)

    def setup(self, stage: str) -> None:
        """Find the training images' products, then set up as every model of the plugin."""
        if stage == "fit":
            self.train_products, self.train_product_of = self.training_products()
        super().setup(stage)

    def training_loss(self, batch: Batch, type_mask: torch.Tensor) -> torch.Tensor:
        """Eq. 2 on a batch of images with integer type masks, each scored against its own product's states."""
        products = [self.train_product_of.get(str(path), 0) for path in batch.image_path]
        products = torch.tensor(products, device=batch.image.device)
        stage_probs = upsample(self.model.compute(batch.image, products).stage_probs, type_mask.shape[-2:])
        return multiads_loss(stage_probs, type_mask, self.focal_gamma)
