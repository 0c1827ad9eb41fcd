"""Deploying Dapo and MultiAds: inferencers that return the defect-type outputs of their exports.

The export itself (fixed vocabulary, no text side, metadata) is :mod:`anomalib_dapo.models.components.export`.
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
from anomalib_dapo.models.components.export import (
    METADATA_KEY,
    TextSideRemovedError,
    UntrainedExportError,
    text_side_removed,
    write_onnx_metadata,
)

__all__ = [
    "METADATA_KEY",
    "DapoOpenVINOInferencer",
    "DapoTorchInferencer",
    "NotADapoExportError",
    "TextSideRemovedError",
    "UntrainedExportError",
    "VocabularyMismatchError",
    "check_vocabulary",
    "engine_images",
    "read_metadata",
    "text_side_removed",
    "write_onnx_metadata",
]
