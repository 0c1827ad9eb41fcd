"""The learned-weights codec both models share: its messages name the model actually involved.

(A checkpoint of one model given to the other: tests/reliability/test_inputs.py.)
"""

import pytest

from anomalib_dapo import Dapo, MultiAds
from anomalib_dapo.models.components.checkpoint import CheckpointMismatchError, safe_globals
from anomalib_dapo.models.components.options import OptionEnum
from anomalib_dapo.models.dapo.prompts import TokenInit
from anomalib_dapo.models.dapo.torch_model import Aggregation


def kwargs(cls: type, tiny_kwargs) -> dict:
    drop = set() if cls is Dapo else {"text_depth", "num_prompts"}
    return {key: value for key, value in tiny_kwargs.items() if key not in drop}


@pytest.mark.parametrize("cls", [Dapo, MultiAds])
def test_a_missing_weights_file_names_the_model(cls, tmp_path, tiny_kwargs):
    with pytest.raises(FileNotFoundError, match=rf"^{cls.__name__} weights not found.*--model {cls.__name__}'"):
        cls(weights=str(tmp_path / "missing.ckpt"), **kwargs(cls, tiny_kwargs))


@pytest.mark.parametrize("cls", [Dapo, MultiAds])
def test_an_unreadable_file_names_the_model(cls, tmp_path, tiny_kwargs):
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  class_path: Dapo\n")
    with pytest.raises(
        CheckpointMismatchError, match=rf"not a readable {cls.__name__} checkpoint.*--model {cls.__name__}"
    ):
        cls(weights=str(path), **kwargs(cls, tiny_kwargs))


def test_safe_globals_are_every_option_type_of_the_plugin():
    options = safe_globals()
    assert {TokenInit, Aggregation} <= set(options)
    assert all(issubclass(option, OptionEnum) for option in options)
