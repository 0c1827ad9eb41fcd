import pytest
import torch
from safetensors.torch import load_file

from anomalib_dapo.backbone.clip import TINY_BACKBONE, load_clip
from anomalib_dapo.backbone.pretrain import caption, patch_targets, pretrain_tiny_clip
from anomalib_dapo.data.corpus import NORMAL


def test_patch_targets_follow_the_cover_of_each_patch():
    masks = torch.zeros(1, 16, 16, dtype=torch.bool)
    masks[0, :8, :8] = True  # patch 0 fully covered
    masks[0, 0, 8] = True  # patch 1: 1 of 64 pixels, below the cover threshold
    targets = patch_targets(masks, 8, defect_class=torch.tensor([5]), normal_class=torch.tensor([2]))
    assert targets.tolist() == [[5, -100, 2, 2]]


def test_captions_name_the_defect_in_the_prompt_words_of_the_knowledge_base():
    assert caption("disc", "missing", 0) == "missing part anomaly object."
    assert caption("tile", NORMAL, 0) == "normal object."
    assert "wire grid" in caption("grid", "crack", 1)


def test_pretraining_writes_float16_safetensors_that_load_and_never_overwrites(tmp_path, capsys):
    output = tmp_path / "tiny.safetensors"
    pretrain_tiny_clip(output, steps=2, views_per_state=1, warmup=1, log_every=1)
    printed = capsys.readouterr().out
    assert "sha256" in printed
    assert "pretraining took" in printed
    state = load_file(output)
    assert all(tensor.dtype == torch.float16 for tensor in state.values())
    assert output.stat().st_size <= 10 * 2**20
    model = load_clip(TINY_BACKBONE, str(output), 64).model
    assert torch.equal(model.visual.proj, state["visual.proj"].float())
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        pretrain_tiny_clip(output, steps=1)
