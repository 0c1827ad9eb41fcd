import torch

from anomalib_dapo.models.components.similarity import similarity_maps, upsample


def test_similarity_maps_are_a_softmax_over_states_by_hand():
    patches = torch.tensor([[[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]]]])  # M=1, B=1, P=4, D=2
    states = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    maps = similarity_maps(patches, states, temperature=0.5)
    assert maps.shape == (1, 1, 2, 2, 2)
    first = torch.tensor([1.0, 0.0]) / 0.5
    assert torch.allclose(maps[0, 0, :, 0, 0], first.softmax(0))
    diagonal = torch.tensor([2**-0.5, 2**-0.5]) / 0.5
    assert torch.allclose(maps[0, 0, :, 1, 0], diagonal.softmax(0))


def test_upsample_commutes_with_the_stage_mean():
    maps = torch.rand(2, 3, 4, 5, 5)
    assert torch.allclose(upsample(maps, (20, 20)).mean(dim=1), upsample(maps.mean(dim=1), (20, 20)), atol=1e-6)
