"""MultiADS' hand-crafted defect-aware prompt ensembles (MultiADS §4 and appendix 7.1; the wording is ours).

A state is described by every one of the 35 sentence templates filled with every phrase of the state: the normal
state's ten phrases, or the six phrases of one defect type (synonyms and variants, from
:mod:`anomalib_dapo.knowledge.phrases`), each naming the product class. The text features of a state's prompts
are averaged into its embedding (§4.1.1).
"""

from collections.abc import Sequence

from anomalib_dapo.knowledge.phrases import GENERIC_PHRASES, NORMAL_PHRASES, defect_phrases
from anomalib_dapo.models.components.vocabulary import GENERIC_STATE

TEMPLATES = (
    "a bad photo of a {}.",
    "a low resolution photo of the {}.",
    "a poor photo of the {}.",
    "a cropped photo of the {}.",
    "a bright photo of a {}.",
    "a dark photo of the {}.",
    "a photo of my {}.",
    "a photo of the nice {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a jpeg compressed photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a sharp photo of the {}.",
    "a photo of one {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "a low resolution photo of a {}.",
    "a photo of a big {}.",
    "a blurry photo of a {}.",
    "a jpeg compressed photo of the {}.",
    "a sharp photo of a {}.",
    "a photo of the little {}.",
    "a photo of the big {}.",
    "a black and white photo of a {}.",
    "a dark photo of a {}.",
    "a photo of a nice {}.",
    "a photo of a little {}.",
    "this is a {} in the picture.",
    "this is the {} in the picture.",
    "this is one {} in the picture.",
    "there is the {} in the picture.",
    "there is a {} in the picture.",
)
"""The 35 sentence frames shared by every state and dataset (appendix 7.1)."""
OBJECT_WORD = "object"
"""The product named when none is known, and by the object-agnostic mode."""


def ensemble(phrases: Sequence[str], class_name: str) -> list[str]:
    """Every template filled with every phrase, the phrases naming ``class_name`` (underscores read as spaces)."""
    name = class_name.replace("_", " ")
    return [template.format(phrase.format(cls=name)) for template in TEMPLATES for phrase in phrases]


def state_prompts(
    defect_types: Sequence[str], defect_words: Sequence[str], class_name: str = OBJECT_WORD
) -> list[list[str]]:
    """Prompt ensembles of the ``K + 1`` states on a product: state 0 normal, state ``k`` the ``k``-th defect type.

    Args:
        defect_types: The defect types (``"anomaly"``: the generic abnormal state).
        defect_words: Words naming each type, for types the knowledge base has no phrases for.
        class_name: The product, e.g. ``"metal_nut"``.

    Returns:
        ``K + 1`` lists: ``35 × 10`` normal prompts, then ``35 × 6`` per defect type.

    """
    abnormal = [
        GENERIC_PHRASES if name == GENERIC_STATE else defect_phrases(name, words)
        for name, words in zip(defect_types, defect_words, strict=True)
    ]
    return [ensemble(NORMAL_PHRASES, class_name)] + [ensemble(phrases, class_name) for phrases in abnormal]
