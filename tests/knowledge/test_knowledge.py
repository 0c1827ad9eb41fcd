"""Facts and error behaviour of the defect knowledge base."""

import pytest

from anomalib_dapo.knowledge import (
    DATASETS,
    DuplicateDefectError,
    EmptyVocabularyError,
    KnowledgeBaseError,
    UnknownCategoryError,
    UnknownDatasetError,
    UnknownDefectError,
    categories,
    defect_type,
    prompt_words,
    raw_defects,
    resolve_dataset,
    validate_defect_list,
    visa_mask_id_types,
    vocabulary,
)


@pytest.mark.parametrize(
    ("dataset", "count"),
    [
        ("mvtec_ad", 15),
        ("visa", 12),
        ("mpdd", 6),
        ("mad_sim", 20),
        ("mad_real", 10),
        ("real_iad", 30),
        ("synthetic", 3),
    ],
)
def test_category_counts(dataset, count):
    names = categories(dataset)
    assert len(names) == count
    assert list(names) == sorted(names)


def test_datasets_are_the_canonical_keys():
    assert DATASETS == ("mvtec_ad", "visa", "mpdd", "mad_sim", "mad_real", "real_iad", "synthetic")


@pytest.mark.parametrize(
    ("dataset", "raw", "expected"),
    [
        ("mvtec_ad", "broken_large", "broken"),
        ("mvtec_ad", "combined", "combined"),
        ("mvtec_ad", "print", "faulty imprint"),
        ("mvtec_ad", "oil", "liquid"),
        ("mvtec_ad", "cable_swap", "misplaced"),
        ("mvtec_ad", "pill_type", "damaged"),
        ("mvtec_ad", "squeezed_teeth", "squeeze"),
        ("visa", "weird candle wick", "weird wick"),
        ("visa", "corner or edge breakage", "breakage"),
        ("visa", "color spot similar to the object", "spot"),
        ("visa", "foreign particals on candle", "particle"),
        ("visa", "Small Holes", "hole"),
        ("mpdd", "bend_and_parts_mismatch", "bent"),
        ("mpdd", "parts_mismatch", "mismatch"),
        ("mpdd", "total_rust", "rust"),
        ("mad_sim", "Burrs", "burrs"),
        ("mad_sim", "stains", "stains"),
        ("mad_real", "Missing", "missing"),
        ("real_iad", "HS", "scratch"),
        ("real_iad", "ak", "pit"),
        ("real_iad", "YW", "foreign"),
        ("synthetic", "hole", "hole"),
    ],
)
def test_raw_name_to_type(dataset, raw, expected):
    assert defect_type(dataset, raw) == expected


def test_manipulated_front_is_bent():
    # Our choice: a screw's manipulated front is a deformed tip; a screw has no fabric.
    assert defect_type("mvtec_ad", "manipulated_front") == "bent"
    assert vocabulary("mvtec_ad", "screw") == ("bent", "scratch", "thread")


def test_visa_ungrouped_names_keep_their_own_types():
    assert [defect_type("visa", raw) for raw in ("discolor", "leak", "misshape", "dirt", "other")] == [
        "discolor",
        "leak",
        "misshape",
        "dirt",
        "other",
    ]


@pytest.mark.parametrize(
    ("category", "pixel_value", "expected"),
    [
        ("capsules", 2, "discolor"),
        ("pcb4", 7, "dirt"),
        ("macaroni2", 1, "breakage"),
        ("candle", 8, "other"),
        ("pcb2", 2, "melt"),
    ],
)
def test_visa_mask_id_types(category, pixel_value, expected):
    assert visa_mask_id_types(category)[pixel_value - 1] == expected


def test_visa_mask_ids_keep_repeats_that_vocabulary_drops():
    # cashew ids 3 and 8 are both colour spots.
    ids = visa_mask_id_types("cashew")
    assert len(ids) == len(raw_defects("visa", "cashew")) == 9
    assert ids[2] == ids[7] == "spot"
    assert vocabulary("visa", "cashew") == ("burnt", "breakage", "spot", "hole", "scratch", "stuck", "other")


def test_raw_defects_follow_disk_order():
    assert raw_defects("visa", "pcb4")[6] == "dirt"
    assert raw_defects("mvtec_ad", "bottle") == ("broken_large", "broken_small", "contamination")
    assert raw_defects("mad_sim", "01gorilla") == ("Burrs", "Missing", "Stains")
    assert raw_defects("real_iad", "regulator") == ("QS", "HS")


@pytest.mark.parametrize(
    ("dataset", "category", "expected"),
    [
        ("mvtec_ad", "bottle", ("broken", "contamination")),
        ("mvtec_ad", "cable", ("bent", "misplaced", "combined", "cut", "missing", "poke")),
        ("mpdd", "metal_plate", ("rust", "scratch")),
        ("mpdd", "bracket_brown", ("bent", "mismatch")),
        ("mad_sim", "13Pheonix", ("burrs", "missing", "stains")),
        ("mad_real", "Bear", ("stains",)),
        ("mad_real", "Pig", ("missing",)),
        ("real_iad", "zipper", ("contamination", "deformation", "missing", "damage")),
        ("real_iad", "toy", ("contamination", "scratch", "missing", "pit")),
        ("synthetic", "grid", ("scratch", "stain", "missing")),
    ],
)
def test_product_vocabulary_order(dataset, category, expected):
    assert vocabulary(dataset, category) == expected


def test_dataset_vocabulary_is_the_ordered_union_of_products():
    for dataset in DATASETS:
        union = vocabulary(dataset)
        per_product = {t for category in categories(dataset) for t in vocabulary(dataset, category)}
        assert len(union) == len(set(union))
        assert set(union) == per_product
    assert len(vocabulary("mvtec_ad")) == 20
    assert vocabulary("mpdd") == ("hole", "scratch", "bent", "mismatch", "defective painting", "rust", "flattening")
    assert vocabulary("synthetic") == ("scratch", "hole", "stain", "missing")


def test_products_never_list_the_normal_class():
    for dataset in DATASETS:
        for category in categories(dataset):
            assert "good" not in {raw.lower() for raw in raw_defects(dataset, category)}


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("MVTecAD", "mvtec_ad"),
        ("mvtec", "mvtec_ad"),
        ("MVTec-AD", "mvtec_ad"),
        ("mvtec_ad", "mvtec_ad"),
        ("Visa", "visa"),
        ("VisA", "visa"),
        ("MPDD", "mpdd"),
        ("RealIAD", "real_iad"),
        ("Real-IAD", "real_iad"),
        ("MADSim", "mad_sim"),
        ("MAD-Sim", "mad_sim"),
        ("mad_sim", "mad_sim"),
        ("MADReal", "mad_real"),
        ("MAD-Real", "mad_real"),
        ("Synthetic", "synthetic"),
        ("SyntheticDefects", "synthetic"),
    ],
)
def test_resolve_dataset_spellings(spelling, key):
    assert resolve_dataset(spelling) == key


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(UnknownDatasetError, match=r"Unknown dataset 'kolektor'.*mvtec_ad, visa, mpdd"):
        categories("kolektor")


def test_unknown_category_lists_known_ones():
    with pytest.raises(UnknownCategoryError, match=r"'widget' for MPDD\. Use one of: bracket_black"):
        vocabulary("mpdd", "widget")


def test_unknown_defect_lists_known_raw_names():
    with pytest.raises(UnknownDefectError, match=r"'dent' for MPDD\. Known raw names: .*major_rust"):
        defect_type("mpdd", "dent")


@pytest.mark.parametrize(("dataset", "normal"), [("real_iad", "OK"), ("mvtec_ad", "good"), ("visa", "normal")])
def test_normal_class_is_never_a_defect(dataset, normal):
    with pytest.raises(UnknownDefectError, match="is the normal class"):
        defect_type(dataset, normal)


def test_errors_are_value_errors():
    for error in (UnknownDatasetError, UnknownCategoryError, UnknownDefectError, EmptyVocabularyError):
        assert issubclass(error, KnowledgeBaseError)
    assert issubclass(DuplicateDefectError, KnowledgeBaseError)
    assert issubclass(KnowledgeBaseError, ValueError)


def test_prompt_words():
    assert prompt_words("faulty imprint") == "faulty imprint"
    assert prompt_words("weird wick") == "weird wick"
    assert prompt_words("defective_painting") == "defective painting"
    assert prompt_words("color") == "color stain"
    assert prompt_words("combined") == "multiple defects"


def test_prompt_words_are_distinct_across_all_known_types():
    types = {t for dataset in DATASETS for t in vocabulary(dataset)}
    words = [prompt_words(t) for t in types]
    assert len(set(words)) == len(types)


def test_validate_defect_list_cleans():
    assert validate_defect_list(["  Scratch", "DENT ", "faulty imprint"]) == ("scratch", "dent", "faulty imprint")


def test_validate_defect_list_rejects_empty_vocabulary():
    with pytest.raises(EmptyVocabularyError, match=r"\[scratch, dent\]"):
        validate_defect_list([])


def test_validate_defect_list_rejects_duplicates():
    with pytest.raises(DuplicateDefectError, match=r"more than once: scratch\. "):
        validate_defect_list(["scratch", "hole", " Scratch"])


def test_validate_defect_list_rejects_names_that_differ_only_by_underscore():
    # Both become the prompt word "faulty imprint": two identical states, the second never predicted.
    with pytest.raises(DuplicateDefectError, match=r"more than once: faulty imprint\. "):
        validate_defect_list(["faulty_imprint", "hole", "Faulty Imprint"])


def test_validate_defect_list_rejects_empty_names_and_bare_strings():
    with pytest.raises(KnowledgeBaseError, match=r"positions \[1\] are empty"):
        validate_defect_list(["scratch", "  "])
    with pytest.raises(KnowledgeBaseError, match=r"must be a list.*\[scratch\]"):
        validate_defect_list("scratch")
