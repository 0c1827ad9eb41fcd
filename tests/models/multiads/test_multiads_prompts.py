"""MultiADS' prompt ensembles follow the paper's structure (appendix 7.1): 35 templates, 10 normal, 6 per defect."""

from anomalib_dapo import knowledge
from anomalib_dapo.knowledge.phrases import DEFECT_PHRASES, NORMAL_PHRASES
from anomalib_dapo.models.multiads.prompts import TEMPLATES, state_prompts


def test_the_papers_counts_with_the_product_in_every_prompt():
    assert (len(TEMPLATES), len(NORMAL_PHRASES)) == (35, 10)
    normal, scratch, rust, generic = state_prompts(["scratch", "rust", "anomaly"], ["scratch", "rust", ""], "metal_nut")
    assert len(normal) == 35 * 10
    assert len(scratch) == len(rust) == len(generic) == 35 * 6
    assert len(set(normal + scratch + rust + generic)) == 35 * (10 + 6 + 6 + 6)  # no prompt repeated
    assert all("metal nut" in text for text in normal + scratch + rust + generic)
    assert all("scratch" in text for text in scratch) and not any("scratch" in text for text in normal + generic)


def test_each_defect_type_has_six_phrases_of_synonyms_and_variants():
    """Every type of every dataset of the knowledge base has its own six distinct phrases, each naming the product."""
    types = {name for dataset in knowledge.DATASETS for name in knowledge.vocabulary(dataset)}
    assert types <= DEFECT_PHRASES.keys()
    for name, phrases in DEFECT_PHRASES.items():
        assert len(set(phrases)) == 6, name
        assert all(phrase.count("{cls}") == 1 for phrase in phrases), name
    bent = state_prompts(["bent"], ["bent"], "cable")[1]
    assert len({text for text in bent if "bend" in text or "curve" in text or "bent" in text}) == len(bent)


def test_a_type_named_by_text_gets_general_phrases_with_its_words():
    dent = state_prompts(["dent"], ["dent"], "bracket")[1]
    assert len(dent) == 35 * 6 and all("dent" in text and "bracket" in text for text in dent)


def test_prompts_of_an_unknown_product_name_a_generic_object():
    assert "a bad photo of a flawless object." in state_prompts([], [])[0]
