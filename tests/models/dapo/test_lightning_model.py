import subprocess
import sys

import pytest
import torch
from lightning.pytorch import Trainer

from anomalib_dapo import Dapo
from anomalib_dapo.backbone import BackboneError
from anomalib_dapo.knowledge import DuplicateDefectError, EmptyVocabularyError
from anomalib_dapo.models.components.checkpoint import CheckpointMismatchError


def _save(model: Dapo, path) -> None:
    trainer = Trainer(logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)


def test_checkpoint_holds_learned_weights_not_the_frozen_clip(tmp_path, tiny_kwargs):
    model = Dapo(**tiny_kwargs)
    path = tmp_path / "learned.ckpt"
    _save(model, path)
    backbone_bytes = sum(t.numel() * t.element_size() for t in model.model.clip.state_dict().values())
    assert path.stat().st_size < backbone_bytes / 5
    checkpoint = torch.load(path, weights_only=False)
    assert not any(key.startswith("model.clip.") for key in checkpoint["state_dict"])
    assert checkpoint["dapo"]["backbone"] == "dapo-tiny"
    # and it loads back into a fresh model, learned values included
    with torch.no_grad():
        model.model.prompts.abnormal_context.add_(1.0)
    _save(model, path)
    restored = Dapo(weights=str(path), **tiny_kwargs)
    assert torch.equal(restored.model.prompts.abnormal_context, model.model.prompts.abnormal_context)
    assert torch.equal(restored.model.adapters.weight, model.model.adapters.weight)


def test_checkpoint_from_another_layout_is_refused(tmp_path, tiny_kwargs):
    path = tmp_path / "learned.ckpt"
    _save(Dapo(**tiny_kwargs), path)
    with pytest.raises(CheckpointMismatchError, match="adapter_layers"):
        Dapo(weights=str(path), **{**tiny_kwargs, "adapter_layers": [1, 2, 4]})
    with pytest.raises(CheckpointMismatchError, match="prompt_length"):
        Dapo(weights=str(path), **{**tiny_kwargs, "prompt_length": 3})


def test_checkpoint_from_another_backbone_is_refused(tmp_path, tiny_kwargs):
    path = tmp_path / "learned.ckpt"
    _save(Dapo(**tiny_kwargs), path)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["dapo"]["backbone"] = "ViT-L-14-336"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointMismatchError, match=r"--model\.backbone ViT-L-14-336"):
        Dapo(weights=str(path), **tiny_kwargs)


def test_missing_weights_file_says_what_to_pass(tmp_path, tiny_kwargs):
    with pytest.raises(FileNotFoundError, match="anomalib train --model Dapo"):
        Dapo(weights=str(tmp_path / "nope.ckpt"), **tiny_kwargs)


def test_wrong_backbone_name(tiny_kwargs):
    with pytest.raises(BackboneError, match="Unknown backbone 'ViT-Q-99'"):
        Dapo(**{**tiny_kwargs, "backbone": "ViT-Q-99"})


def test_tiny_backbone_refuses_a_pretrained_tag(tiny_kwargs):
    with pytest.raises(BackboneError, match=r"--model\.pretrained synthetic .*, null \(random weights\)"):
        Dapo(**{**tiny_kwargs, "pretrained": "openai"})


def test_missing_local_backbone_file(tmp_path):
    with pytest.raises(BackboneError, match="weights file not found"):
        Dapo(backbone="ViT-B-32", pretrained=str(tmp_path / "ViT-B-32.pt"), image_size=224)


def test_weights_that_cannot_be_fetched_name_the_local_file_option(monkeypatch):
    import open_clip

    def offline(*args, **kwargs):
        raise RuntimeError("Failed to download weights for tag 'openai'")

    monkeypatch.setattr(open_clip, "create_model", offline)
    with pytest.raises(BackboneError, match=r"--model\.pretrained /path/to/file"):
        Dapo(backbone="ViT-L-14-336", pretrained="openai")


@pytest.mark.parametrize(("types", "error"), [([], EmptyVocabularyError), (["dent", "Dent"], DuplicateDefectError)])
def test_bad_defect_lists(types, error, tiny_kwargs):
    with pytest.raises(error):
        Dapo(defect_types=types, **tiny_kwargs)


def test_vocabulary_resolution_without_a_datamodule(tiny_kwargs):
    assert Dapo(**tiny_kwargs).resolve_vocabulary("predict") == ("anomaly",)
    assert Dapo(defect_types=["Scratch", " dent "], **tiny_kwargs).resolve_vocabulary("test") == ("scratch", "dent")


@pytest.mark.parametrize("call", ["model(images)", "model.model(images)"])
def test_a_vocabulary_given_at_construction_scores_without_a_trainer(call, tiny_kwargs, tiny_checkpoint):
    model = Dapo(weights=str(tiny_checkpoint), defect_types=["scratch", "dent"], **tiny_kwargs).eval()
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        outputs = model(images) if call == "model(images)" else model.model(images)
    assert outputs.pred_score.shape == (2,)
    assert outputs.anomaly_map.shape == (2, 1, 64, 64)
    assert outputs.pred_type_map.shape == (2, 3, 64, 64)  # normal, scratch, dent
    assert outputs.pred_type_mask.shape == (2, 64, 64)
    assert outputs.pred_type_probs.shape == (2, 2)
    assert model.model.vocabulary == model.vocabulary.defect_types == ("scratch", "dent")


def test_the_readmes_path_from_one_image_file_to_score_map_and_type_names(tmp_path, tiny_kwargs, tiny_checkpoint):
    """README, "From one image to score, map and defect types" (in Python), with the tiny backbone."""
    from anomalib.data.utils import read_image
    from PIL import Image

    Image.new("RGB", (96, 80), (120, 90, 60)).save(tmp_path / "part.png")
    model = Dapo(weights=str(tiny_checkpoint), defect_types=["scratch", "dent", "rust"], **tiny_kwargs).eval()
    image = read_image(tmp_path / "part.png", as_tensor=True)
    with torch.no_grad():
        result = model(image.unsqueeze(0))
    names = ("normal", *model.vocabulary.defect_types)
    assert 0 <= result.pred_score.item() <= 1
    assert result.pred_label.dtype == torch.bool
    assert result.anomaly_map[0, 0].shape == (64, 64)  # the model's resolution
    types = result.pred_type_mask[0]
    pixels = {names[k]: (types == k).sum().item() for k in types.unique().tolist()}
    assert set(pixels) <= {"normal", "scratch", "dent", "rust"}
    assert sum(pixels.values()) == 64 * 64


def test_without_a_vocabulary_the_generic_state_is_scored_without_a_trainer(tiny_kwargs):
    model = Dapo(**tiny_kwargs).eval()
    with torch.no_grad():
        outputs = model.model(torch.rand(1, 3, 64, 64))
    assert outputs.pred_type_map.shape[1] == 2  # normal, anomaly
    assert model.model.vocabulary == ("anomaly",)


def test_learning_type_follows_the_weights(tmp_path, tiny_kwargs):
    from anomalib import LearningType

    path = tmp_path / "learned.ckpt"
    model = Dapo(**tiny_kwargs)
    assert model.learning_type == LearningType.ONE_CLASS  # anomalib trains only this type
    _save(model, path)
    assert Dapo(weights=str(path), **tiny_kwargs).learning_type == LearningType.ZERO_SHOT


def test_plain_python_start_up_does_not_import_torch():
    code = "import sys; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_a_file_that_is_no_checkpoint_is_refused_clearly(tmp_path, tiny_kwargs):
    garbage = tmp_path / "model.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointMismatchError, match="not a readable Dapo checkpoint"):
        Dapo(weights=str(garbage), **tiny_kwargs)
