"""Defect knowledge base and dataset registry: each dataset's spec, its raw defect names, types and vocabularies.

Plain Python data and functions only, so importing it stays light (no torch, no anomalib).
"""

from anomalib_dapo.knowledge.base import (
    DuplicateDefectError,
    EmptyVocabularyError,
    KnowledgeBaseError,
    UnknownCategoryError,
    UnknownDatasetError,
    UnknownDefectError,
    categories,
    defect_type,
    name_key,
    prompt_words,
    raw_defects,
    resolve_dataset,
    spec,
    validate_defect_list,
    visa_mask_id_types,
    vocabulary,
)
from anomalib_dapo.knowledge.datasets import DATASETS, REGISTRY, DatasetSpec, DiskLayout

__all__ = [
    "DATASETS",
    "REGISTRY",
    "DatasetSpec",
    "DiskLayout",
    "DuplicateDefectError",
    "EmptyVocabularyError",
    "KnowledgeBaseError",
    "UnknownCategoryError",
    "UnknownDatasetError",
    "UnknownDefectError",
    "categories",
    "defect_type",
    "name_key",
    "prompt_words",
    "raw_defects",
    "resolve_dataset",
    "spec",
    "validate_defect_list",
    "visa_mask_id_types",
    "vocabulary",
]
