"""Offline CLIP weights: open_clip state-dict files and OpenAI's TorchScript format, on tiny random models."""

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from anomalib_dapo import Dapo
from anomalib_dapo.backbone import BackboneError
from anomalib_dapo.backbone.clip import _register_tiny_config
from tiny import tiny_config

TINY = tiny_config(drop=["pretrained", "image_size"])  # each test names its CLIP weights and size


def tiny_clip(image_size: int) -> torch.nn.Module:
    _register_tiny_config()
    return open_clip.create_model("dapo-tiny", force_image_size=image_size, force_quick_gelu=True)


@pytest.mark.parametrize("suffix", [".pt", ".bin", ".safetensors"])
def test_open_clip_state_dict_files_load(suffix, tmp_path):
    saved = tiny_clip(64).state_dict()
    path = tmp_path / f"open_clip_model{suffix}"
    if suffix == ".safetensors":
        save_file({key: value.contiguous() for key, value in saved.items()}, path)
    else:
        torch.save(saved, path)
    loaded = Dapo(pretrained=str(path), image_size=64, **TINY).model.clip.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)


def test_openai_torchscript_file_loads_and_is_resized(tmp_path):
    """OpenAI's format: a TorchScript archive whose state dict has three extra scalars and no attention mask."""
    model = tiny_clip(224)
    mask = model._buffers.pop("attn_mask")
    model.attn_mask = mask  # OpenAI's CLIP keeps the mask as a plain attribute, outside the state dict
    for name in ("input_resolution", "context_length", "vocab_size"):
        if hasattr(model, name):
            delattr(model, name)
        model.register_buffer(name, torch.tensor(1))
    path = tmp_path / "ViT-tiny.pt"
    torch.jit.save(torch.jit.script(model), path)
    saved = model.state_dict()
    loaded = Dapo(pretrained=str(path), image_size=64, **TINY).model.clip.state_dict()
    for key, value in loaded.items():
        if key == "visual.positional_embedding":  # 28 x 28 patches resized to the 8 x 8 grid of 64 px
            assert value.shape == (1 + 8 * 8, 64)
            assert torch.equal(value[0], saved[key][0])  # the class token's embedding is kept as is
        else:
            assert torch.equal(value, saved[key]), key


def test_tiny_backbone_takes_files_not_tags(tmp_path):
    with pytest.raises(
        BackboneError, match=r"pass --model\.pretrained synthetic .*, null \(random weights\) or a local file"
    ):
        Dapo(pretrained="openai", image_size=64, **TINY)
    with pytest.raises(BackboneError, match="weights file not found"):
        Dapo(pretrained=str(tmp_path / "missing.bin"), image_size=64, **TINY)
