"""Facts about each dataset: raw defect names on disk, the type each belongs to, and each product's raw defects.

Grouping of raw names into types follows the MultiADS dataset metadata (see the project's knowledge-base notes).
Two choices are ours where that source is silent or inconsistent:

* MVTec-AD ``manipulated_front`` (screw) is typed ``bent``: the defect is a deformed screw tip, and a screw has
  no fabric, so the ``fabric`` reading cannot describe it.
* VisA names MultiADS leaves ungrouped keep their own type: ``discolor``, ``leak``, ``misshape`` and ``dirt`` each
  name a visually distinct defect that no existing type covers, and VisA's catch-all ``other`` stays ``other``
  rather than being merged into a real type it may not resemble.

Raw names are stored as written on disk; lookups elsewhere match them case-insensitively.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class DatasetFacts:
    """Everything the knowledge base knows about one dataset.

    Attributes:
        display_name: Name used in messages.
        normal_name: Raw name of the normal (defect-free) class.
        type_of: Lower-cased raw defect name -> defect type.
        products: Category -> its raw defect names in on-disk order (VisA: mask pixel value order).

    """

    display_name: str
    normal_name: str
    type_of: Mapping[str, str]
    products: Mapping[str, tuple[str, ...]]


def _invert(groups: Mapping[str, tuple[str, ...]]) -> Mapping[str, str]:
    """Turn ``type -> raw names`` (the readable form) into a frozen ``lower-cased raw name -> type`` lookup."""
    return MappingProxyType({raw.lower(): type_ for type_, raws in groups.items() for raw in raws})


MVTEC_AD = DatasetFacts(
    display_name="MVTec-AD",
    normal_name="good",
    type_of=_invert(
        {
            "bent": ("bent", "bent_lead", "bent_wire", "manipulated_front"),
            "broken": ("broken", "broken_large", "broken_small", "broken_teeth"),
            "color": ("color",),
            "combined": ("combined",),
            "contamination": ("contamination", "metal_contamination"),
            "crack": ("crack",),
            "cut": ("cut", "cut_inner_insulation", "cut_lead", "cut_outer_insulation"),
            "fabric": ("fabric", "fabric_border", "fabric_interior"),
            "faulty imprint": ("faulty_imprint", "print"),
            "glue": ("glue", "glue_strip"),
            "hole": ("hole",),
            "missing": ("missing", "missing_wire", "missing_cable"),
            "poke": ("poke", "poke_insulation"),
            "rough": ("rough",),
            "scratch": ("scratch", "scratch_head", "scratch_neck"),
            "squeeze": ("squeeze", "squeezed_teeth"),
            "thread": ("thread", "thread_side", "thread_top"),
            "liquid": ("liquid", "oil"),
            "misplaced": ("misplaced", "cable_swap", "flip", "fold", "split_teeth"),
            "damaged": ("damaged_case", "defective", "gray_stroke", "pill_type"),
        }
    ),
    products=MappingProxyType(
        {
            "bottle": ("broken_large", "broken_small", "contamination"),
            "cable": (
                "bent_wire",
                "cable_swap",
                "combined",
                "cut_inner_insulation",
                "cut_outer_insulation",
                "missing_cable",
                "missing_wire",
                "poke_insulation",
            ),
            "capsule": ("crack", "faulty_imprint", "poke", "scratch", "squeeze"),
            "carpet": ("color", "cut", "hole", "metal_contamination", "thread"),
            "grid": ("bent", "broken", "glue", "metal_contamination", "thread"),
            "hazelnut": ("crack", "cut", "hole", "print"),
            "leather": ("color", "cut", "fold", "glue", "poke"),
            "metal_nut": ("bent", "color", "flip", "scratch"),
            "pill": ("color", "combined", "contamination", "crack", "faulty_imprint", "pill_type", "scratch"),
            "screw": ("manipulated_front", "scratch_head", "scratch_neck", "thread_side", "thread_top"),
            "tile": ("crack", "glue_strip", "gray_stroke", "oil", "rough"),
            "toothbrush": ("defective",),
            "transistor": ("bent_lead", "cut_lead", "damaged_case", "misplaced"),
            "wood": ("color", "combined", "hole", "liquid", "scratch"),
            "zipper": (
                "broken_teeth",
                "combined",
                "fabric_border",
                "fabric_interior",
                "rough",
                "split_teeth",
                "squeezed_teeth",
            ),
        }
    ),
)

_PCB_1_TO_3 = ("bent", "melt", "scratch", "missing")

VISA = DatasetFacts(
    display_name="VisA",
    normal_name="normal",
    type_of=_invert(
        {
            "damage": ("damage", "damaged corner of packaging"),
            "scratch": ("scratch", "scratches", "small scratches"),
            "breakage": (
                "breakage down the middle",
                "corner and edge breakage",
                "corner or edge breakage",
                "middle breakage",
            ),
            "burnt": ("burnt",),
            "weird wick": ("weird candle wick",),
            "stuck": ("fryum stuck together", "stuck together"),
            "crack": ("small cracks",),
            "wrong place": ("wrong place",),
            "particle": ("foreign particals on candle",),
            "bubble": ("bubble",),
            "melded": ("wax melded out of the candle",),
            "hole": ("small holes",),
            "melt": ("melt",),
            "bent": ("bent",),
            "spot": (
                "different colour spot",
                "different color spot",
                "color spot similar to the object",
                "same colour spot",
                "similar colour spot",
            ),
            "extra": ("extra", "extra wax in candle"),
            "chip": ("chip around edge and corner", "small chip around edge"),
            "missing": ("chunk of wax missing", "chunk of gum missing", "corner missing", "missing"),
            # Ungrouped by MultiADS; see the module docstring for why these stay their own types.
            "discolor": ("discolor",),
            "leak": ("leak",),
            "misshape": ("misshape",),
            "dirt": ("dirt",),
            "other": ("other",),
        }
    ),
    # Index i holds the defect whose mask pixel value is i + 1.
    products=MappingProxyType(
        {
            "candle": (
                "chunk of wax missing",
                "damaged corner of packaging",
                "weird candle wick",
                "different colour spot",
                "extra wax in candle",
                "foreign particals on candle",
                "wax melded out of the candle",
                "other",
            ),
            "capsules": ("bubble", "discolor", "scratch", "leak", "misshape"),
            "cashew": (
                "burnt",
                "corner or edge breakage",
                "different colour spot",
                "middle breakage",
                "small holes",
                "small scratches",
                "stuck together",
                "same colour spot",
                "other",
            ),
            "chewinggum": (
                "chunk of gum missing",
                "corner missing",
                "scratches",
                "similar colour spot",
                "small cracks",
                "other",
            ),
            "fryum": (
                "burnt",
                "corner or edge breakage",
                "different colour spot",
                "fryum stuck together",
                "middle breakage",
                "similar colour spot",
                "small scratches",
                "other",
            ),
            "macaroni1": (
                "chip around edge and corner",
                "different colour spot",
                "middle breakage",
                "similar colour spot",
                "small cracks",
                "small scratches",
                "other",
            ),
            "macaroni2": (
                "breakage down the middle",
                "color spot similar to the object",
                "different color spot",
                "small chip around edge",
                "small cracks",
                "small scratches",
                "other",
            ),
            "pcb1": _PCB_1_TO_3,
            "pcb2": _PCB_1_TO_3,
            "pcb3": _PCB_1_TO_3,
            "pcb4": ("burnt", "scratch", "missing", "damage", "extra", "wrong place", "dirt"),
            "pipe_fryum": (
                "burnt",
                "corner and edge breakage",
                "different colour spot",
                "middle breakage",
                "similar colour spot",
                "small scratches",
                "stuck together",
                "small cracks",
                "other",
            ),
        }
    ),
)

MPDD = DatasetFacts(
    display_name="MPDD",
    normal_name="good",
    type_of=_invert(
        {
            "hole": ("hole",),
            "scratch": ("scratches",),
            "bent": ("bend_and_parts_mismatch",),
            "mismatch": ("parts_mismatch",),
            "defective painting": ("defective_painting",),
            "rust": ("major_rust", "total_rust"),
            "flattening": ("flattening",),
        }
    ),
    products=MappingProxyType(
        {
            "bracket_black": ("hole", "scratches"),
            "bracket_brown": ("bend_and_parts_mismatch", "parts_mismatch"),
            "bracket_white": ("defective_painting", "scratches"),
            "connector": ("parts_mismatch",),
            "metal_plate": ("major_rust", "scratches", "total_rust"),
            "tubes": ("flattening",),
        }
    ),
)

# MAD folders are capitalised on disk (``test/Burrs``); both MAD variants share this lookup.
_MAD_TYPE_OF = _invert({"burrs": ("Burrs",), "missing": ("Missing",), "stains": ("Stains",)})

_MAD_SIM_TOYS = (
    "01Gorilla",
    "02Unicorn",
    "03Mallard",
    "04Turtle",
    "05Whale",
    "06Bird",
    "07Owl",
    "08Sabertooth",
    "09Swan",
    "10Sheep",
    "11Pig",
    "12Zalika",
    "13Pheonix",
    "14Elephant",
    "15Parrot",
    "16Cat",
    "17Scorpion",
    "18Obesobeso",
    "19Bear",
    "20Puppy",
)

MAD_SIM = DatasetFacts(
    display_name="MAD-Sim",
    normal_name="good",
    type_of=_MAD_TYPE_OF,
    products=MappingProxyType(dict.fromkeys(_MAD_SIM_TOYS, ("Burrs", "Missing", "Stains"))),
)

MAD_REAL = DatasetFacts(
    display_name="MAD-Real",
    normal_name="good",
    type_of=_MAD_TYPE_OF,
    products=MappingProxyType(
        {
            **dict.fromkeys(("Bird", "Elephant", "Parrot", "Pig", "Scorpion", "Unicorn"), ("Missing",)),
            **dict.fromkeys(("Bear", "Puppy", "Turtle", "Whale"), ("Stains",)),
        }
    ),
)

_REAL_IAD_CODES = MappingProxyType(
    {
        "AK": "pit",
        "BX": "deformation",
        "CH": "abrasion",
        "HS": "scratch",
        "PS": "damage",
        "QS": "missing",
        "YW": "foreign",
        "ZW": "contamination",
    }
)
_REAL_IAD_CODE_OF = MappingProxyType({type_: code for code, type_ in _REAL_IAD_CODES.items()})


def _codes(*types: str) -> tuple[str, ...]:
    """Real-IAD codes for a product's types, so the product table below reads in types as the source lists them."""
    return tuple(_REAL_IAD_CODE_OF[type_] for type_ in types)


REAL_IAD = DatasetFacts(
    display_name="Real-IAD",
    normal_name="OK",
    type_of=MappingProxyType({code.lower(): type_ for code, type_ in _REAL_IAD_CODES.items()}),
    products=MappingProxyType(
        {
            **dict.fromkeys(
                (
                    "eraser",
                    "woodstick",
                    "fire_hood",
                    "plastic_nut",
                    "wooden_beads",
                    "bottle_cap",
                    "plastic_plug",
                    "toy_brick",
                    "toy",
                    "vcpill",
                ),
                _codes("contamination", "scratch", "missing", "pit"),
            ),
            "switch": _codes("missing", "contamination", "scratch"),
            "zipper": _codes("contamination", "deformation", "missing", "damage"),
            "pcb": _codes("contamination", "scratch", "missing", "foreign"),
            "toothbrush": _codes("abrasion", "contamination", "missing"),
            "transistor1": _codes("missing", "contamination", "deformation"),
            "u_block": _codes("abrasion", "contamination", "scratch", "missing"),
            **dict.fromkeys(("sim_card_set", "porcelain_doll"), _codes("abrasion", "contamination", "scratch")),
            "end_cap": _codes("contamination", "scratch", "missing", "damage"),
            **dict.fromkeys(("usb", "audiojack"), _codes("contamination", "deformation", "scratch", "missing")),
            "regulator": _codes("missing", "scratch"),
            "mint": _codes("missing", "contamination", "foreign"),
            **dict.fromkeys(("rolled_strip_base", "terminalblock"), _codes("pit", "missing", "contamination")),
            "mounts": _codes("missing", "contamination", "pit"),
            **dict.fromkeys(("button_battery", "usb_adaptor"), _codes("abrasion", "contamination", "scratch", "pit")),
            "phone_battery": _codes("contamination", "scratch", "damage", "pit"),
            "tape": _codes("missing", "contamination", "damage"),
        }
    ),
)

# The project's procedural dataset: folder names are the types themselves.
SYNTHETIC = DatasetFacts(
    display_name="synthetic",
    normal_name="good",
    type_of=_invert({name: (name,) for name in ("scratch", "hole", "stain", "missing")}),
    products=MappingProxyType(
        {
            "disc": ("scratch", "hole", "stain", "missing"),
            "grid": ("scratch", "stain", "missing"),
            "tile": ("scratch", "hole", "stain"),
        }
    ),
)

FACTS: Mapping[str, DatasetFacts] = MappingProxyType(
    {
        "mvtec_ad": MVTEC_AD,
        "visa": VISA,
        "mpdd": MPDD,
        "mad_sim": MAD_SIM,
        "mad_real": MAD_REAL,
        "real_iad": REAL_IAD,
        "synthetic": SYNTHETIC,
    }
)

DATASETS: tuple[str, ...] = tuple(FACTS)

# Separator- and case-free spellings -> canonical key; see ``resolve_dataset``.
ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "mvtecad": "mvtec_ad",
        "mvtec": "mvtec_ad",
        "visa": "visa",
        "mpdd": "mpdd",
        "madsim": "mad_sim",
        "madreal": "mad_real",
        "realiad": "real_iad",
        "synthetic": "synthetic",
        "syntheticdefects": "synthetic",
    }
)
