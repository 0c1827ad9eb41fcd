import pytest

from anomalib_dapo import knowledge
from anomalib_dapo.data.errors import DatasetLayoutError, DatasetNotFoundError
from anomalib_dapo.data.registry import source


def test_every_knowledge_base_dataset_has_a_source():
    assert all(source(dataset).layout.strip() for dataset in knowledge.DATASETS)


def test_not_found_names_path_layout_and_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        source("mvtec_ad").require(tmp_path / "bottle", "category 'bottle'")
    assert isinstance(error.value, FileNotFoundError)
    message = str(error.value)
    assert f"MVTec-AD category 'bottle' not found: {tmp_path / 'bottle'}" in message
    assert "<root>/<category>/ground_truth/<defect>/<NNN>_mask.png" in message
    assert "mvtec.com" in message


def test_knowledge_errors_while_reading_become_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="unknown_defect") as error, source("mpdd").reading(tmp_path):
        knowledge.defect_type("mpdd", "unknown_defect")
    assert isinstance(error.value, ValueError)
    assert str(tmp_path) in str(error.value)
