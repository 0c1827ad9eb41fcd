"""Defect knowledge base: raw on-disk defect names, their defect types, and each product's vocabulary.

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
    prompt_words,
    raw_defects,
    resolve_dataset,
    validate_defect_list,
    visa_mask_id_types,
    vocabulary,
)
from anomalib_dapo.knowledge.datasets import DATASETS

__all__ = [
    "DATASETS",
    "DuplicateDefectError",
    "EmptyVocabularyError",
    "KnowledgeBaseError",
    "UnknownCategoryError",
    "UnknownDatasetError",
    "UnknownDefectError",
    "categories",
    "defect_type",
    "prompt_words",
    "raw_defects",
    "resolve_dataset",
    "validate_defect_list",
    "visa_mask_id_types",
    "vocabulary",
]
