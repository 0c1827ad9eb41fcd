"""What the plugin's CLIP-prompt models (Dapo, MultiAds) share as anomalib models.

The defect vocabulary per stage, typed batches and their steps, the type metrics, the learned-weights
checkpoints, CLIP's pre-processing, the post-processor and visualizer, and the few-shot normal references.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from anomalib import LearningType
from anomalib.data import AnomalibDataModule, Batch
from anomalib.metrics import AUPR, AUPRO, AUROC, AnomalibMetric, F1Max
from anomalib.pre_processing import PreProcessor
from lightning.pytorch import Callback
from lightning.pytorch.utilities.types import STEP_OUTPUT
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from torchvision.transforms.v2 import Compose, Normalize

from anomalib_dapo import compat, knowledge
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.images import FolderImages
from anomalib_dapo.metrics import (
    MultiLabelF1,
    MultiLabelPrecision,
    MultiLabelRecall,
    TypeAUROC,
    TypeAveragePrecision,
    TypeF1Score,
)
from anomalib_dapo.metrics.evaluator import DapoEvaluator
from anomalib_dapo.metrics.type_results import TypeResultsWriter
from anomalib_dapo.model_input import clip_resize
from anomalib_dapo.models.components import vocabulary as vocabulary_matching
from anomalib_dapo.models.components.checkpoint import safe_globals
from anomalib_dapo.models.components.export import TypedExport
from anomalib_dapo.models.components.few_shot import reference_images
from anomalib_dapo.models.components.post_processor import TypedPostProcessor
from anomalib_dapo.models.components.vocabulary import GENERIC_STATE, StageVocabulary
from anomalib_dapo.visualization import TypeVisualizer

logger = logging.getLogger(__name__)

REFERENCE_BATCH = 8
"""Reference images encoded per pass when the few-shot memory is built."""


class TypedPromptModule(TypedExport):
    """Mixin of the plugin's anomalib models; list it before ``AnomalibModule``, which must stay a direct base.

    (anomalib finds its models among ``AnomalibModule``'s direct subclasses.) The subclass builds ``self.model``
    (a torch model with ``set_vocabulary``, ``encode_image``, ``compute`` and a ``references`` memory) and
    ``self.learned`` (its :class:`~anomalib_dapo.models.components.checkpoint.LearnedWeights`), calls
    :meth:`set_options` and :meth:`set_export_options` in its ``__init__`` and :meth:`apply_vocabulary` once its
    torch model is built, and defines ``encode_vocabulary`` and ``training_loss``.

    The vocabulary is resolved once per stage (:meth:`stage_vocabulary`) into a :class:`StageVocabulary` that
    is passed to the torch model, the type metrics, the visualizer, the type-results writer and the export;
    ``vocabulary`` holds the one scored at evaluation, ``training_vocabulary`` the one trained on.
    """

    image_size: int

    def __init__(self, *args, **kwargs) -> None:
        compat.single_console_handler()  # before anomalib's first log line of the model
        super().__init__(*args, **kwargs)
        self.announced: set[StageVocabulary] = set()
        self.vocabulary = StageVocabulary.generic()
        self.training_vocabulary: StageVocabulary | None = None
        self.added_type_metrics: list[AnomalibMetric] = []

    def announce(self, vocabulary: StageVocabulary) -> None:
        """Say what is scored the first time ``vocabulary`` is used: training and validation alternate two."""
        if vocabulary not in self.announced:
            self.announced.add(vocabulary)
            logger.info(vocabulary.describe(type(self).__name__))

    def set_options(
        self,
        weights: str | None,
        defect_types: Sequence[str] | None,
        product_filter: bool,
        object_agnostic: bool,
        k_shot: int,
        few_shot_source: Path | str | None,
        learning_rate: float,
    ) -> None:
        """Check and keep the options every model of the plugin has (see ``Dapo``'s arguments)."""
        if object_agnostic and defect_types is not None:
            msg = "object_agnostic scores the single generic anomaly state: pass no defect_types with it."
            raise ValueError(msg)
        if k_shot < 0:
            msg = f"k_shot must be 0 (zero-shot) or a number of normal reference images, got {k_shot}."
            raise ValueError(msg)
        self.weights = weights
        self.defect_types = knowledge.validate_defect_list(defect_types) if defect_types is not None else None
        self.product_filter = product_filter
        self.object_agnostic = object_agnostic
        self.k_shot = k_shot
        self.few_shot_source = Path(few_shot_source) if few_shot_source is not None else None
        self.learning_rate = learning_rate
        self.said_untyped = False  # the "no type metrics" warning is given once per model
        self.type_ids: torch.Tensor | None = None  # data type id -> scored type id (see match_data_types)
        self.image_type_ids: dict[str, int] | None = None
        self.type_results = TypeResultsWriter()

    def load_weights(self, path: str) -> None:
        """Load learned prompts and adapters, and the calibration (thresholds, normalisation) of their training run.

        The calibration is a fallback for data without labels (``anomalib predict`` on a folder): anomalib
        recalibrates zero-shot models on the target's validation data whenever there is some.
        """
        state = self.learned.load_file(path)
        self.mark_learned()
        if self.post_processor is not None:
            prefix = "post_processor."
            calibration = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            self.post_processor.load_state_dict(calibration, strict=False)

    # ------------------------------------------------------------------ vocabulary

    def _datamodule(self) -> AnomalibDataModule | None:
        return getattr(self._trainer, "datamodule", None) if self._trainer is not None else None

    def stage_vocabulary(self, stage: str | None = None) -> StageVocabulary:
        """The vocabulary of ``stage`` (``None``: outside a run); the products are the model's own (MultiAds)."""
        return StageVocabulary(self.resolve_vocabulary(stage))

    def resolve_vocabulary(self, stage: str | None = None) -> tuple[str, ...]:
        """The defect types to score: the user's, else the datamodule's, else the knowledge base's, else generic.

        Without ``product_filter`` the datamodule's or knowledge base's choice is every defect type of the
        dataset (MultiADS), with it the tested product's (MultiADS-F). During ``fit`` the training vocabulary of
        the datamodule (``train_defect_types``) is used. In the object-agnostic mode it is always the generic state.
        """
        if self.object_agnostic:
            return (GENERIC_STATE,)
        if self.defect_types is not None and stage != "fit":
            return self.defect_types
        datamodule = self._datamodule()
        if stage == "fit":
            types = getattr(datamodule, "train_defect_types", None) or getattr(datamodule, "defect_types", None)
            if not types:
                msg = (
                    f"Training {type(self).__name__} needs images with per-pixel defect types: use a typed "
                    "datamodule such as anomalib_dapo.data.CrossDataset, TypedMVTecAD or SyntheticDefects "
                    "(or object_agnostic=True, which learns from binary masks)."
                )
                raise ValueError(msg)
            return tuple(types)
        if datamodule is None:
            return (GENERIC_STATE,)
        if types := getattr(datamodule, "defect_types", None):
            return tuple(types if self.product_filter else datamodule.dataset_defect_types)
        try:
            dataset = knowledge.resolve_dataset(datamodule.name)
            return knowledge.vocabulary(dataset, datamodule.category if self.product_filter else None)
        except knowledge.KnowledgeBaseError:
            logger.info("No defect vocabulary known for %s; scoring the generic anomaly state.", datamodule.name)
            return (GENERIC_STATE,)

    def match_data_types(self, vocabulary: Sequence[str]) -> bool:
        """Map the data's ground-truth type ids to the scored vocabulary by name; ``False`` if the data has none.

        A typed datamodule's masks index its ``defect_types``; anomalib's ``MVTecAD`` and ``MPDD`` give each image's
        defect folder, from which the type masks are derived. Fails here, before any work, when the scored
        vocabulary lacks a type of the data. Other datamodules give no types: said once, with what gives them.
        """
        self.type_ids, self.image_type_ids = None, None
        vocabulary = tuple(vocabulary)
        datamodule = self._datamodule()
        if self.object_agnostic:  # every defect pixel is the one generic state: binary masks will do
            return True
        if data_types := getattr(datamodule, "defect_types", None):
            self.type_ids = vocabulary_matching.type_id_map(data_types, vocabulary)
            return True
        dataset = vocabulary_matching.folder_dataset(datamodule)
        splits = [getattr(datamodule, name, None) for name in ("train_data", "val_data", "test_data")]
        folders = (
            vocabulary_matching.folder_types(dataset, splits) if dataset and vocabulary != (GENERIC_STATE,) else None
        )
        if folders is not None:
            found = tuple(dict.fromkeys(folders.values()))
            ids = vocabulary_matching.type_id_map(found, vocabulary)
            self.image_type_ids = {path: int(ids[found.index(name) + 1]) for path, name in folders.items()}
            return True
        if datamodule is not None and not self.said_untyped:
            self.said_untyped = True
            logger.warning(
                "No defect-type metrics: %s gives no per-pixel defect types (the defect types are still "
                "predicted). For type metrics use %s.",
                type(datamodule).__name__,
                vocabulary_matching.TYPED_DATAMODULES,
            )
        return False

    def ground_truth_types(self, batch: TypedImageBatch) -> torch.Tensor | None:
        """The batch's type mask in the ids of the scored vocabulary (see :meth:`match_data_types`)."""
        if batch.gt_type_mask is not None and self.type_ids is not None:
            return self.type_ids.to(batch.gt_type_mask.device)[batch.gt_type_mask]
        if batch.gt_type_mask is None and self.image_type_ids is not None and batch.gt_mask is not None:
            ids = [self.image_type_ids.get(str(path), 0) for path in batch.image_path]
            return batch.gt_mask.long() * torch.tensor(ids, device=batch.gt_mask.device).view(-1, 1, 1)
        if batch.gt_type_mask is None and self.object_agnostic and batch.gt_mask is not None:
            return batch.gt_mask.long()
        return batch.gt_type_mask

    def encode_vocabulary(self, vocabulary: StageVocabulary) -> None:
        """Make the torch model score ``vocabulary`` from now on (its text features are encoded once)."""
        raise NotImplementedError

    def apply_vocabulary(self, vocabulary: StageVocabulary) -> None:
        """Score ``vocabulary`` at evaluation: the torch model, the visualizer and the export use it."""
        self.vocabulary = vocabulary
        self.encode_vocabulary(vocabulary)
        if isinstance(self.visualizer, TypeVisualizer):
            self.visualizer.vocabulary = vocabulary.defect_types

    def use_vocabulary(self, defect_types: Sequence[str], products: Sequence[str] | None = None) -> None:
        """Score ``defect_types`` (of ``products``, MultiAds) from now on, outside a run (a run resolves its own).

        Args:
            defect_types: The defect types to score.
            products: The products the prompts name. Defaults to ``None``: the model's own (MultiAds: its
                ``class_name``, else "object").

        """
        products = self.stage_vocabulary().products if products is None else products
        self.apply_vocabulary(StageVocabulary(tuple(defect_types), tuple(products)))

    def use_type_metrics(self, metrics: list[AnomalibMetric]) -> None:
        """Put ``metrics`` among the evaluator's test metrics in place of those of the previous stage.

        Every other metric of the evaluator (its defaults, or those of an evaluator the user gave) is kept.
        """
        if self.evaluator is None:
            return
        test_metrics = self.evaluator.test_metrics
        for index in reversed(range(len(test_metrics))):
            if any(test_metrics[index] is added for added in self.added_type_metrics):
                del test_metrics[index]
        test_metrics.extend(metrics)
        self.added_type_metrics = list(metrics)

    def setup(self, stage: str) -> None:
        """Resolve the stage's vocabulary once and pass it to the model, its type metrics and its callbacks."""
        self.training_vocabulary = self.stage_vocabulary("fit") if stage == "fit" else None
        vocabulary = self.stage_vocabulary("test" if stage == "fit" else stage)
        typed = self.match_data_types(vocabulary.defect_types)
        self.apply_vocabulary(vocabulary)
        self.announce(vocabulary)
        metrics = type_metrics(len(vocabulary.defect_types)) if typed and self.evaluator is not None else []
        self.use_type_metrics(metrics)
        self.type_results.use_vocabulary(vocabulary.defect_types, metrics)
        compat.collate_typed_batches(self._datamodule())  # stock datamodules too

    def on_train_epoch_start(self) -> None:
        """Train on the source vocabulary."""
        if self.training_vocabulary is not None:
            self.encode_vocabulary(self.training_vocabulary)
            self.announce(self.training_vocabulary)

    def on_validation_epoch_start(self) -> None:
        """Validate on the target vocabulary, with references from the current weights when few-shot."""
        self.encode_vocabulary(self.vocabulary)
        self.collect_references()

    def on_test_epoch_start(self) -> None:
        """Build the few-shot references from the current weights; calibrate on the target after ``--ckpt_path``."""
        self.collect_references()
        if compat.needs_calibration(self):
            compat.calibrate(self)

    def on_predict_start(self) -> None:
        """Read the image folder of ``anomalib predict --data <folder>`` with the plugin's reader.

        :class:`~anomalib_dapo.data.images.FolderImages` scales 16-bit images rather than clipping them (see
        :func:`anomalib_dapo.compat.read_predict_folders_with`).
        """
        compat.read_predict_folders_with(self.trainer, FolderImages)

    def on_predict_epoch_start(self) -> None:
        """Build the few-shot references from the current weights; calibrate on the target after ``--ckpt_path``."""
        self.collect_references()
        if compat.needs_calibration(self):
            compat.calibrate(self)

    # ------------------------------------------------------------------ few-shot references

    def collect_references(self) -> None:
        """Fill the model's reference memory with the patches of ``k_shot`` normal images (MultiADS §4.2.3).

        The images come from ``few_shot_source`` when given, else from the datamodule's train split (normal
        images; a ``CrossDataset`` trains on another dataset, so give it ``few_shot_source``). Rebuilt at
        each evaluation start, since the adapted patches depend on the weights. Nothing happens when zero-shot.
        """
        if not self.k_shot:
            return
        datamodule = self._datamodule()
        images = reference_images(
            self.k_shot,
            self.few_shot_source,
            getattr(datamodule, "train_data", None),
            self.pre_processor.transform if self.pre_processor else None,
        )
        with torch.no_grad():
            patches = [self.model.encode_image(chunk.to(self.device))[1] for chunk in images.split(REFERENCE_BATCH)]
        self.model.references.store(torch.cat(patches, dim=1))
        logger.info("%s compares each image with %d normal references.", type(self).__name__, self.k_shot)

    # ------------------------------------------------------------------ steps

    def training_type_mask(self, batch: Batch) -> torch.Tensor:
        """The integer type mask ``Y`` of a training batch; object-agnostic, the binary mask (the one state)."""
        type_mask = getattr(batch, "gt_type_mask", None)
        if self.object_agnostic:
            mask = batch.gt_mask if type_mask is None else type_mask
            if mask is None:
                msg = f"{type(self).__name__} trains on anomalous images with masks ('gt_mask')."
                raise ValueError(msg)
            return (mask > 0).long()
        if type_mask is None:
            msg = (
                f"{type(self).__name__} trains on batches with 'gt_type_mask': use a typed datamodule "
                "(see anomalib_dapo.data), or object_agnostic=True to learn from binary masks."
            )
            raise ValueError(msg)
        return type_mask

    def training_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """The model's training loss on a batch of images with type masks."""
        del args, kwargs
        loss = self.training_loss(batch, self.training_type_mask(batch))
        # sync_dist: under DDP the epoch loss is the mean over all processes, not rank 0's alone.
        self.log(
            "train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch.image), sync_dist=True
        )
        return {"loss": loss}

    def _predict(self, batch: Batch) -> TypedImageBatch:
        batch = TypedImageBatch.from_batch(batch)
        batch.update(gt_type_mask=self.ground_truth_types(batch))
        if self.object_agnostic and batch.gt_type_mask is not None:
            batch.update(gt_type_mask=(batch.gt_type_mask > 0).long())  # scored against the one generic state
        return batch.update(**self.model(batch.image)._asdict())

    def validation_step(self, batch: Batch, *args, **kwargs) -> STEP_OUTPUT:
        """Predict on the target data (anomalib calibrates thresholds and normalisation on it)."""
        del args, kwargs
        return self._predict(batch)

    def test_step(self, batch: Batch, batch_idx: int, *args, **kwargs) -> STEP_OUTPUT:
        """Zero- or few-shot prediction with the type outputs."""
        del args, kwargs, batch_idx
        return self._predict(batch)

    def predict_step(self, batch: Batch, batch_idx: int, dataloader_idx: int = 0) -> STEP_OUTPUT:
        """Zero- or few-shot prediction with the type outputs."""
        del batch_idx, dataloader_idx
        return self._predict(batch)

    def val_dataloader(self) -> list:
        """No validation data of the model's own (see :func:`anomalib_dapo.compat.no_validation_data`)."""
        return compat.no_validation_data()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam over the learned parameters (prompts and adapters), the only ones with gradients."""
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
        """Zero-shot (few-shot with ``k_shot`` references) once learned weights are given, else trainable.

        Trainable is reported as ``ONE_CLASS`` (see :func:`anomalib_dapo.compat.learning_type`).
        """
        return compat.learning_type(bool(self.weights), self.k_shot)

    @classmethod
    def checkpoint_safe_globals(cls) -> Sequence[Any]:
        """The plugin's enums stored in the hyper-parameters, for ``weights_only`` loading."""
        return safe_globals()

    @property
    def trainer_arguments(self) -> dict[str, Any]:
        """No sanity validation: the vocabulary is set up with the first epoch."""
        return {"num_sanity_val_steps": 0}

    def configure_pre_processor(self, image_size: tuple[int, int] | None = None) -> PreProcessor:
        """Resize to the model's resolution and normalise with CLIP's statistics."""
        size = image_size or (self.image_size, self.image_size)
        normalize = Normalize(mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD)
        return PreProcessor(transform=Compose([clip_resize(size), normalize]))

    @staticmethod
    def configure_post_processor() -> TypedPostProcessor:
        """Anomalib's post-processing, keeping the defect-type outputs in exported graphs."""
        return TypedPostProcessor()

    @staticmethod
    def configure_evaluator() -> DapoEvaluator:
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
        return DapoEvaluator(test_metrics=image + pixel)

    def configure_callbacks(self) -> list[Callback]:
        """Anomalib's component callbacks, and the writer of the per-type table and type confusion matrix.

        First, as no callback has written yet: the run's own folder and the atomic checkpoint writer.
        """
        compat.prepare_run(self.trainer)
        return [*super().configure_callbacks(), self.type_results]  # type: ignore[misc]

    @classmethod
    def configure_visualizer(cls) -> TypeVisualizer:
        """Anomalib's pictures plus the ground-truth and predicted defect types coloured in, with a legend."""
        return TypeVisualizer()


def type_metrics(num_types: int) -> list[AnomalibMetric]:
    """Multi-type metrics for ``num_types`` defect types, computed where the data has ``gt_type_mask``.

    Pixel AUROC, AP and F1 macro over the ``K + 1`` states (paper §5.3) and image-level multi-label
    precision, recall and F1 of eq. 11 (appendix 11.6). With a single type (e.g. the generic "anomaly" state)
    the multi-label metrics are left out: torchmetrics needs two labels, and one label is the binary task.
    """
    states = num_types + 1
    pixel = [
        TypeAUROC(num_classes=states, prefix="pixel_", strict=False),
        TypeAveragePrecision(num_classes=states, prefix="pixel_", strict=False),
        TypeF1Score(num_classes=states, prefix="pixel_", strict=False),
    ]
    if num_types < 2:
        return pixel
    return [
        *pixel,
        MultiLabelPrecision(num_labels=num_types, prefix="image_", strict=False),
        MultiLabelRecall(num_labels=num_types, prefix="image_", strict=False),
        MultiLabelF1(num_labels=num_types, prefix="image_", strict=False),
    ]
