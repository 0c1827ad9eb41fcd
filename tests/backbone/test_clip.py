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
