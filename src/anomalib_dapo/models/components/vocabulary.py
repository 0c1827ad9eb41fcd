"""The defect vocabulary of a stage, and how the data's ground-truth defect types are matched to it: by name.

A model resolves its vocabulary once per stage (:class:`StageVocabulary`: the defect types it scores and the
products its prompts name) and passes that value to its torch model, type metrics, visualizer, type-results
writer and export.

The data's type masks index the data's own vocabulary (type ``k`` is ``data_types[k - 1]``); the model scores its
vocabulary (the user's ``defect_types``, or every type of the dataset without product filtering), in any order
and possibly with extra names. :func:`type_id_map` gives the lookup table from one to the other.
anomalib's own ``MVTecAD`` and ``MPDD`` keep each image's defect folder in ``samples.label``:
:func:`folder_types` reads the images' types from there, so their type masks can be derived.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from anomalib.data import MPDD, AnomalibDataModule, MVTecAD
from anomalib.data.utils import LabelName

from anomalib_dapo import knowledge

FOLDER_TYPED = {MVTecAD: "mvtec_ad", MPDD: "mpdd"}
"""anomalib datamodules whose ``samples.label`` is the defect folder of each image, and their knowledge-base key."""
TYPED_DATAMODULES = (
    "anomalib_dapo.data.DefectFolder (your folders, one per defect type), TypedMVTecAD, TypedMPDD, TypedVisa, "
    "TypedRealIAD, MADSim, MADReal or CrossDataset"
)
"""The datamodules that give per-pixel defect types, for messages."""


GENERIC_STATE = "anomaly"
"""The vocabulary when no defect type is known: one abnormal state with no defect words."""


@dataclass(frozen=True)
class StageVocabulary:
    """What a model scores in one stage: state ``k`` is ``defect_types[k - 1]`` (0 is normal).

    Args:
        defect_types: The defect types scored, in their order.
        products: The products the prompts name (MultiAds names one per product; Dapo's prompts name none).
            Defaults to ``()``.

    """

    defect_types: tuple[str, ...]
    products: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Hold tuples, so that the value is hashable and compares by content."""
        object.__setattr__(self, "defect_types", tuple(self.defect_types))
        object.__setattr__(self, "products", tuple(self.products))

    @classmethod
    def generic(cls, products: Sequence[str] = ()) -> "StageVocabulary":
        """The single generic "anomaly" state, scored when no defect type is known."""
        return cls((GENERIC_STATE,), tuple(products))

    @property
    def defect_words(self) -> list[str]:
        """Prompt words of each defect type; the generic state has none."""
        return ["" if name == GENERIC_STATE else knowledge.prompt_words(name) for name in self.defect_types]

    def describe(self, model: str) -> str:
        """The log line naming what ``model`` scores, e.g. "Dapo scores 2 defect types: scratch, dent"."""
        products = f" of {', '.join(self.products)}" if self.products else ""
        return f"{model} scores {len(self.defect_types)} defect types{products}: {', '.join(self.defect_types)}"


class MissingDefectTypesError(ValueError):
    """The model's defect vocabulary lacks defect types the data holds, so those pixels could not be scored."""


def _key(name: str) -> str:
    """Names compare case-insensitively, and ``faulty_imprint`` is ``faulty imprint`` (as in the prompts)."""
    return name.strip().lower().replace("_", " ")


def type_id_map(data_types: Sequence[str], vocabulary: Sequence[str]) -> torch.Tensor:
    """Lookup table from the data's type ids to the model's: ``table[k]`` is the id of ``data_types[k - 1]``.

    Id 0 (normal) stays 0. Names of ``vocabulary`` that the data does not hold are allowed (they are scored,
    never ground truth).

    Raises:
        MissingDefectTypesError: Some of the data's types are not in ``vocabulary``.

    """
    index = {_key(name): position + 1 for position, name in enumerate(vocabulary)}
    if missing := [name for name in data_types if _key(name) not in index]:
        msg = (
            f"The defect types {list(vocabulary)} lack {missing}, which the data holds (its vocabulary: "
            f"{list(data_types)}). Add the missing names to --model.defect_types (the order does not matter and "
            "extra names are allowed), or leave it out to score the data's own types."
        )
        raise MissingDefectTypesError(msg)
    return torch.tensor([0, *(index[_key(name)] for name in data_types)])


def folder_dataset(datamodule: AnomalibDataModule | None) -> str | None:
    """Knowledge-base key of an anomalib datamodule that keeps each image's defect folder, else ``None``."""
    return next((key for cls, key in FOLDER_TYPED.items() if type(datamodule) is cls), None)


def folder_types(dataset: str, splits: Iterable[object]) -> dict[str, str] | None:
    """Defect type of each anomalous image of anomalib datasets, from its ``test/<defect>/`` folder name.

    Returns ``None`` when a folder name is not a defect of ``dataset`` in the knowledge base (the types are then
    unknown).
    """
    types = {}
    for split in splits:
        samples = getattr(split, "samples", None)
        if samples is None:
            continue
        anomalous = samples[samples.label_index == LabelName.ABNORMAL]
        for path, folder in zip(anomalous.image_path, anomalous.label, strict=True):
            try:
                types[str(path)] = knowledge.defect_type(dataset, folder)
            except knowledge.KnowledgeBaseError:
                return None
    return types
