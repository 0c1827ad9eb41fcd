"""MultiADS' hand-crafted defect-aware prompt ensembles (MultiADS §4, "Defect-aware Text Prompts"; our wording).

Each state is described by every template filled with every phrase of the state: one normal state, and one
state per defect type whose phrases name the object and the defect. The text features of a state's prompts
are averaged into its embedding (§4.1.1).
"""

from collections.abc import Sequence

TEMPLATES = (
    "a photo of a {}.",
    "a close-up photo of the {}.",
    "an industrial inspection photo of a {}.",
    "a cropped photo of the {}.",
    "a bright photo of a {}.",
    "a dark photo of the {}.",
    "a blurry photo of a {}.",
)
"""Sentence frames shared by every state."""
NORMAL_PHRASES = (
    "flawless {object}",
    "perfect {object}",
    "unblemished {object}",
    "intact {object}",
    "{object} without defect",
)
"""The normal state: the object and nothing wrong with it."""
DEFECT_PHRASES = (
    "{object} with {defect}",
    "{object} showing {defect}",
    "{defect} on the {object}",
    "damaged {object} with {defect}",
    "defective {object} with {defect}",
)
"""A defect state: the object and the words of one defect type."""
GENERIC_PHRASES = (
    "damaged {object}",
    "defective {object}",
    "flawed {object}",
    "{object} with a defect",
    "{object} with an anomaly",
)
"""The generic abnormal state (no defect words): an object with something wrong with it."""
OBJECT_WORD = "object"
"""The object named when the product is unknown (and in training, whose batches mix products)."""


def state_prompts(defect_words: Sequence[str], object_name: str = OBJECT_WORD) -> list[list[str]]:
    """Prompt ensembles of the ``K + 1`` states: state 0 normal, state ``k`` the ``k``-th defect type.

    Args:
        defect_words: Words naming each defect type (``""``: the generic abnormal state).
        object_name: The product, e.g. ``"metal nut"`` (underscores read as spaces).

    Returns:
        ``K + 1`` lists of ``len(TEMPLATES) × 5`` prompt texts.

    """
    name = object_name.replace("_", " ")

    def ensemble(phrases: Sequence[str], words: str = "") -> list[str]:
        return [template.format(p.format(object=name, defect=words)) for template in TEMPLATES for p in phrases]

    return [ensemble(NORMAL_PHRASES)] + [
        ensemble(DEFECT_PHRASES, words) if words else ensemble(GENERIC_PHRASES) for words in defect_words
    ]
