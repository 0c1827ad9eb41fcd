"""The dataset registry: one spec per dataset, holding everything the package knows about it.

A spec gives the dataset's name and spellings, its knowledge-base facts (raw defect names on disk, the type each
belongs to, each product's raw defects), how it lies on disk and where it is obtained, its category folder, and
the typed dataset and datamodule that read it. Every other module asks the registry; adding a spec to
:data:`REGISTRY` is all a new dataset needs.

Grouping of raw names into types follows the MultiADS dataset metadata (see the project's knowledge-base notes).
Two choices are ours where that source is silent or inconsistent:

* MVTec-AD ``manipulated_front`` (screw) is typed ``bent``: the defect is a deformed screw tip, and a screw has
  no fabric, so the ``fabric`` reading cannot describe it.
* VisA names MultiADS leaves ungrouped keep their own type: ``discolor``, ``leak``, ``misshape`` and ``dirt`` each
  name a visually distinct defect that no existing type covers, and VisA's catch-all ``other`` stays ``other``
  rather than being merged into a real type it may not resemble.

Raw names are stored as written on disk; lookups elsewhere match them case-insensitively. The classes are named
by import path, as anomalib's configs name them, so that this module stays plain data (no torch, no anomalib).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class DiskLayout:
    """How a dataset lies on disk and where it is obtained, for error messages.

    Attributes:
        name: Name shown to the user.
        default_dir: Folder name under ``./datasets`` used when no root is given.
        layout: The expected tree below the dataset root.
        obtain: Where to get the dataset.

    """

    name: str
    default_dir: str
    layout: str
    obtain: str


@dataclass(frozen=True)
class DatasetSpec:
    """Everything the package knows about one dataset.

    Attributes:
        name: Canonical key, e.g. ``mvtec_ad``.
        display_name: Name used in knowledge-base messages.
        normal_name: Raw name of the normal (defect-free) class.
        type_of: Lower-cased raw defect name -> defect type.
        products: Category -> its raw defect names in on-disk order (VisA: mask pixel value order).
        disk: On-disk layout and where to get the dataset.
        datamodule: Import path of its typed datamodule.
        dataset: Import path of its typed dataset (arguments ``root, category, split, defect_types``, and
            ``resolution`` where the spec has ``resolutions``).
        aliases: Further spellings accepted for ``name`` (case and separators never matter).
        category_folder: A category's folder below the root; ``{resolution}`` is one of ``resolutions``.
        resolutions: Image folders the dataset ships at several resolutions in. Defaults to none.
        default_resolution: The one read when none is given.

    """

    name: str
    display_name: str
    normal_name: str
    type_of: Mapping[str, str]
    products: Mapping[str, tuple[str, ...]]
    disk: DiskLayout
    datamodule: str
    dataset: str
    aliases: tuple[str, ...] = ()
    category_folder: str = "{category}"
    resolutions: tuple[str, ...] = ()
    default_resolution: str | None = None


_MVTEC_LAYOUT = """
<root>/<category>/train/good/*.png
<root>/<category>/test/{good,<defect>}/*.png
<root>/<category>/ground_truth/<defect>/<NNN>_mask.png
"""


def _invert(groups: Mapping[str, tuple[str, ...]]) -> Mapping[str, str]:
    """Turn ``type -> raw names`` (the readable form) into a frozen ``lower-cased raw name -> type`` lookup."""
    return MappingProxyType({raw.lower(): type_ for type_, raws in groups.items() for raw in raws})


MVTEC_AD = DatasetSpec(
    name="mvtec_ad",
    display_name="MVTec-AD",
    normal_name="good",
    aliases=("mvtec",),
    disk=DiskLayout(
        name="MVTec-AD",
        default_dir="MVTecAD",
        layout=_MVTEC_LAYOUT,
        obtain="https://www.mvtec.com/company/research/datasets/mvtec-ad (extract the archive; root is the "
        "folder holding bottle/, cable/, ...)",
    ),
    datamodule="anomalib_dapo.data.mvtecad.TypedMVTecAD",
    dataset="anomalib_dapo.data.mvtecad.TypedMVTecADDataset",
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

VISA = DatasetSpec(
    name="visa",
    display_name="VisA",
    normal_name="normal",
    disk=DiskLayout(
        name="VisA",
        default_dir="visa",
        layout="""
<root>/split_csv/1cls.csv                      (object,split,label,image,mask)
<root>/<category>/image_anno.csv               (image,label,mask)
<root>/<category>/Data/Images/{Normal,Anomaly}/*.JPG
<root>/<category>/Data/Masks/Anomaly/*.png     (pixel value v = v-th defect of the category)
""",
        obtain="https://github.com/amazon-science/spot-diff (raw release "
        "https://amazon-visual-anomaly.s3.us-west-2.amazonaws.com/VisA_20220922.tar; root is the extracted "
        "folder, not anomalib's binarised visa_pytorch copy)",
    ),
    datamodule="anomalib_dapo.data.visa.TypedVisa",
    dataset="anomalib_dapo.data.visa.TypedVisaDataset",
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

MPDD = DatasetSpec(
    name="mpdd",
    display_name="MPDD",
    normal_name="good",
    disk=DiskLayout(
        name="MPDD",
        default_dir="MPDD",
        layout=_MVTEC_LAYOUT,
        obtain="https://github.com/stepanje/MPDD (manual download; root is the folder holding bracket_black/, ...)",
    ),
    datamodule="anomalib_dapo.data.mpdd.TypedMPDD",
    dataset="anomalib_dapo.data.mpdd.TypedMPDDDataset",
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

MAD_SIM = DatasetSpec(
    name="mad_sim",
    display_name="MAD-Sim",
    normal_name="good",
    disk=DiskLayout(
        name="MAD-Sim",
        default_dir="MAD-Sim",
        layout="""
<root>/<NNName>/train/good/*.png
<root>/<NNName>/test/{good,Burrs,Missing,Stains}/*.png
<root>/<NNName>/ground_truth/<Defect>/<N>_mask.png
""",
        obtain="https://github.com/EricLee0224/PAD (MAD-Sim download link in its README)",
    ),
    datamodule="anomalib_dapo.data.mad.MADSim",
    dataset="anomalib_dapo.data.mad.MADSimDataset",
    type_of=_MAD_TYPE_OF,
    products=MappingProxyType(dict.fromkeys(_MAD_SIM_TOYS, ("Burrs", "Missing", "Stains"))),
)

MAD_REAL = DatasetSpec(
    name="mad_real",
    display_name="MAD-Real",
    normal_name="good",
    disk=DiskLayout(
        name="MAD-Real",
        default_dir="MAD-Real",
        layout="""
<root>/<Name>/train/good/*.png                 (optional)
<root>/<Name>/test/{good,Missing|Stains}/*.png
<root>/<Name>/ground_truth/<Defect>/<N>.png
""",
        obtain="https://github.com/EricLee0224/PAD (MAD-Real download link in its README)",
    ),
    datamodule="anomalib_dapo.data.mad.MADReal",
    dataset="anomalib_dapo.data.mad.MADRealDataset",
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


REAL_IAD = DatasetSpec(
    name="real_iad",
    display_name="Real-IAD",
    normal_name="OK",
    disk=DiskLayout(
        name="Real-IAD",
        default_dir="Real-IAD",
        layout="""
<root>/realiad_<resolution>/<category>/{OK,NG/<CODE>}/S<NNNN>/*.jpg (+ *.png masks)
<root>/realiad_jsons/<category>.json           (or realiad_jsons/realiad_jsons/<category>.json)
""",
        obtain="https://huggingface.co/datasets/REAL-IAD/Real-IAD (access on request; unzip the images of the "
        "chosen resolution and the json archive under root)",
    ),
    datamodule="anomalib_dapo.data.realiad.TypedRealIAD",
    dataset="anomalib_dapo.data.realiad.TypedRealIADDataset",
    category_folder="realiad_{resolution}/{category}",
    resolutions=("256", "512", "1024", "raw"),  # anomalib's RESOLUTIONS (a test checks they agree)
    default_resolution="1024",
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
SYNTHETIC = DatasetSpec(
    name="synthetic",
    display_name="synthetic",
    normal_name="good",
    aliases=("syntheticdefects",),
    disk=DiskLayout(
        name="The synthetic multi-defect dataset",
        default_dir="SyntheticDefects",
        layout=_MVTEC_LAYOUT,
        obtain="anomalib_dapo.data.synthetic.generate_synthetic_dataset(root) (the SyntheticDefects datamodule "
        "runs it in prepare_data)",
    ),
    # Reading what is on disk: a report or a cross-dataset run by this name never generates data (the
    # SyntheticDefects datamodule, as a side of one, does).
    datamodule="anomalib_dapo.data.synthetic.WrittenSyntheticDefects",
    dataset="anomalib_dapo.data.synthetic.SyntheticDefectsDataset",
    type_of=_invert({name: (name,) for name in ("scratch", "hole", "stain", "missing")}),
    products=MappingProxyType(
        {
            "disc": ("scratch", "hole", "stain", "missing"),
            "grid": ("scratch", "stain", "missing"),
            "tile": ("scratch", "hole", "stain"),
        }
    ),
)

REGISTRY: Mapping[str, DatasetSpec] = MappingProxyType(
    {spec.name: spec for spec in (MVTEC_AD, VISA, MPDD, MAD_SIM, MAD_REAL, REAL_IAD, SYNTHETIC)}
)
"""Every dataset the package reads, by canonical name."""

DATASETS: tuple[str, ...] = tuple(REGISTRY)
