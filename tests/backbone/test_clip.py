import logging
from pathlib import Path

import open_clip
import pytest
import torch

from anomalib_dapo.backbone import load_clip


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


@pytest.fixture
def bare_root_logger():
    """The root logger at INFO, restored afterwards (the test removes its handlers)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.setLevel(logging.INFO)
    yield root
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_open_clip_progress_stays_off_the_console(bare_root_logger):
    for handler in bare_root_logger.handlers[:]:  # pytest's capture handlers, added once the test runs
        bare_root_logger.removeHandler(handler)
    load_clip("dapo-tiny", None, 64)
    assert bare_root_logger.handlers == []  # open_clip's logging.info did not run basicConfig
    seen = Records()
    bare_root_logger.addHandler(seen)
    load_clip("dapo-tiny", None, 64)
    folder = str(Path(open_clip.__file__).parent)
    assert [r.getMessage() for r in seen.records if r.pathname.startswith(folder)] == []
    assert [r.getMessage() for r in seen.records] == [
        "'dapo-tiny' is a tiny CLIP with RANDOM weights: a test/demo model only."
    ]
