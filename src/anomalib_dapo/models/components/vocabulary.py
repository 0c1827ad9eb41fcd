"""How the ground-truth defect types of the data are matched to the defect types a model scores: by name.

The data's type masks index the data's own vocabulary (type ``k`` is ``data_types[k - 1]``); the model scores its
vocabulary (the user's ``defect_types``, or every type of the dataset without product filtering), in any order
and possibly with extra names. :func:`type_id_map` gives the lookup table from one to the other.
anomalib's own ``MVTecAD`` and ``MPDD`` keep each image's defect folder in ``samples.label``:
:func:`folder_types` reads the images' types from there, so their type masks can be derived.
"""

from collections.abc import Iterable, Sequence

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
