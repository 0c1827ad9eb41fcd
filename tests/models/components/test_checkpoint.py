"""The learned-weights codec both models share: its messages name the model actually involved.

(A checkpoint of one model given to the other: tests/reliability/test_inputs.py.)
"""

import pytest
import torch

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
    # an entry is an option type, or an option type with the name under which 0.1 pickled it
    options = [entry if isinstance(entry, type) else entry[0] for entry in safe_globals()]
    assert {TokenInit, Aggregation} <= set(options)
    assert all(issubclass(option, OptionEnum) for option in options)


@pytest.mark.parametrize("option", ["ImageScore", "AdapterInit"])
def test_a_checkpoint_of_0_1_naming_a_moved_option_type_still_loads(option, tmp_path, tiny_kwargs, monkeypatch):
    """0.1 pickled ImageScore and AdapterInit under ``models.dapo.torch_model``; they live in components now."""
    from lightning.pytorch import Trainer

    from anomalib_dapo.models.components import adapters, predictions
    from anomalib_dapo.models.dapo import torch_model

    kind = {"ImageScore": predictions.ImageScore, "AdapterInit": adapters.AdapterInit}[option]
    first = next(iter(kind))
    model = Dapo(**tiny_kwargs, **{"image_score" if option == "ImageScore" else "adapter_init": first})
    assert isinstance(model.hparams["image_score" if option == "ImageScore" else "adapter_init"], kind)
    with monkeypatch.context() as old_home:  # write the checkpoint as 0.1 did
        old_home.setattr(kind, "__module__", torch_model.__name__)
        old_home.setattr(torch_model, option, kind, raising=False)
        path = tmp_path / "v0_1.ckpt"
        trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
        trainer.strategy.connect(model)
        trainer.save_checkpoint(path)
    assert f"anomalib_dapo.models.dapo.torch_model.{option}" in torch.serialization.get_unsafe_globals_in_checkpoint(
        path
    )
    loaded = Dapo(**tiny_kwargs, weights=str(path))
    assert loaded.has_learned_weights
