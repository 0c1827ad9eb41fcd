"""What every CLIP-prompt model of the plugin shares; no module here imports a model package.

``adapters`` (stage adapters), ``similarity`` (stage maps, upsampling), ``predictions`` (typed outputs, image
score), ``layers`` (layer defaults and checks), ``losses`` (focal, dice), ``precision`` (float32 heads),
``checkpoint`` (learned weights), ``post_processor``, ``export``, ``few_shot`` (references), ``runs``,
``vocabulary`` (the vocabulary of a stage, matching data types to it) and ``typed_module`` (the anomalib-model
mixin).
"""

from anomalib_dapo.models.components.few_shot import ReferenceMemory, reference_images
from anomalib_dapo.models.components.typed_module import TypedPromptModule, type_metrics
from anomalib_dapo.models.components.vocabulary import GENERIC_STATE, StageVocabulary

__all__ = [
    "GENERIC_STATE",
    "ReferenceMemory",
    "StageVocabulary",
    "TypedPromptModule",
    "reference_images",
    "type_metrics",
]
