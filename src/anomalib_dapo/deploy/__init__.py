"""Deploying Dapo: exports with a fixed vocabulary and the inferencers that return the defect-type outputs."""

from anomalib_dapo.deploy.export import (
    METADATA_KEY,
    TextSideRemovedError,
    dapo_metadata,
    text_side_removed,
    write_onnx_metadata,
)
from anomalib_dapo.deploy.inferencer import (
    DapoOpenVINOInferencer,
    DapoTorchInferencer,
    NotADapoExportError,
    VocabularyMismatchError,
    check_vocabulary,
    read_metadata,
)

__all__ = [
    "METADATA_KEY",
    "DapoOpenVINOInferencer",
    "DapoTorchInferencer",
    "NotADapoExportError",
    "TextSideRemovedError",
    "VocabularyMismatchError",
    "check_vocabulary",
    "dapo_metadata",
    "read_metadata",
    "text_side_removed",
    "write_onnx_metadata",
]
