"""What every CLIP-prompt model of the plugin shares; no module here imports a model package.

``adapters`` (stage adapters), ``similarity`` (stage maps, upsampling), ``predictions`` (typed outputs, image
score), ``layers`` (layer defaults and checks), ``losses`` (focal, dice), ``precision`` (float32 heads),
``checkpoint`` (learned weights), ``post_processor``, ``export``, ``few_shot`` (references), ``calibration``,
``runs``, ``vocabulary`` and ``typed_module`` (the anomalib-model mixin).
"""

from anomalib_dapo.models.components.few_shot import ReferenceMemory, reference_images
from anomalib_dapo.models.components.typed_module import GENERIC_STATE, TypedPromptModule, type_metrics

__all__ = ["GENERIC_STATE", "ReferenceMemory", "TypedPromptModule", "reference_images", "type_metrics"]
