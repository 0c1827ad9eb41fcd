"""Datasets and datamodules whose batches carry per-pixel defect types (``gt_type_mask``)."""

from anomalib_dapo.data.cross import CrossDataset
from anomalib_dapo.data.dataclasses import TypedImageBatch, TypedImageItem, TypedInferenceBatch
from anomalib_dapo.data.datamodule_base import TypedDataModule
from anomalib_dapo.data.errors import DatasetLayoutError, DatasetNotFoundError, DatasetPathError
from anomalib_dapo.data.folder import DefectFolder, DefectFolderDataset
from anomalib_dapo.data.mad import MADReal, MADRealDataset, MADSim, MADSimDataset
from anomalib_dapo.data.mpdd import TypedMPDD, TypedMPDDDataset
from anomalib_dapo.data.mvtecad import TypedMVTecAD, TypedMVTecADDataset
from anomalib_dapo.data.realiad import TypedRealIAD, TypedRealIADDataset
from anomalib_dapo.data.registry import typed_dataset
from anomalib_dapo.data.synthetic import SyntheticDefects, generate_synthetic_dataset
from anomalib_dapo.data.visa import TypedVisa, TypedVisaDataset

__all__ = [
    "CrossDataset",
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "DatasetPathError",
    "DefectFolder",
    "DefectFolderDataset",
    "MADReal",
    "MADRealDataset",
    "MADSim",
    "MADSimDataset",
    "SyntheticDefects",
    "TypedDataModule",
    "TypedImageBatch",
    "TypedImageItem",
    "TypedInferenceBatch",
    "TypedMPDD",
    "TypedMPDDDataset",
    "TypedMVTecAD",
    "TypedMVTecADDataset",
    "TypedRealIAD",
    "TypedRealIADDataset",
    "TypedVisa",
    "TypedVisaDataset",
    "generate_synthetic_dataset",
    "typed_dataset",
]
