"""Pieces the plugin's models share: the anomalib-model mixin and the few-shot reference memory."""

from anomalib_dapo.models.components.few_shot import ReferenceMemory, reference_images
from anomalib_dapo.models.components.typed_module import GENERIC_STATE, TypedPromptModule, type_metrics

__all__ = ["GENERIC_STATE", "ReferenceMemory", "TypedPromptModule", "reference_images", "type_metrics"]
