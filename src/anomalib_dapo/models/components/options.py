"""Option types of the plugin's models."""

from enum import Enum


class OptionEnum(str, Enum):
    """A string option that also accepts its member's name.

    jsonargparse writes enum options by name (``image_score: FUSION``) in the ``config.yaml`` that ``anomalib
    train`` saves, while ``anomalib.models.get_model`` passes that config's values to the model as they are.
    """

    @classmethod
    def _missing_(cls, value: object) -> "OptionEnum | None":
        return cls.__members__.get(value) if isinstance(value, str) else None
