"""Query functions over the defect knowledge base: dataset names, products, raw defect names and defect types."""

import re
from collections.abc import Iterable, Sequence
from types import MappingProxyType

from anomalib_dapo.knowledge import datasets
from anomalib_dapo.knowledge.datasets import DatasetSpec


class KnowledgeBaseError(ValueError):
    """Base class of every knowledge-base error; also raised for malformed user vocabularies."""


class UnknownDatasetError(KnowledgeBaseError):
    """The dataset name matches none of the known datasets."""


class UnknownCategoryError(KnowledgeBaseError):
    """The category is not a product of the dataset."""


class UnknownDefectError(KnowledgeBaseError):
    """The raw defect name is not known for the dataset (or names its normal class)."""


class EmptyVocabularyError(KnowledgeBaseError):
    """A user-given defect vocabulary holds no defect type."""


class DuplicateDefectError(KnowledgeBaseError):
    """A user-given defect vocabulary names the same defect type more than once."""


# Our prompt wording, only where the bare type name is ambiguous or reads badly inside
# "<words> anomaly object"; every other type is used as named. Keys are type names.
_PROMPT_WORDS = MappingProxyType(
    {
        "color": "color stain",  # bare "color" describes any object, not a defect
        "combined": "multiple defects",  # MVTec's folder of images showing several defects at once
        "spot": "color spot",
        "missing": "missing part",
        "misplaced": "misplaced part",
        "mismatch": "mismatched part",
        "particle": "foreign particle",
        "foreign": "foreign object",
        "stuck": "stuck together",
        "extra": "extra material",
        "melded": "melded wax",
        "rough": "rough surface",
        "other": "other defect",
    }
)


def _listing(names: Iterable[str]) -> str:
    """Comma-joined names for error messages."""
    return ", ".join(names)


def name_key(name: str) -> str:
    """A name without case and separators, for matching spellings: ``Real-IAD`` and ``real_iad`` are one name."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def resolve_dataset(name: str) -> str:
    """Return the canonical dataset key for any common spelling (case, ``-``, ``_`` and spaces are ignored).

    Raises:
        UnknownDatasetError: The name matches no dataset of the registry.

    """
    wanted = name_key(name)
    keys = [key for key, entry in datasets.REGISTRY.items() if wanted in {name_key(key), *map(name_key, entry.aliases)}]
    if not keys:
        msg = (
            f"Unknown dataset {name!r}. Use one of: {_listing(datasets.REGISTRY)} "
            "(case and separators do not matter, e.g. 'MVTecAD' or 'Real-IAD')."
        )
        raise UnknownDatasetError(msg)
    return keys[0]


def spec(dataset: str | DatasetSpec) -> DatasetSpec:
    """The registry's spec of a dataset given under any accepted spelling (a spec is returned as it is)."""
    return dataset if isinstance(dataset, DatasetSpec) else datasets.REGISTRY[resolve_dataset(dataset)]


def _category(facts: DatasetSpec, category: str) -> str:
    """Canonical (on-disk) spelling of a category, matched case-insensitively."""
    by_lower = {name.lower(): name for name in facts.products}
    found = by_lower.get(category.strip().lower())
    if found is None:
        msg = (
            f"Unknown category {category!r} for {facts.display_name}. Use one of: {_listing(sorted(facts.products))}. "
            "For products of your own, use anomalib_dapo.data.DefectFolder (README, 'Your own data')."
        )
        raise UnknownCategoryError(msg)
    return found


def categories(dataset: str | DatasetSpec) -> tuple[str, ...]:
    """Products (categories) of a dataset, sorted, spelled as on disk."""
    return tuple(sorted(spec(dataset).products))


def raw_defects(dataset: str | DatasetSpec, category: str) -> tuple[str, ...]:
    """Raw defect names of a product as on disk; for VisA, index ``i`` is the defect of mask pixel value ``i + 1``."""
    facts = spec(dataset)
    return facts.products[_category(facts, category)]


def defect_type(dataset: str | DatasetSpec, raw_name: str) -> str:
    """Defect type of a raw on-disk defect name (folder name, VisA defect name, Real-IAD code), case-insensitive.

    Raises:
        UnknownDefectError: The name is unknown for the dataset, or is its normal class (e.g. ``good``, ``OK``).

    """
    facts = spec(dataset)
    key = raw_name.strip().lower()
    if key == facts.normal_name.lower():
        msg = (
            f"{raw_name!r} is the normal class of {facts.display_name}, not a defect: "
            "treat such samples as normal instead of asking for their defect type."
        )
        raise UnknownDefectError(msg)
    found = facts.type_of.get(key)
    if found is None:
        msg = (
            f"Unknown raw defect name {raw_name!r} for {facts.display_name}. "
            f"Known raw names: {_listing(sorted(facts.type_of))}."
        )
        raise UnknownDefectError(msg)
    return found


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    """Items in order with repeats dropped (first occurrence wins)."""
    return tuple(dict.fromkeys(items))


def vocabulary(dataset: str | DatasetSpec, category: str | None = None) -> tuple[str, ...]:
    """Ordered defect types of a product (MultiADS-F product filtering), or of the whole dataset.

    A product's order is its raw defects' order (for VisA: mask-id order) mapped to types, first occurrence
    winning. With ``category=None`` it is the union of the product vocabularies over the sorted categories,
    again first occurrence winning, so one dataset always yields the same type indices.
    """
    facts = spec(dataset)
    if category is None:
        raws: Iterable[str] = (raw for name in sorted(facts.products) for raw in facts.products[name])
    else:
        raws = facts.products[_category(facts, category)]
    return _unique(facts.type_of[raw.lower()] for raw in raws)


def visa_mask_id_types(category: str) -> tuple[str, ...]:
    """Defect type of each VisA mask pixel value of a category: pixel value ``v`` (1-based) is ``result[v - 1]``.

    Unlike ``vocabulary``, repeats are kept (two mask ids may share a type, e.g. cashew's two colour spots).
    """
    return tuple(defect_type("visa", raw) for raw in raw_defects("visa", category))


def prompt_words(defect_type: str) -> str:
    """Words naming a defect type in the text prompt: our clearer wording where we keep one, else the type itself.

    Underscores become spaces, so ``faulty_imprint`` and ``faulty imprint`` read the same.
    """
    words = defect_type.strip().lower().replace("_", " ")
    return _PROMPT_WORDS.get(words, words)


def validate_defect_list(types: Sequence[str]) -> tuple[str, ...]:
    """Clean a user-given defect vocabulary (e.g. ``--model.defect_types``): strip and lower-case each name.

    Raises:
        EmptyVocabularyError: No defect type was given.
        DuplicateDefectError: A type appears more than once after cleaning (``_`` counting as a space).
        KnowledgeBaseError: A bare string instead of a list, a name that is not a string, or an empty name.

    """
    if isinstance(types, str):
        msg = f"Defect types must be a list, got the string {types!r}: pass e.g. [{types}]."
        raise KnowledgeBaseError(msg)
    if not types:
        msg = (
            "The defect vocabulary is empty: pass the defect types, e.g. [scratch, dent], "
            "or omit it to score the single generic 'anomaly' state."
        )
        raise EmptyVocabularyError(msg)
    if not_text := [name for name in types if not isinstance(name, str)]:
        msg = f"Defect types must be names (text), got {not_text}: pass e.g. [scratch, dent]."
        raise KnowledgeBaseError(msg)
    cleaned = tuple(name.strip().lower() for name in types)
    empty = [index for index, name in enumerate(cleaned) if not name]
    if empty:
        msg = f"Defect type names at positions {empty} are empty: remove them or name the defect, e.g. 'scratch'."
        raise KnowledgeBaseError(msg)
    words = [name.replace("_", " ") for name in cleaned]  # the prompts' words: faulty_imprint is faulty imprint
    repeated = _unique(word for index, word in enumerate(words) if word in words[:index])
    if repeated:
        msg = f"Defect types given more than once: {_listing(repeated)}. Name each defect type once."
        raise DuplicateDefectError(msg)
    return cleaned
