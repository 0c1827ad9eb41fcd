"""Deploying Dapo and MultiAds: inferencers that return the defect-type outputs of their exports.

The export itself (fixed vocabulary, no text side, metadata) is :mod:`anomalib_dapo.models.components.export`;
what both sides agree on is :mod:`anomalib_dapo.exported`. Nothing here imports the models.
"""

from anomalib_dapo.deploy.inferencer import (
    DapoOpenVINOInferencer,
    DapoTorchInferencer,
    NotADapoExportError,
    VocabularyMismatchError,
    check_vocabulary,
    engine_images,
    read_metadata,
)

__all__ = [
    "DapoOpenVINOInferencer",
    "DapoTorchInferencer",
    "NotADapoExportError",
    "VocabularyMismatchError",
    "check_vocabulary",
    "engine_images",
    "read_metadata",
]
