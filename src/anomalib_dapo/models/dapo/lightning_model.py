"""DAPO as an anomalib model: defect-aware prompt optimisation on a frozen CLIP (Nazer et al., 2025).

Training learns the prompts and adapters on an auxiliary dataset with per-pixel defect types
(``anomalib train --model Dapo --data <typed datamodule>``); the learned model then runs zero-shot on any
anomalib datamodule, scoring the target's defect types named only by text::

    anomalib test --model Dapo --model.weights learned.ckpt --data MPDD --data.category tubes

Besides anomalib's score, label, anomaly map and mask, each batch gets ``pred_type_map``,
``pred_type_mask`` and ``pred_type_probs`` (see :mod:`anomalib_dapo.data.dataclasses`).
"""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from anomalib import LearningType
from anomalib.data import AnomalibDataModule, Batch
from anomalib.metrics import AUPR, AUPRO, AUROC, AnomalibMetric, Evaluator, F1Max
from anomalib.models.components import AnomalibModule
from anomalib.pre_processing import PreProcessor
from anomalib.visualization import Visualizer
from lightning.pytorch.utilities.types import STEP_OUTPUT
from torch import nn
from torch.nn import ModuleList
from torchvision.transforms.v2 import Compose, InterpolationMode, Normalize, Resize

from anomalib_dapo import knowledge
from anomalib_dapo.backbone import TINY_BACKBONE, load_clip
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.deploy.export import EXPORT_OPSET, dapo_metadata, text_side_removed, write_onnx_metadata
from anomalib_dapo.metrics import (
    MultiLabelF1,
    MultiLabelPrecision,
    MultiLabelRecall,
    TypeAUROC,
    TypeAveragePrecision,
    TypeF1Score,
)
from anomalib_dapo.models.dapo.checkpoint import SAFE_GLOBALS, LearnedWeights
from anomalib_dapo.models.dapo.loss import DapoLoss
from anomalib_dapo.models.dapo.post_processor import DapoPostProcessor
from anomalib_dapo.models.dapo.prompts import TokenInit
from anomalib_dapo.models.dapo.torch_model import Aggregation, DapoModel, ImageScore, upsample
from anomalib_dapo.visualization import TypeVisualizer

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
GENERIC_STATE = "anomaly"
"""The vocabulary when no defect type is known: one abnormal state with no defect words."""


class Dapo(AnomalibModule):
    """DAPO: defect-aware hybrid prompts with progressive prompt tuning (paper defaults throughout).

    Args:
        backbone: OpenCLIP model name (``ViT-L-14-336``; ``dapo-tiny`` for tests and demos).
        pretrained: OpenCLIP weights tag (``openai``), a local checkpoint file, or ``None`` for random weights.
        image_size: Input resolution (518; the position embeddings are interpolated).
        weights: A checkpoint of a trained Dapo (``anomalib train`` writes one) whose learned prompts and
            adapters are loaded; the model is then zero-shot on its test data.
        defect_types: The defect vocabulary to score (e.g. ``[scratch, dent]``). ``None``: from the
            datamodule or the knowledge base for its dataset and category, else the generic "anomaly" state.
        product_filter: Score only the defect types of the tested product (MultiADS-F) rather than every
            type of its dataset, when the vocabulary comes from the knowledge base.
        prompt_length: ``l``, learnable context tokens per prompt (5).
        num_prompts: ``E``, prompts per state (10).
        prompt_tokens: Progressive prompt tokens per layer (4).
        text_depth: ``N_d``, text layers with prompt tokens (12).
        vision_depth: Vision layers with prompt tokens; ``None`` = all (24).
        alpha: ``α`` of the progressive connection (0.01).
        progressive: Progressive connection (eq. 10); ``False`` = plain prefix tuning (ablation).
        adapter_layers: Layers whose patch tokens are adapted, ``M`` stages (6, 12, 18, 24).
        temperature: ``τ`` (0.07).
        lambda_local: ``λ`` of eq. 9 (4).
        focal_gamma: ``γ`` of the focal loss (2).
        token_init: ``clip`` (paper), ``random`` or ``offset`` (appendix 10.2).
        image_score: ``fusion`` (paper), ``global`` (the authors' code) or ``map_max``.
        aggregation: ``mean`` (paper) or ``attention`` prototype aggregation (appendix 11).
        normal_word: Normal state word (``normal``; the authors' code uses ``flawless``).
        abnormal_word: Literal anomaly word (``anomaly``).
        object_word: Literal object word (``object``).
        learning_rate: Adam learning rate (1e-3).
        gradient_checkpointing: Trade compute for memory when training.
        quick_gelu: QuickGELU activations, as OpenAI's CLIP weights need.

    """

    def __init__(
        self,
        backbone: str = "ViT-L-14-336",
        pretrained: str | None = "openai",
        image_size: int = 518,
        weights: str | None = None,
        defect_types: Sequence[str] | None = None,
        product_filter: bool = True,
        prompt_length: int = 5,
        num_prompts: int = 10,
        prompt_tokens: int = 4,
        text_depth: int = 12,
        vision_depth: int | None = None,
        alpha: float = 0.01,
        progressive: bool = True,
        adapter_layers: Sequence[int] = (6, 12, 18, 24),
        temperature: float = 0.07,
        lambda_local: float = 4.0,
        focal_gamma: float = 2.0,
        token_init: TokenInit | str = TokenInit.CLIP,
        image_score: ImageScore | str = ImageScore.FUSION,
        aggregation: Aggregation | str = Aggregation.MEAN,
        normal_word: str = "normal",
        abnormal_word: str = "anomaly",
        object_word: str = "object",
        learning_rate: float = 1e-3,
        gradient_checkpointing: bool = False,
        quick_gelu: bool = True,
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
        self.user_defect_types = knowledge.validate_defect_list(defect_types) if defect_types is not None else None
        self.product_filter = product_filter
        self.learning_rate = learning_rate
        if backbone == TINY_BACKBONE:
            logger.warning("Dapo runs on '%s', a tiny CLIP with RANDOM weights: a test/demo model only.", backbone)
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
        self.learned = LearnedWeights(self.model, backbone=backbone, image_size=image_size)
        self.weights = weights
        if weights is not None:
            self.load_weights(weights)

    def load_weights(self, path: str) -> None:
        """Load learned prompts and adapters, and the calibration (thresholds, normalisation) of their training run.

        The calibration is a fallback for data without labels (``anomalib predict`` on a folder): anomalib
        recalibrates zero-shot models on the target's validation data whenever there is some.
        """
        state = self.learned.load_file(path)
        if self.post_processor is not None:
            prefix = "post_processor."
            calibration = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            self.post_processor.load_state_dict(calibration, strict=False)

    # ------------------------------------------------------------------ vocabulary

    def resolve_vocabulary(self, stage: str | None = None) -> tuple[str, ...]:
        """The defect types to score: the user's, else the datamodule's, else the knowledge base's, else generic.

        During ``fit`` the training vocabulary of the datamodule (``train_defect_types``) is used.
        """
        if self.user_defect_types is not None and stage != "fit":
            return self.user_defect_types
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit":
            types = getattr(datamodule, "train_defect_types", None) or getattr(datamodule, "defect_types", None)
            if not types:
                msg = (
                    "Training Dapo needs images with per-pixel defect types: use a typed datamodule such as "
                    "anomalib_dapo.data.CrossDataset, TypedMVTecAD or SyntheticDefects."
                )
                raise ValueError(msg)
            return tuple(types)
        if datamodule is None:
            return (GENERIC_STATE,)
        if types := getattr(datamodule, "defect_types", None):
            return tuple(types)
        try:
            dataset = knowledge.resolve_dataset(datamodule.name)
            return knowledge.vocabulary(dataset, datamodule.category if self.product_filter else None)
        except knowledge.KnowledgeBaseError:
            logger.info("No defect vocabulary known for %s; scoring the generic anomaly state.", datamodule.name)
            return (GENERIC_STATE,)

    def use_vocabulary(self, defect_types: Sequence[str]) -> None:
        """Score ``defect_types`` from now on (text features are recomputed once)."""
        words = ["" if name == GENERIC_STATE else knowledge.prompt_words(name) for name in defect_types]
        self.model.set_vocabulary(defect_types, words)
        logger.info("Dapo scores %d defect types: %s", len(defect_types), ", ".join(defect_types))

    def setup(self, stage: str) -> None:
        """Pick the vocabulary for the stage, size the type metrics for it, and collate typed batches."""
        self.train_vocabulary = self.resolve_vocabulary("fit") if stage == "fit" else ()
        self.eval_vocabulary = self.resolve_vocabulary("test" if stage == "fit" else stage)
        self.use_vocabulary(self.eval_vocabulary)
        if self.evaluator is not None:
            binary = [metric for metric in self.evaluator.test_metrics if not isinstance(metric, _TYPE_METRICS)]
            self.evaluator.test_metrics = ModuleList(binary + type_metrics(len(self.eval_vocabulary)))
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if isinstance(datamodule, AnomalibDataModule) and datamodule.external_collate_fn is None:
            # anomalib's own datasets collate into ImageBatch, which drops the type outputs of the steps.
            datamodule.external_collate_fn = TypedImageBatch.collate

    def on_train_epoch_start(self) -> None:
        """Train on the source vocabulary."""
        self.use_vocabulary(self.train_vocabulary)

    def on_validation_epoch_start(self) -> None:
        """Validate on the target vocabulary."""
        self.use_vocabulary(self.eval_vocabulary)

    # ------------------------------------------------------------------ steps

    def training_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Eq. 9 on a batch of images with integer type masks (``gt_type_mask``)."""
        del args, kwargs
        type_mask = getattr(batch, "gt_type_mask", None)
        if type_mask is None:
            msg = "Dapo trains on batches with 'gt_type_mask': use a typed datamodule (see anomalib_dapo.data)."
            raise ValueError(msg)
        outputs = self.model.compute(batch.image)
        stage_probs = upsample(outputs.stage_probs, type_mask.shape[-2:])
        loss = self.loss(outputs.global_logits, batch.gt_label, list(stage_probs.unbind(dim=1)), type_mask)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch.image))
        return {"loss": loss}

    def _predict(self, batch: Batch) -> TypedImageBatch:
        batch = TypedImageBatch.from_batch(batch)
        return batch.update(**self.model(batch.image)._asdict())

    def validation_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Predict on the target data (anomalib calibrates thresholds and normalisation on it)."""
        del args, kwargs
        return self._predict(batch)

    def test_step(self, batch: Batch, batch_idx: int, *args, **kwargs) -> STEP_OUTPUT:
        """Zero-shot prediction with the type outputs."""
        del args, kwargs, batch_idx
        return self._predict(batch)

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> STEP_OUTPUT:
        """Zero-shot prediction with the type outputs."""
        del batch_idx, dataloader_idx
        return self._predict(batch)

    def val_dataloader(self) -> list:
        """No validation data of the model's own.

        anomalib's ``Engine.predict`` validates zero-shot models before predicting even when it was given only
        an image folder; with nothing to validate on, Dapo keeps the calibration loaded with its weights.
        A datamodule's validation data, whenever given, takes precedence over this.
        """
        return []

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over the prompt tokens and adapters, the only trainable parameters."""
        return torch.optim.Adam([p for p in self.model.parameters() if p.requires_grad], lr=self.learning_rate)

    # ------------------------------------------------------------------ checkpoints

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the learned parameters and what rebuilds the model; never the frozen CLIP weights."""
        super().on_save_checkpoint(checkpoint)
        self.learned.strip(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check the checkpoint fits this model and put the frozen CLIP weights back before loading."""
        super().on_load_checkpoint(checkpoint)
        self.learned.restore(checkpoint)

    # ------------------------------------------------------------------ anomalib contract

    @property
    def learning_type(self) -> LearningType:
        """Zero-shot once learned weights are given, else trainable.

        anomalib 2.7 only trains ``ONE_CLASS`` models (it merely validates zero- and few-shot ones), so the
        training phase, which learns from labelled anomalies, presents itself as ``ONE_CLASS``.
        """
        return LearningType.ZERO_SHOT if self.weights else LearningType.ONE_CLASS

    @classmethod
    def checkpoint_safe_globals(cls) -> Sequence[Any]:
        """The plugin's enums stored in the hyper-parameters, for ``weights_only`` loading."""
        return SAFE_GLOBALS

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """No sanity validation: the vocabulary is set up with the first epoch."""
        return {"num_sanity_val_steps": 0}

    def configure_pre_processor(self, image_size: tuple[int, int] | None = None) -> PreProcessor:
        """Resize to the model's resolution and normalise with CLIP's statistics."""
        size = image_size or (self.image_size, self.image_size)
        return PreProcessor(
            transform=Compose(
                [
                    Resize(size, antialias=True, interpolation=InterpolationMode.BICUBIC),
                    Normalize(mean=CLIP_MEAN, std=CLIP_STD),
                ]
            ),
        )

    @staticmethod
    def configure_post_processor() -> DapoPostProcessor:
        """Anomalib's post-processing, keeping the defect-type outputs in exported graphs."""
        return DapoPostProcessor()

    @staticmethod
    def configure_evaluator() -> Evaluator:
        """Binary metrics: image AUROC, AP, F1-max; pixel AUROC, AUPRO, F1-max (anomalib's own)."""
        image = [
            AUROC(fields=["pred_score", "gt_label"], prefix="image_"),
            AUPR(fields=["pred_score", "gt_label"], prefix="image_"),
            F1Max(fields=["pred_score", "gt_label"], prefix="image_"),
        ]
        pixel = [
            AUROC(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            AUPRO(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
            F1Max(fields=["anomaly_map", "gt_mask"], prefix="pixel_", strict=False),
        ]
        return Evaluator(test_metrics=image + pixel)

    @classmethod
    def configure_visualizer(cls) -> TypeVisualizer:
        """Anomalib's pictures plus the ground-truth and predicted defect types coloured in, with a legend."""
        return TypeVisualizer()

    # ------------------------------------------------------------------ export

    @contextmanager
    def _exportable(self) -> Iterator[None]:
        """Fix the vocabulary and cache its states, then leave the text side and gradients out while exporting.

        The vocabulary is resolved as for ``predict`` (``defect_types``, else the datamodule's when a trainer
        holds one, else the generic state), so exporting needs no datamodule. The export scores it from a
        constant tensor: exporting again is how the vocabulary changes.
        """
        self.use_vocabulary(self.resolve_vocabulary("predict"))
        self.eval()
        flags = {parameter: parameter.requires_grad for parameter in self.parameters()}
        self.requires_grad_(False)  # nothing learns in an export: the cached states serve even with gradients on
        try:
            self.model.states()
            with text_side_removed(self.model):
                yield
        finally:
            for parameter, flag in flags.items():
                parameter.requires_grad_(flag)

    def to_torch(self, export_root: Path | str, model_file_name: str = "model") -> Path:
        """Pickle this module for the vocabulary, without tokenizer or text encoder.

        Load it with :class:`anomalib_dapo.deploy.DapoTorchInferencer` (the plugin must be importable there).
        """
        with self._exportable():
            return super().to_torch(export_root, model_file_name)

    def to_onnx(
        self,
        export_root: Path | str,
        model_file_name: str = "model",
        input_size: tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> Path:
        """Export the graph for the vocabulary (its state embeddings a constant) and record it in the metadata.

        ``to_openvino`` converts this export; OpenVINO keeps the metadata in the model's ``rt_info``. The opset
        defaults to the dynamo exporter's own (18) rather than anomalib's 14, which it cannot convert to.
        """
        kwargs.setdefault("opset_version", EXPORT_OPSET)
        with self._exportable():
            path = super().to_onnx(export_root, model_file_name, input_size, **kwargs)
        write_onnx_metadata(path, dapo_metadata(self))
        return path


_TYPE_METRICS = (TypeAUROC, TypeAveragePrecision, TypeF1Score, MultiLabelPrecision, MultiLabelRecall, MultiLabelF1)


def type_metrics(num_types: int) -> list[AnomalibMetric]:
    """Multi-type metrics for ``num_types`` defect types, computed where the data has ``gt_type_mask``.

    Pixel AUROC, AP and F1 macro over the ``K + 1`` states (paper §5.3) and image-level multi-label
    precision, recall and F1 of eq. 11 (appendix 11.6).
    """
    states = num_types + 1
    return [
        TypeAUROC(num_classes=states, prefix="pixel_", strict=False),
        TypeAveragePrecision(num_classes=states, prefix="pixel_", strict=False),
        TypeF1Score(num_classes=states, prefix="pixel_", strict=False),
        MultiLabelPrecision(num_labels=num_types, prefix="image_", strict=False),
        MultiLabelRecall(num_labels=num_types, prefix="image_", strict=False),
        MultiLabelF1(num_labels=num_types, prefix="image_", strict=False),
    ]
