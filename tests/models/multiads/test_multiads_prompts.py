from anomalib_dapo.models.multiads.prompts import DEFECT_PHRASES, TEMPLATES, state_prompts


def test_one_ensemble_per_state_naming_the_object_and_its_defect():
    normal, scratch, generic = state_prompts(["scratch", ""], "metal_nut")
    size = len(TEMPLATES) * len(DEFECT_PHRASES)
    assert len(normal) == len(scratch) == len(generic) == size
    assert all("metal nut" in text for text in normal + scratch + generic)
    assert all("scratch" in text for text in scratch)
    assert not any("scratch" in text for text in normal + generic)
    assert "a photo of a metal nut with scratch." in scratch


def test_prompts_of_an_unknown_product_name_a_generic_object():
    assert "a photo of a flawless object." in state_prompts([])[0]
