"""The numbers the DAPO paper publishes (Nazer et al., 2025), transcribed as printed, and the tables they fill.

Every value is a percentage exactly as the paper prints it, with the table it comes from. Nothing is derived or
filled in: an object, defect type, metric or dataset the paper does not print is absent here (the report shows
it as n/a). Objects and defect types are written as the paper prints them and resolved once, at import, to our
names (the on-disk category and the knowledge-base defect type), so a transcription that matches nothing fails
loudly. The paper's "Good"/"Normal" state is ``normal`` and its "Mean" rows are ``mean``.

The paper is not always self-consistent, and each table is kept as printed: VisA image AUROC is 84.9 in Table 3
but 83.7 in Table 8's Mean row.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from anomalib_dapo import knowledge

MEAN = "mean"
"""Row of the mean over objects."""
NORMAL = "normal"
"""Row of the normal state in per-defect-type tables."""

METRICS: Mapping[str, str] = MappingProxyType(
    {
        "image_auroc": "I-AUROC",
        "image_ap": "I-AP",
        "image_f1": "I-F1max",
        "pixel_auroc": "P-AUROC",
        "pixel_aupro": "P-AUPRO",
        "type_auroc": "AUROC",
        "type_ap": "AP",
        "type_f1": "F1",
        "label_precision": "Precision",
        "label_recall": "Recall",
        "label_f1": "F1",
    }
)
"""Metric keys of the tables and their column headers (the paper's abbreviations)."""


@dataclass(frozen=True)
class TableSpec:
    """The shape of one paper table: what its rows are and which metrics its columns hold, in the paper's order.

    Attributes:
        title: Heading of the table in the report.
        rows: ``"mean"`` (one row, the mean over objects), ``"object"`` (one row per object, then the mean)
            or ``"defect type"`` (one row per state, normal first).
        columns: Metric keys of :data:`METRICS`.

    """

    title: str
    rows: str
    columns: tuple[str, ...]


TABLES: Mapping[str, TableSpec] = MappingProxyType(
    {
        "binary_mean": TableSpec(
            "Binary anomaly detection and segmentation, mean over objects",
            "mean",
            ("image_auroc", "image_ap", "pixel_auroc", "pixel_aupro"),
        ),
        "binary_objects": TableSpec(
            "Binary anomaly detection and segmentation per object",
            "object",
            ("pixel_auroc", "pixel_aupro", "image_auroc", "image_ap", "image_f1"),
        ),
        "type_mean": TableSpec(
            "Multi-type anomaly segmentation (pixel, macro over states), mean over objects",
            "mean",
            ("type_auroc", "type_ap", "type_f1"),
        ),
        "type_objects": TableSpec(
            "Multi-type anomaly segmentation (pixel, macro over states) per object",
            "object",
            ("type_auroc", "type_f1", "type_ap"),
        ),
        "type_defects": TableSpec(
            "Multi-type anomaly segmentation per defect type (one-vs-rest, mean over the objects showing it)",
            "defect type",
            ("type_auroc", "type_f1"),
        ),
        "label_objects": TableSpec(
            "Image-level multi-label defect classification (eq. 11, macro over defect types) per object",
            "object",
            ("label_precision", "label_recall", "label_f1"),
        ),
    }
)
"""Every table of a report, keyed by its file name."""


@dataclass(frozen=True)
class Published:
    """The paper's values for one table of one dataset.

    Attributes:
        source: The paper table they come from, e.g. ``"Table 8"``.
        rows: Row (``mean``, a category or a defect type) -> metric key -> percentage.

    """

    source: str
    rows: Mapping[str, Mapping[str, float]]


# The paper abbreviates some Real-IAD objects beyond recognition; every other printed name matches its category
# once case, separators and MAD-Sim's numeric prefixes are ignored.
_PRINTED_ALIASES = MappingProxyType(
    {
        "buttonbat": "button_battery",
        "phonebat": "phone_battery",
        "porcelain": "porcelain_doll",
        "terminal": "terminalblock",
        "rolledstrip": "rolled_strip_base",
        "simcard": "sim_card_set",
        "woodbeads": "wooden_beads",
        "transistor": "transistor1",
    }
)


def _object_key(dataset: str, printed: str) -> str:
    """Our category for an object name as the paper prints it (``Mean`` -> ``mean``)."""
    if printed == "Mean":
        return MEAN
    wanted = knowledge.name_key(_PRINTED_ALIASES.get(knowledge.name_key(printed), printed))
    matches = [
        c
        for c in knowledge.categories(dataset)
        if wanted in {knowledge.name_key(c), knowledge.name_key(c.lstrip("0123456789"))}
    ]
    if len(matches) != 1:
        msg = f"Printed object {printed!r} matches {matches or 'no'} {dataset} categories."
        raise ValueError(msg)
    return matches[0]


def _type_key(dataset: str, printed: str) -> str:
    """Our defect type for a defect name as the paper prints it (``Good``/``Normal`` -> ``normal``)."""
    name = printed.lower()
    if name in {"good", "normal"}:
        return NORMAL
    if name not in knowledge.vocabulary(dataset):
        msg = f"Printed defect type {printed!r} is not a {dataset} defect type."
        raise ValueError(msg)
    return name


def _published(
    source: str, dataset: str, table: str, printed: Mapping[str, tuple[float, ...]]
) -> tuple[str, Published]:
    """One paper table: ``printed`` maps each printed row name to its values in the order of ``TABLES[table]``."""
    spec = TABLES[table]
    key = _type_key if spec.rows == "defect type" else _object_key
    rows = {}
    for name, values in printed.items():
        if len(values) != len(spec.columns):
            msg = f"{source} row {name!r}: {len(values)} values for columns {spec.columns}."
            raise ValueError(msg)
        row = key(dataset, name)
        if row in rows:
            msg = f"{source}: two printed rows resolve to {row!r}."
            raise ValueError(msg)
        rows[row] = MappingProxyType(dict(zip(spec.columns, values, strict=True)))
    return table, Published(source, MappingProxyType(rows))


def _dataset(*tables: tuple[str, Published]) -> Mapping[str, Published]:
    return MappingProxyType(dict(tables))


PUBLISHED: Mapping[str, Mapping[str, Published]] = MappingProxyType(
    {
        "visa": _dataset(
            _published("Table 3", "visa", "binary_mean", {"Mean": (84.9, 87.1, 94.3, 84.0)}),
            _published(
                "Table 8",
                "visa",
                "binary_objects",
                {
                    "Candle": (98.3, 91.5, 89.3, 91.9, 82.0),
                    "Capsules": (96.6, 73.1, 86.3, 92.5, 84.4),
                    "Cashew": (88.0, 79.5, 85.1, 94.1, 85.4),
                    "Chewinggum": (99.5, 89.5, 95.9, 98.4, 95.3),
                    "Fryum": (92.9, 84.2, 92.9, 96.6, 91.0),
                    "Macaroni1": (98.7, 90.7, 74.8, 79.0, 71.5),
                    "Macaroni2": (97.0, 79.6, 59.5, 61.1, 69.1),
                    "PCB1": (90.3, 86.2, 75.1, 79.4, 71.2),
                    "PCB2": (89.2, 75.0, 79.4, 80.5, 75.1),
                    "PCB3": (90.4, 78.3, 69.4, 74.6, 66.9),
                    "PCB4": (94.8, 86.9, 97.0, 97.1, 91.9),
                    "Pipe Fryum": (96.4, 93.7, 99.8, 99.9, 98.5),
                    "Mean": (94.3, 84.0, 83.7, 87.1, 81.9),
                },
            ),
            _published("Table 1", "visa", "type_mean", {"Mean": (88.9, 25.0, 22.2)}),
            _published(
                "Table 14",
                "visa",
                "type_objects",
                {
                    "Candle": (90.7, 13.9, 16.0),
                    "Capsules": (77.0, 54.8, 50.9),
                    "Cashew": (89.6, 18.4, 25.0),
                    "Chewinggum": (96.7, 27.2, 42.4),
                    "Fryum": (91.4, 18.6, 20.9),
                    "Macaroni1": (88.2, 20.0, 20.1),
                    "Macaroni2": (77.8, 16.7, 16.7),
                    "PCB1": (90.3, 20.1, 23.5),
                    "PCB2": (88.6, 20.1, 21.7),
                    "PCB3": (85.6, 20.0, 20.9),
                    "PCB4": (93.9, 15.7, 16.2),
                    "Pipe fryum": (97.0, 20.9, 26.3),
                    "Mean": (88.9, 22.2, 25.0),
                },
            ),
            _published(
                "Table 14",
                "visa",
                "type_defects",
                {
                    "Normal": (86.79, 99.9),
                    "Bent": (90.83, 1.08),
                    "Breakage": (97.05, 20.8),
                    "Bubble": (77.03, 1.71),
                    "Burnt": (95.64, 8.46),
                    "Chip": (81.96, 0.17),
                    "Crack": (83.75, 0.14),
                    "Damage": (93.24, 1.63),
                    "Extra": (95.33, 3.49),
                    "Hole": (95.24, 1.49),
                    "Melded": (95.97, 9.51),
                    "Melt": (93.47, 7.54),
                    "Missing": (87.62, 13.3),
                    "Particle": (99.03, 3.10),
                    "Scratch": (89.73, 1.89),
                    "Spot": (87.96, 1.11),
                    "Stuck": (86.70, 9.04),
                    "Weird wick": (79.04, 0.05),
                    "Wrong place": (93.24, 0.29),
                },
            ),
            _published(
                "Table 11",
                "visa",
                "label_objects",
                {
                    "Candle": (8.2, 99.1, 15.1),
                    "Capsules": (88.1, 81.7, 83.8),
                    "Cashew": (16.6, 76.1, 26.6),
                    "Chewinggum": (25.5, 97.7, 39.2),
                    "Fryum": (18.4, 71.1, 28.6),
                    "Macaroni1": (11.5, 99.3, 20.2),
                    "Macaroni2": (8.8, 100.0, 15.5),
                    "PCB1": (13.1, 80.3, 21.6),
                    "PCB2": (13.1, 98.5, 22.2),
                    "PCB3": (12.0, 100.0, 21.1),
                    "PCB4": (5.2, 100.0, 9.5),
                    "Pipe Fryum": (19.5, 99.3, 32.0),
                },
            ),
        ),
        "mpdd": _dataset(
            _published("Table 3", "mpdd", "binary_mean", {"Mean": (81.2, 83.6, 95.1, 84.4)}),
            _published(
                "Table 8",
                "mpdd",
                "binary_objects",
                {
                    "Bracket Black": (96.5, 90.3, 73.6, 78.9, 81.5),
                    "Bracket Brown": (91.1, 74.4, 59.6, 77.3, 80.6),
                    "Bracket White": (97.1, 87.5, 85.4, 83.1, 81.7),
                    "Connector": (94.7, 82.9, 75.2, 65.0, 63.4),
                    "Metal Plate": (92.1, 75.3, 96.1, 98.7, 93.5),
                    "Tubes": (99.0, 96.1, 97.0, 98.8, 95.5),
                    "Mean": (95.1, 84.4, 81.2, 83.6, 82.7),
                },
            ),
            _published("Table 1", "mpdd", "type_mean", {"Mean": (95.5, 53.6, 50.0)}),
            _published(
                "Table 13",
                "mpdd",
                "type_objects",
                {
                    "Bracket black": (97.1, 37.9, 35.9),
                    "Bracket brown": (91.1, 33.4, 34.6),
                    "Bracket white": (97.0, 38.5, 37.0),
                    "Connector": (95.2, 68.2, 67.4),
                    "Metal plate": (93.7, 41.6, 63.5),
                    "Tubes": (98.8, 80.2, 83.3),
                    "Mean": (95.5, 50.0, 53.6),
                },
            ),
            _published(
                "Table 13",
                "mpdd",
                "type_defects",
                {
                    "Good": (95.66, 99.86),
                    "Bent": (90.37, 2.85),
                    "Defective painting": (93.22, 0.06),
                    "Flattening": (98.79, 66.57),
                    "Hole": (98.62, 1.14),
                    "Mismatch": (93.71, 17.94),
                    "Rust": (90.12, 28.37),
                    "Scratch": (97.35, 26.79),
                },
            ),
            _published(
                "Table 11",
                "mpdd",
                "label_objects",
                {
                    "Bracket Black": (36.0, 94.3, 49.5),
                    "Bracket Brown": (35.3, 70.6, 45.5),
                    "Bracket White": (27.4, 100.0, 43.0),
                    "Connector": (15.9, 50.0, 24.1),
                    "Metal Plate": (24.4, 100.0, 38.5),
                    "Tubes": (84.5, 51.6, 43.9),
                },
            ),
        ),
        "real_iad": _dataset(
            _published("Table 3", "real_iad", "binary_mean", {"Mean": (84.3, 84.0, 96.4, 80.3)}),
            _published(
                "Table 10",
                "real_iad",
                "binary_objects",
                {
                    "Audiojack": (97.3, 79.5, 62.2, 55.1, 52.5),
                    "VCPill": (98.7, 89.4, 90.6, 88.2, 78.9),
                    "Switch": (85.6, 71.1, 81.3, 90.2, 80.7),
                    "USB Adaptor": (94.4, 57.0, 76.8, 73.2, 69.5),
                    "Eraser": (99.2, 86.5, 87.0, 87.6, 79.7),
                    "Fire Hood": (99.1, 93.7, 95.8, 90.4, 85.1),
                    "End Cap": (93.7, 72.0, 68.1, 75.4, 75.5),
                    "Phone Bat.": (98.4, 83.4, 89.1, 91.9, 84.9),
                    "Wood Beads": (97.3, 48.7, 71.4, 78.2, 72.2),
                    "PCB": (95.8, 78.5, 79.2, 85.4, 81.0),
                    "Mint": (95.3, 58.2, 69.9, 79.0, 74.8),
                    "Plastic Plug": (98.3, 85.9, 88.4, 88.1, 79.1),
                    "Transistor": (92.8, 71.8, 73.0, 84.0, 78.3),
                    "Regulator": (96.2, 73.6, 64.9, 38.8, 39.2),
                    "Toy": (82.6, 62.9, 77.3, 88.7, 81.2),
                    "U-Block": (97.9, 81.7, 88.2, 80.5, 71.7),
                    "Sim Card": (99.5, 93.7, 96.0, 97.3, 92.7),
                    "Plastic Nut": (95.3, 67.2, 84.4, 64.7, 56.4),
                    "Button Bat.": (97.0, 76.3, 79.4, 86.4, 77.7),
                    "Toothbrush": (96.3, 87.6, 87.7, 93.0, 84.3),
                    "Mounts": (99.7, 97.6, 91.6, 85.5, 82.7),
                    "Tape": (99.6, 94.9, 98.5, 98.0, 92.7),
                    "Woodstick": (99.1, 90.5, 88.3, 74.2, 67.9),
                    "Bottle Cap": (97.9, 84.8, 86.4, 87.2, 77.8),
                    "Porcelain": (97.4, 85.1, 93.1, 89.7, 81.2),
                    "Toy Brick": (98.8, 86.6, 84.7, 83.9, 75.0),
                    "Rolled Strip": (99.2, 93.8, 94.3, 97.4, 91.3),
                    "Terminal": (97.8, 84.6, 94.4, 96.8, 91.6),
                    "Zipper": (93.0, 83.6, 97.5, 99.0, 95.8),
                    "USB": (97.6, 88.8, 90.3, 91.7, 83.4),
                    "Mean": (96.4, 80.3, 84.3, 84.0, 77.8),
                },
            ),
        ),
        "mad_sim": _dataset(
            _published(
                "Table 9",
                "mad_sim",
                "binary_objects",
                {
                    "Elephant": (67.6, 57.9, 61.2, 91.7, 94.0),
                    "Owl": (90.0, 65.6, 54.9, 89.4, 93.0),
                    "Obesobeso": (93.1, 63.5, 59.8, 91.2, 94.1),
                    "Sabertooth": (88.3, 56.0, 53.2, 87.9, 93.1),
                    "Zalika": (83.7, 52.1, 55.9, 89.3, 93.3),
                    "Mallard": (85.2, 50.0, 58.1, 93.7, 95.6),
                    "Bear": (89.3, 69.8, 64.5, 91.7, 94.1),
                    "Cat": (92.4, 56.1, 48.0, 89.5, 94.5),
                    "Pig": (93.3, 61.6, 60.0, 91.7, 94.0),
                    "Puppy": (85.5, 60.9, 60.5, 90.2, 92.9),
                    "Parrot": (81.8, 65.4, 54.7, 87.2, 91.8),
                    "Pheonix": (81.6, 55.0, 52.9, 90.4, 94.4),
                    "Gorilla": (91.2, 61.2, 60.4, 94.3, 96.0),
                    "Unicorn": (83.5, 50.7, 51.7, 92.4, 95.9),
                    "Bird": (89.9, 47.8, 55.9, 92.0, 94.4),
                    "Swan": (87.2, 56.4, 51.9, 88.5, 93.3),
                    "Whale": (87.7, 69.5, 53.9, 89.6, 94.4),
                    "Scorpion": (89.0, 72.3, 56.5, 89.5, 92.9),
                    "Sheep": (92.8, 57.9, 56.9, 90.6, 93.7),
                    "Turtle": (89.5, 61.3, 76.4, 97.2, 95.4),
                    "Mean": (87.1, 59.5, 57.4, 90.9, 94.0),
                },
            ),
            _published("Table 1", "mad_sim", "type_mean", {"Mean": (91.9, 33.3, 25.0)}),
            _published(
                "Table 12",
                "mad_sim",
                "type_objects",
                {
                    "Bear": (93.7, 25.0, 37.6),
                    "Bird": (94.2, 25.0, 27.9),
                    "Cat": (94.9, 25.0, 27.0),
                    "Elephant": (81.7, 24.9, 33.1),
                    "Gorilla": (93.5, 24.9, 29.6),
                    "Mallard": (91.4, 24.9, 36.8),
                    "Obesobeso": (94.7, 25.0, 27.2),
                    "Owl": (93.4, 24.9, 34.6),
                    "Parrot": (89.3, 25.0, 34.9),
                    "Pheonix": (87.6, 24.9, 25.9),
                    "Pig": (95.4, 24.9, 32.3),
                    "Puppy": (90.7, 25.1, 44.3),
                    "Sabertooth": (93.2, 24.9, 30.5),
                    "Scorpion": (92.5, 25.1, 32.0),
                    "Sheep": (95.6, 24.9, 36.6),
                    "Swan": (92.2, 24.9, 27.6),
                    "Turtle": (94.3, 25.0, 39.5),
                    "Unicorn": (89.4, 24.9, 39.8),
                    "Whale": (92.1, 25.3, 38.0),
                    "Zalika": (88.8, 24.9, 31.6),
                    "Mean": (91.9, 25.0, 33.3),
                },
            ),
            # Table 2 is the only source of MAD defect-wise values, and prints only these two types.
            _published("Table 2", "mad_sim", "type_defects", {"Burrs": (95.4, 1.4), "Stains": (99.2, 30.0)}),
        ),
        "mad_real": _dataset(
            _published(
                "Table 9",
                "mad_real",
                "binary_objects",
                {
                    "Bear": (99.7, 98.6, 79.2, 95.0, 94.1),
                    "Bird": (78.0, 40.3, 54.5, 85.5, 89.8),
                    "Elephant": (78.0, 47.6, 78.9, 93.7, 88.9),
                    "Parrot": (60.7, 40.1, 75.7, 95.1, 90.2),
                    "Pig": (83.8, 46.9, 27.1, 71.4, 87.2),
                    "Puppy": (99.6, 96.4, 99.0, 99.8, 97.6),
                    "Scorpion": (67.8, 21.5, 76.5, 95.0, 90.2),
                    "Turtle": (99.6, 97.0, 100.0, 100.0, 100.0),
                    "Unicorn": (83.1, 52.8, 68.6, 91.1, 89.4),
                    "Whale": (98.8, 91.4, 92.5, 98.8, 95.2),
                    "Mean": (84.9, 63.3, 75.2, 92.6, 92.3),
                },
            ),
            _published("Table 1", "mad_real", "type_mean", {"Mean": (86.1, 58.5, 58.5)}),
            _published(
                "Table 12",
                "mad_real",
                "type_objects",
                {
                    "Bear": (98.7, 62.3, 60.6),
                    "Bird": (80.8, 49.8, 51.0),
                    "Elephant": (81.2, 50.8, 50.9),
                    "Parrot": (69.4, 49.8, 50.4),
                    "Pig": (91.0, 49.9, 51.5),
                    "Puppy": (98.8, 75.1, 77.0),
                    "Scorpion": (65.0, 49.6, 50.6),
                    "Turtle": (99.3, 74.7, 72.4),
                    "Unicorn": (78.7, 49.9, 50.3),
                    "Whale": (98.0, 72.4, 70.8),
                    "Mean": (86.1, 58.5, 58.5),
                },
            ),
            _published("Table 2", "mad_real", "type_defects", {"Stains": (98.7, 40.4), "Missing": (77.7, 1.8)}),
        ),
    }
)
"""Dataset key -> table name -> the paper's values. Datasets the paper reports no target numbers for (MVTec-AD,
which is its training set, and the built-in synthetic set) have none."""


def published(dataset: str) -> Mapping[str, Published]:
    """The paper's tables for a dataset (any spelling the knowledge base accepts); empty if it publishes none."""
    return PUBLISHED.get(knowledge.resolve_dataset(dataset), MappingProxyType({}))
