import logging
import pickle
import zipfile
from pathlib import Path

import open_clip
import pytest
import torch

from anomalib_dapo.backbone import BackboneError, load_clip


def test_random_backbone_is_the_same_in_every_build_and_leaves_the_callers_rng_alone():
    # Learned checkpoints leave the frozen backbone out: a reloaded model must meet the same random CLIP.
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = load_clip("dapo-tiny", None, 64).model.state_dict()
    after_build = torch.rand(1)
    second = load_clip("dapo-tiny", None, 64).model.state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert torch.equal(after_build, expected_next)


def test_position_embeddings_follow_the_image_size():
    assert load_clip("dapo-tiny", None, 64).model.visual.positional_embedding.shape == (1 + 8 * 8, 64)
    assert load_clip("dapo-tiny", None, 96).model.visual.positional_embedding.shape == (1 + 12 * 12, 64)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_open_clip_progress_stays_off_the_console(root_handlers):
    root_handlers.setLevel(logging.INFO)
    for handler in root_handlers.handlers[:]:  # pytest's capture handlers, added once the test runs
        root_handlers.removeHandler(handler)
    load_clip("dapo-tiny", None, 64)
    assert root_handlers.handlers == []  # open_clip's logging.info did not run basicConfig
    seen = Records()
    root_handlers.addHandler(seen)
    load_clip("dapo-tiny", None, 64)
    folder = str(Path(open_clip.__file__).parent)
    assert [r.getMessage() for r in seen.records if r.pathname.startswith(folder)] == []
    assert [r.getMessage() for r in seen.records] == [
        "'dapo-tiny' is a tiny CLIP with RANDOM weights: a test/demo model only."
    ]


class _Payload:
    """Unpickling this creates ``marker``: the proof that a file ran code when it was read."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return open, (str(self.marker), "w")


def crafted_checkpoint(path: Path, marker: Path, torchscript_bait: bool) -> Path:
    """A ``torch.save`` file whose pickle runs code; with bait, it also holds an entry named like TorchScript's."""
    torch.save({"state_dict": _Payload(marker)}, path)
    if torchscript_bait:
        with zipfile.ZipFile(path, "a") as archive:
            prefix = archive.namelist()[0].split("/")[0]
            archive.writestr(f"{prefix}/bait/constants.pkl", pickle.dumps(()))  # torch.load itself is not fooled
    return path


@pytest.mark.parametrize("torchscript_bait", [True, False], ids=["looks_like_torchscript", "plain_pickle"])
def test_weights_files_never_run_code(tmp_path, torchscript_bait):
    """TorchScript archives go through ``torch.jit.load`` alone, every other file through ``weights_only=True``."""
    marker = tmp_path / "payload_ran"
    path = crafted_checkpoint(tmp_path / "ViT-L-14-336px.pt", marker, torchscript_bait)
    with pytest.raises(BackboneError, match="is not a CLIP checkpoint") as error:
        load_clip("dapo-tiny", str(path), 64)
    assert not marker.exists()
    assert str(path) in str(error.value)


def test_a_learned_checkpoint_as_backbone_weights_says_pass_it_as_weights(tiny_checkpoint):
    with pytest.raises(BackboneError, match=r"not CLIP weights.*pass it as --model\.weights"):
        load_clip("dapo-tiny", str(tiny_checkpoint), 64)


@pytest.mark.parametrize("content", [b"", b"backbone: dapo-tiny\n"], ids=["empty", "text"])
def test_a_file_that_is_no_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "clip.pt"
    path.write_bytes(content)
    with pytest.raises(BackboneError, match="is not a CLIP checkpoint"):
        load_clip("dapo-tiny", str(path), 64)
