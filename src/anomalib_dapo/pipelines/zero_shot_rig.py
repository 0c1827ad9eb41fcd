"""The zero-shot-by-name rig: learn on some defect kinds, then find and name kinds never seen, by text alone.

A model's prompts and adapters learn on synthetic close-up views (:mod:`anomalib_dapo.data.corpus`) showing only
the ``SEEN_KINDS``; it is then tested on held-out views (another seed) of every kind, with the vocabulary of all
seven kinds. Per unseen kind ``k`` (``UNSEEN_KINDS``), over every test pixel:

* type AUROC: pixel AUROC of the type channel ``k`` of ``pred_type_map``, one against the rest;
* named right: share of ``k``'s pixels whose most probable defect channel is ``k`` (chance ``1/K``);
* labelled right: share of ``k``'s pixels whose ``pred_type_mask`` is ``k`` (normal competes too);

plus the binary pixel AUROC and AUPRO of the anomaly map and the image AUROC of the score. Every AUROC is
scikit-learn's, the AUPRO anomalib's (FPR up to 0.3). The rig ranks models on synthetic data: it says nothing
about accuracy on real products.
"""

import argparse
import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from anomalib.data import ImageBatch
from anomalib.metrics import AUPRO
from anomalib.models.image.winclip.torch_model import BACKBONE as WINCLIP_BACKBONE
from anomalib.models.image.winclip.torch_model import PRETRAINED as WINCLIP_PRETRAINED
from PIL import Image
from sklearn.metrics import roc_auc_score

from anomalib_dapo.backbone.clip import SYNTHETIC_TAG, TINY_BACKBONE
from anomalib_dapo.backbone.pretrain import IMAGE_SIZE, to_tensor
from anomalib_dapo.data.corpus import NORMAL, Views, make_views, product_states
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.synthetic import DEFECT_KINDS
from anomalib_dapo.models.components.typed_module import TypedPromptModule
from anomalib_dapo.models.components.vocabulary import GENERIC_STATE
from anomalib_dapo.models.dapo import Dapo
from anomalib_dapo.models.multiads import MultiAds
from anomalib_dapo.report.paper_report import new_version_dir
from anomalib_dapo.visualization.type_overlay import render_type_overlay

SEEN_KINDS: tuple[str, ...] = ("scratch", "hole", "stain", "missing")
UNSEEN_KINDS: tuple[str, ...] = ("crack", "burn", "contamination")
VOCABULARY: tuple[str, ...] = DEFECT_KINDS
DISCLAIMER = (
    "The rig ranks methods on synthetic data with a tiny CLIP pretrained on synthetic defects: "
    "it says nothing about accuracy on real products."
)
TRAIN_SEED, TEST_SEED = 0, 1


@dataclass(frozen=True)
class KindResult:
    """Figures of one defect kind on the test views."""

    type_auroc: float
    named_right: float
    labelled_right: float


@dataclass(frozen=True)
class RigResult:
    """Figures of one model on the rig; ``kinds`` per defect kind of the vocabulary present in the test views."""

    pixel_auroc: float
    pixel_aupro: float
    image_auroc: float
    kinds: dict[str, KindResult] = field(default_factory=dict)
    train_seconds: float = 0.0

    def mean(self, kinds: Sequence[str], name: str) -> float:
        """Mean of figure ``name`` over ``kinds``."""
        return float(np.mean([getattr(self.kinds[kind], name) for kind in kinds]))


def rig_views(train_per_state: int, test_per_state: int) -> tuple[Views, Views]:
    """Training views of the seen kinds (and normal) and test views of every kind (and normal)."""
    return (
        make_views(train_per_state, seed=TRAIN_SEED, kinds=SEEN_KINDS),
        make_views(test_per_state, seed=TEST_SEED),
    )


def type_masks(views: Views, vocabulary: Sequence[str]) -> torch.Tensor:
    """``(N, H, W)`` integer type masks: ``k`` (1-based index in ``vocabulary``) on defect pixels, 0 elsewhere."""
    index = torch.tensor([0 if kind == NORMAL else vocabulary.index(kind) + 1 for kind in views.kinds])
    return torch.from_numpy(views.masks).long() * index[:, None, None]


def batch_of(views: Views, rows: np.ndarray, vocabulary: Sequence[str]) -> TypedImageBatch:
    """A typed anomalib batch of the views ``rows`` (CLIP-normalised at their own size, as the pre-processor does).

    Views have no files: each gets a name for a path (MultiAds looks a training image's product up by its path
    and, finding none, prompts "object", as it does at test time here).
    """
    masks = torch.from_numpy(views.masks[rows])
    return TypedImageBatch(
        image=to_tensor(views.images[rows]),
        image_path=[f"{views.products[row]}/{views.kinds[row]}/{row}" for row in rows],
        gt_label=masks.flatten(1).any(dim=1),
        gt_mask=masks,
        gt_type_mask=type_masks(views, vocabulary)[rows],
    )


def train_on_seen(
    model: TypedPromptModule,
    views: Views,
    steps: int,
    batch_size: int = 16,
    seed: int = 0,
) -> float:
    """Train ``model``'s prompts and adapters with its own loss and optimiser on ``views``; return the seconds."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model.use_vocabulary((GENERIC_STATE,) if model.object_agnostic else SEEN_KINDS)
    model.train()
    optimizer = model.configure_optimizers()
    for _ in range(steps):
        batch = batch_of(views, rng.choice(len(views.kinds), batch_size, replace=False), SEEN_KINDS)
        loss = model.training_loss(batch, model.training_type_mask(batch))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def scored_groups(views: Views, product_filter: bool) -> list[tuple[np.ndarray, tuple[str, ...]]]:
    """The rows of ``views`` scored together, each group with its vocabulary.

    Every row with all seven kinds, or with ``product_filter`` (MultiADS-F, §4.2.4) each product's rows with the
    kinds its product can show.
    """
    if not product_filter:
        return [(np.arange(len(views.kinds)), VOCABULARY)]
    products = np.asarray(views.products)
    return [(np.flatnonzero(products == name), product_states(name)[1:]) for name in dict.fromkeys(views.products)]


@torch.no_grad()
def evaluate(model: TypedPromptModule, views: Views, product_filter: bool = False, batch_size: int = 64) -> RigResult:
    """Score ``views`` with the full vocabulary (or each product's, ``product_filter``) and compute the rig's figures.

    A type channel that a product's vocabulary leaves out has probability 0 on that product's pixels. An
    object-agnostic model scores its one generic state: it gets the binary figures only.
    """
    model.eval()
    count, size = views.masks.shape[0], views.masks.shape[1:]
    type_map = torch.zeros(count, len(VOCABULARY) + 1, *size)
    anomaly_map, scores = torch.zeros(count, *size), torch.zeros(count)
    groups = [(np.arange(count), (GENERIC_STATE,))] if model.object_agnostic else scored_groups(views, product_filter)
    for rows, vocabulary in groups:
        model.use_vocabulary(vocabulary)
        channels = torch.tensor([0, *(VOCABULARY.index(kind) + 1 for kind in vocabulary if kind in VOCABULARY)])
        for start in range(0, len(rows), batch_size):
            part = torch.from_numpy(rows[start : start + batch_size])
            outputs = model.model(to_tensor(views.images[part.numpy()]))
            if not model.object_agnostic:
                type_map[part[:, None], channels[None, :]] = outputs.pred_type_map
            anomaly_map[part] = outputs.anomaly_map.reshape(len(part), *size)
            scores[part] = outputs.pred_score.reshape(len(part))
    truth = type_masks(views, VOCABULARY).numpy().ravel()
    probs = type_map.permute(1, 0, 2, 3).flatten(1).numpy()  # (K + 1, pixels)
    named = probs[1:].argmax(axis=0) + 1
    labelled = probs.argmax(axis=0)
    kinds = {}
    present = set() if model.object_agnostic else set(views.kinds)
    for kind in sorted(present - {NORMAL}, key=VOCABULARY.index):
        k = VOCABULARY.index(kind) + 1
        pixels = truth == k
        kinds[kind] = KindResult(
            type_auroc=float(roc_auc_score(pixels, probs[k])),
            named_right=float((named[pixels] == k).mean()),
            labelled_right=float((labelled[pixels] == k).mean()),
        )
    defective = np.asarray(views.kinds) != NORMAL
    return RigResult(
        pixel_auroc=float(roc_auc_score(truth > 0, anomaly_map.numpy().ravel())),
        pixel_aupro=aupro(views, anomaly_map),
        image_auroc=float(roc_auc_score(defective, scores.numpy())),
        kinds=kinds,
    )


def aupro(views: Views, anomaly_map: torch.Tensor) -> float:
    """The AUPRO of anomalib (per-region overlap up to a false positive rate of 0.3) of ``(N, H, W)`` anomaly maps."""
    metric = AUPRO(fields=["anomaly_map", "gt_mask"])
    masks = torch.from_numpy(views.masks)
    metric.update(ImageBatch(image=to_tensor(views.images), gt_mask=masks, anomaly_map=anomaly_map))
    return float(metric.compute())


@dataclass(frozen=True)
class Variant:
    """One row of the side-by-side table: a model class and its arguments beyond the tiny architecture."""

    name: str
    model: type[TypedPromptModule]
    kwargs: dict = field(default_factory=dict)

    @property
    def k_shot(self) -> int:
        """Normal reference views per product stored before the test (0: zero-shot)."""
        return self.kwargs.get("k_shot", 0)

    @property
    def product_filter(self) -> bool:
        """Whether each product is scored with its own kinds only (MultiADS-F) rather than all seven."""
        return self.kwargs.get("product_filter", False)

    @property
    def settings(self) -> str:
        """The arguments that set this row apart from its model's defaults, as ``name=value``."""
        return ", ".join(f"{name}={value}" for name, value in self.kwargs.items()) or "defaults"


TINY_ARCHITECTURE = {"backbone": TINY_BACKBONE, "image_size": IMAGE_SIZE, "adapter_layers": [2, 4], "visualizer": False}
"""The tiny CLIP's geometry: 64-pixel views, adapters on its layers 2 and 4."""


def build(variant: Variant, pretrained: str | None, learning_rate: float = 1e-3) -> TypedPromptModule:
    """The variant's model on the tiny CLIP with ``pretrained`` weights (``synthetic`` or ``None`` = random)."""
    kwargs = {**TINY_ARCHITECTURE, "pretrained": pretrained, "learning_rate": learning_rate, **variant.kwargs}
    if variant.model is Dapo:
        kwargs.setdefault("text_depth", 4)
    return variant.model(**kwargs)


@torch.no_grad()
def store_references(model: TypedPromptModule, views: Views, k_shot: int) -> None:
    """Fill the model's few-shot memory with the first ``k_shot`` normal views of each product of ``views``."""
    kinds, products = np.asarray(views.kinds), np.asarray(views.products)
    rows = np.concatenate(
        [np.flatnonzero((kinds == NORMAL) & (products == product))[:k_shot] for product in dict.fromkeys(products)]
    )
    model.eval()
    model.model.references.store(model.model.encode_image(to_tensor(views.images[rows]))[1])


def run_variant(
    variant: Variant,
    pretrained: str | None,
    train: Views,
    test: Views,
    steps: int,
    seed: int = 0,
) -> tuple[RigResult, TypedPromptModule]:
    """Train the variant on the seen kinds and evaluate it on every kind; the result carries the training time."""
    torch.manual_seed(seed)
    model = build(variant, pretrained)
    seconds = train_on_seen(model, train, steps, seed=seed)
    if variant.k_shot:
        store_references(model, train, variant.k_shot)
    result = evaluate(model, test, variant.product_filter)
    return RigResult(result.pixel_auroc, result.pixel_aupro, result.image_auroc, result.kinds, seconds), model


def variants() -> dict[str, Variant]:
    """The rows the rig can run, by name: the methods side by side, then the paper's ablations of Dapo.

    The ablations change one setting of ``DEFAULT_VARIANT`` (λ = 4, l = 5, clip token initialisation, progressive).
    """
    projection = {"adapter_init": "projection"}
    rows = [
        Variant("Dapo (paper defaults)", Dapo),
        Variant("Dapo, adapters from projection", Dapo, projection),
        Variant("Dapo, plain prefix tuning", Dapo, {**projection, "progressive": False}),
        Variant("Dapo object-agnostic", Dapo, {**projection, "object_agnostic": True}),
        Variant("Dapo, adapters from projection, 2-shot", Dapo, {**projection, "k_shot": 2}),
        Variant("MultiAds", MultiAds),
        Variant("MultiAds-F", MultiAds, {"product_filter": True}),
        Variant("MultiAds, 2-shot", MultiAds, {"k_shot": 2}),
    ]
    rows += [Variant(f"ablation λ={value}", Dapo, {**projection, "lambda_local": value}) for value in (1, 2, 3)]
    rows += [Variant(f"ablation l={value}", Dapo, {**projection, "prompt_length": value}) for value in (7, 10)]
    rows += [
        Variant(f"ablation init={init}", Dapo, {**projection, "token_init": init}) for init in ("random", "offset")
    ]
    return {row.name: row for row in rows}


WINCLIP = "anomalib WinClip"
NOT_RUN: dict[str, str] = {
    WINCLIP: f"NOT RUN: anomalib's WinClipModel builds its own open_clip {WINCLIP_BACKBONE} with the "
    f"{WINCLIP_PRETRAINED} weights and takes no backbone argument, so it cannot run on the tiny CLIP's weights",
}
"""Rows of methods the rig cannot run on its backbone, each with the reason, so the table shows them marked."""

DEFAULT_VARIANT = "Dapo, adapters from projection"


FIGURES = ("pixel AUROC", "pixel AUPRO", "image AUROC")
"""The binary columns of the table."""
MEANS = {"type AUROC": "type_auroc", "named right": "named_right", "labelled right": "labelled_right"}
"""The columns of the means over the seen and over the unseen kinds, and the :class:`KindResult` field of each."""


def result_row(name: str, weights: str, settings: str, result: RigResult | None) -> dict[str, str]:
    """One table row: binary figures, per kind ``type AUROC / named right``, then the seen and unseen means.

    ``result`` ``None``: a row the rig did not run (``settings`` says why), every figure ``–``.
    """
    row = {"model": name, "weights": weights, "settings": settings, **dict.fromkeys(FIGURES, "–")}
    row.update({kind_column(kind): "–" for kind in VOCABULARY})
    for group in ("seen", "unseen"):
        row.update({f"{group} {column}": "–" for column in MEANS})
    row["train s"] = "–"
    if result is None:
        return row
    binary = (result.pixel_auroc, result.pixel_aupro, result.image_auroc)
    row.update({column: f"{value:.3f}" for column, value in zip(FIGURES, binary, strict=True)})
    for kind, figures in result.kinds.items():
        row[kind_column(kind)] = f"{figures.type_auroc:.2f} / {figures.named_right:.2f}"
    for group, kinds in (("seen", SEEN_KINDS), ("unseen", UNSEEN_KINDS)):
        if all(kind in result.kinds for kind in kinds):
            row.update({f"{group} {column}": f"{result.mean(kinds, name):.3f}" for column, name in MEANS.items()})
    row["train s"] = f"{result.train_seconds:.0f}"
    return row


def kind_column(kind: str) -> str:
    """The table's column of ``kind``, which says whether the kind was seen in training."""
    return f"{kind} ({'seen' if kind in SEEN_KINDS else 'unseen'})"


def summary(row: dict[str, str]) -> str:
    """A row in one console line: the binary figures, then the unseen kinds, named by text only."""
    unseen = ", ".join(f"{kind} {row[kind_column(kind)]}" for kind in UNSEEN_KINDS)
    return (
        f"{row['model']} [{row['weights']}]: pixel AUROC {row['pixel AUROC']}, AUPRO {row['pixel AUPRO']}, "
        f"image AUROC {row['image AUROC']} | unseen (type AUROC / named right): {unseen}; mean "
        f"{row['unseen type AUROC']} / {row['unseen named right']} (chance {1 / len(VOCABULARY):.2f})"
    )


def write_table(rows: Sequence[dict[str, str]], output: Path, header: Sequence[str]) -> Path:
    """Write ``table.md`` (``header`` lines, then the table) and ``table.csv`` into a new ``<output>/v<N>``."""
    folder = new_version_dir(output)
    columns = list(rows[0])
    lines = [*header, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row[column] for column in columns) + " |" for row in rows]
    (folder / "table.md").write_text("\n".join(lines) + "\n")
    with (folder / "table.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, columns)
        writer.writeheader()
        writer.writerows(rows)
    return folder


@torch.no_grad()
def save_pictures(model: TypedPromptModule, views: Views, folder: Path, per_kind: int) -> None:
    """For ``per_kind`` test views of each unseen kind: the image, its true types and the predicted types."""
    model.use_vocabulary(VOCABULARY)
    model.eval()
    kinds = np.asarray(views.kinds)
    for kind in UNSEEN_KINDS:
        for number, row in enumerate(np.flatnonzero(kinds == kind)[:per_kind]):
            outputs = model.model(to_tensor(views.images[row : row + 1]))
            image = Image.fromarray(views.images[row]).resize((256, 256), Image.Resampling.NEAREST)
            truth = render_type_overlay(image, _resize(type_masks(views, VOCABULARY)[row]), VOCABULARY, font_size=14)
            predicted = render_type_overlay(image, _resize(outputs.pred_type_mask[0]), VOCABULARY, font_size=14)
            sheet = Image.new("RGB", (truth.width + predicted.width + 8, max(truth.height, predicted.height)), "white")
            sheet.paste(truth, (0, 0))
            sheet.paste(predicted, (truth.width + 8, 0))
            sheet.save(folder / f"{kind}_{number:02d}_truth_vs_predicted.png")


def _resize(type_mask: torch.Tensor) -> torch.Tensor:
    """A type mask at the pictures' 256 pixels (nearest: types are labels)."""
    return F.interpolate(type_mask[None, None].float(), size=(256, 256), mode="nearest")[0, 0].long()


def main(argv: Sequence[str] | None = None) -> None:
    """``dapo-zero-shot-rig``: run rig variants on the shipped and the random tiny CLIP and write one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=[DEFAULT_VARIANT], help="row names, or 'all'")
    parser.add_argument("--steps", type=int, default=150, help="training steps of each variant (batch 16)")
    parser.add_argument("--train-per-state", type=int, default=20, help="training views per (product, state)")
    parser.add_argument("--test-per-state", type=int, default=10, help="test views per (product, state)")
    parser.add_argument("--random-beside", nargs="*", default=[DEFAULT_VARIANT], help="rows run on random weights too")
    parser.add_argument("--pictures", type=int, default=2, help="pictures per unseen kind, of the first row")
    parser.add_argument("--output", type=Path, default=Path("results/zero_shot_rig"))
    args = parser.parse_args(argv)
    table = variants()
    names = [*table, *NOT_RUN] if args.variants == ["all"] else args.variants
    unknown = [name for name in names if name not in table and name not in NOT_RUN]
    unknown += [name for name in args.random_beside if name not in table]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from: {', '.join([*table, *NOT_RUN])}")
    print(DISCLAIMER)
    print(f"backbone: {TINY_BACKBONE} with the '{SYNTHETIC_TAG}' weights (and random weights where marked)")
    print(f"seen kinds {', '.join(SEEN_KINDS)}; unseen kinds {', '.join(UNSEEN_KINDS)} (named by text only)")
    train, test = rig_views(args.train_per_state, args.test_per_state)
    runs = [(name, SYNTHETIC_TAG) for name in names] + [(name, None) for name in args.random_beside]
    rows, pictured = [], None
    for name, pretrained in runs:
        if name in NOT_RUN:
            rows.append(result_row(name, "–", NOT_RUN[name], None))
            print(f"{name}: {NOT_RUN[name]}", flush=True)
            continue
        variant = table[name]
        result, model = run_variant(variant, pretrained, train, test, args.steps)
        pictured = pictured or model
        rows.append(result_row(name, pretrained or "random", variant.settings, result))
        print(summary(rows[-1]), flush=True)
    header = [
        f"# Zero-shot-by-name rig ({TINY_BACKBONE} backbone, '{SYNTHETIC_TAG}' weights unless marked random)",
        "",
        f"**{DISCLAIMER}**",
        "",
        f"Seen kinds: {', '.join(SEEN_KINDS)}. Unseen kinds: {', '.join(UNSEEN_KINDS)}. Each kind's cell is "
        "`type AUROC / named right` (chance of named right: 1/7); `settings` are the arguments that differ from "
        "the model's defaults; the ablation rows change one setting of "
        f"'{DEFAULT_VARIANT}' (λ=4, l=5, token_init=clip, progressive). "
        f"{len(train.kinds)} training views, {len(test.kinds)} test views, {args.steps} steps of batch 16 per model.",
    ]
    folder = write_table(rows, args.output, header)
    if args.pictures and pictured is not None and not pictured.object_agnostic:
        save_pictures(pictured, test, folder, args.pictures)
    print(f"table and pictures: {folder}")  # returns None: the console script's exit status is 0
