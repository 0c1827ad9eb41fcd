"""The dataset registry is the one source of what each dataset is; a new spec is all a new dataset needs."""

import dataclasses
import importlib
from collections.abc import Mapping
from types import ModuleType

import pytest
from anomalib.data.datasets.image.realiad import RESOLUTIONS

from anomalib_dapo import knowledge
from anomalib_dapo.data import cross, errors, folder, mad, mpdd, mvtecad, realiad, synthetic, visa
from anomalib_dapo.data.mvtecad import TypedMVTecAD, TypedMVTecADDataset
from anomalib_dapo.data.registry import category_dir, datamodule_class, dataset_class, source, typed_dataset
from anomalib_dapo.knowledge import REGISTRY

# The report package's functions hide its modules of the same names.
paper_report = importlib.import_module("anomalib_dapo.report.paper_report")
published = importlib.import_module("anomalib_dapo.report.published")
NAMED_ELSEWHERE = (errors, cross, folder, mad, mpdd, mvtecad, realiad, synthetic, visa, paper_report)


def _tables_keyed_by_dataset(module: ModuleType) -> list[str]:
    """Module globals that are mappings keyed by dataset names: each would be a second registry."""
    return [
        name
        for name, value in vars(module).items()
        if isinstance(value, Mapping) and set(value) & set(REGISTRY) and value is not REGISTRY
    ]


@pytest.mark.parametrize("module", NAMED_ELSEWHERE, ids=lambda module: module.__name__)
def test_no_module_keeps_its_own_table_of_datasets(module):
    assert _tables_keyed_by_dataset(module) == []


def test_each_spec_names_its_own_classes_and_layout():
    assert tuple(REGISTRY) == knowledge.DATASETS
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert datamodule_class(name).spec is spec
        assert dataset_class(name).spec is spec
        assert source(name).name == spec.disk.name
    assert set(published.PUBLISHED) <= set(REGISTRY)  # the paper's numbers name registered datasets only


def test_real_iad_resolution_folders_are_anomalibs(tmp_path):
    spec = REGISTRY["real_iad"]
    assert spec.resolutions == RESOLUTIONS
    assert category_dir("real_iad", tmp_path, "pcb", 512) == tmp_path / "realiad_512" / "pcb"
    assert category_dir("Real-IAD", tmp_path, "pcb") == tmp_path / "realiad_1024" / "pcb"
    assert category_dir("mpdd", tmp_path, "tubes", 512) == tmp_path / "tubes"
    with pytest.raises(ValueError, match=r"Real-IAD resolution 300 does not exist; use one of"):
        category_dir("real_iad", tmp_path, "pcb", 300)


TOY = dataclasses.replace(
    REGISTRY["synthetic"],
    name="toy",
    display_name="Toy",
    aliases=("toys",),
    disk=dataclasses.replace(REGISTRY["synthetic"].disk, name="Toy set", default_dir="Toy"),
    datamodule=f"{__name__}.ToyDataModule",
    dataset=f"{__name__}.ToyDataset",
)


class ToyDataset(TypedMVTecADDataset):
    """A dataset laid out like MVTec-AD, known only to this test."""

    spec = TOY


class ToyDataModule(TypedMVTecAD):
    """Its datamodule: nothing but the spec."""

    spec = TOY


def test_a_new_spec_is_all_a_new_dataset_needs(tmp_path, monkeypatch):
    synthetic.generate_synthetic_dataset(tmp_path, categories=("disc",), image_size=32, n_train=1, n_test_good=1)
    monkeypatch.setattr(knowledge.datasets, "REGISTRY", {**REGISTRY, "toy": TOY})
    assert knowledge.resolve_dataset("Toys") == "toy"
    assert knowledge.vocabulary("toy", "disc") == knowledge.vocabulary("synthetic", "disc")
    dataset = typed_dataset("toy", tmp_path, "disc", "test")
    assert isinstance(dataset, ToyDataset)
    assert set(dataset.samples.defect_type) - {""} == set(dataset.defect_types)
    datamodule = ToyDataModule(root=tmp_path, category="disc")
    assert datamodule.defect_types == knowledge.vocabulary("toy", "disc")
    crossing = cross.CrossDataset("toy", tmp_path, "toy", tmp_path, "disc")
    assert crossing.train_categories() == ["disc"]
    assert crossing.train_defect_types == knowledge.vocabulary("toy")
    with pytest.raises(errors.DatasetNotFoundError, match=r"Toy set category 'grid' not found"):
        typed_dataset("toy", tmp_path, "grid", "test")
