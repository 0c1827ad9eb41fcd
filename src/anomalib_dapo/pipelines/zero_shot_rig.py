"""The zero-shot-by-name rig: learn on some defect kinds, then find and name kinds never seen, by text alone.

A model's prompts and adapters learn on synthetic close-up views (:mod:`anomalib_dapo.data.corpus`) showing only
the ``SEEN_KINDS``; it is then tested on held-out views (another seed) of every kind, with the vocabulary of all
seven kinds. Per unseen kind ``k`` (``UNSEEN_KINDS``), over every test pixel:

* type AUROC: pixel AUROC of the type channel ``k`` of ``pred_type_map``, one against the rest;
* named right: share of ``k``'s pixels whose most probable defect channel is ``k`` (chance ``1/K``);
* labelled right: share of ``k``'s pixels whose ``pred_type_mask`` is ``k`` (normal competes too);

plus the binary pixel AUROC of the anomaly map and the image AUROC of the score. Every AUROC is scikit-learn's.
The rig ranks models on synthetic data: it says nothing about accuracy on real products.
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
from PIL import Image
from sklearn.metrics import roc_auc_score

from anomalib_dapo.backbone.clip import SYNTHETIC_TAG, TINY_BACKBONE
from anomalib_dapo.backbone.pretrain import IMAGE_SIZE, to_tensor
from anomalib_dapo.data.corpus import NORMAL, Views, make_views
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.data.synthetic import DEFECT_KINDS
from anomalib_dapo.models.components.adapters import AdapterInit
from anomalib_dapo.models.components.typed_module import GENERIC_STATE, TypedPromptModule
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
    """A typed anomalib batch of the views ``rows`` (CLIP-normalised at their own size, as the pre-processor does)."""
    masks = torch.from_numpy(views.masks[rows])
    return TypedImageBatch(
        image=to_tensor(views.images[rows]),
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


@torch.no_grad()
def evaluate(model: TypedPromptModule, views: Views, batch_size: int = 64) -> RigResult:
    """Score ``views`` with the full vocabulary and compute the rig's figures (module docstring).

    An object-agnostic model scores its one generic state: it gets the binary figures only.
    """
    vocabulary = (GENERIC_STATE,) if model.object_agnostic else VOCABULARY
    model.use_vocabulary(vocabulary)
    model.eval()
    maps, anomaly_maps, scores = [], [], []
    for start in range(0, len(views.kinds), batch_size):
        outputs = model.model(to_tensor(views.images[start : start + batch_size]))
        maps.append(outputs.pred_type_map)
        anomaly_maps.append(outputs.anomaly_map)
        scores.append(outputs.pred_score)
    type_map = torch.cat(maps)  # (N, K + 1, H, W)
    truth = type_masks(views, VOCABULARY).numpy().ravel()
    probs = type_map.permute(1, 0, 2, 3).flatten(1).numpy()  # (K + 1, pixels)
    named = probs[1:].argmax(axis=0) + 1
    labelled = probs.argmax(axis=0)
    kinds = {}
    for kind in sorted(set(views.kinds) & set(vocabulary), key=VOCABULARY.index):
        k = VOCABULARY.index(kind) + 1
        pixels = truth == k
        kinds[kind] = KindResult(
            type_auroc=float(roc_auc_score(pixels, probs[k])),
            named_right=float((named[pixels] == k).mean()),
            labelled_right=float((labelled[pixels] == k).mean()),
        )
    defective = np.asarray(views.kinds) != NORMAL
    return RigResult(
        pixel_auroc=float(roc_auc_score(truth > 0, torch.cat(anomaly_maps).numpy().ravel())),
        image_auroc=float(roc_auc_score(defective, torch.cat(scores).numpy())),
        kinds=kinds,
    )


@dataclass(frozen=True)
class Variant:
    """One row of the side-by-side table: a model class, its arguments beyond the tiny architecture, its shots."""

    name: str
    model: type[TypedPromptModule]
    kwargs: dict = field(default_factory=dict)
    k_shot: int = 0


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
    result = evaluate(model, test)
    return RigResult(result.pixel_auroc, result.image_auroc, result.kinds, seconds), model


def variants() -> dict[str, Variant]:
    """The rows the rig can run, by name: the methods side by side, then the paper's ablations of Dapo."""
    projection = {"adapter_init": AdapterInit.PROJECTION}
    rows = [
        Variant("Dapo (paper defaults)", Dapo),
        Variant("Dapo, adapters from projection", Dapo, projection),
        Variant("Dapo, plain prefix tuning", Dapo, {**projection, "progressive": False}),
        Variant("Dapo object-agnostic", Dapo, {**projection, "object_agnostic": True}),
        Variant("MultiAds", MultiAds),
        Variant("MultiAds, 2-shot", MultiAds, {"k_shot": 2}, k_shot=2),
        Variant("Dapo, adapters from projection, 2-shot", Dapo, {**projection, "k_shot": 2}, k_shot=2),
    ]
    rows += [Variant(f"ablation λ={value}", Dapo, {**projection, "lambda_local": value}) for value in (1, 2, 3)]
    rows += [Variant(f"ablation l={value}", Dapo, {**projection, "prompt_length": value}) for value in (10,)]
    rows += [
        Variant(f"ablation init={init}", Dapo, {**projection, "token_init": init}) for init in ("random", "offset")
    ]
    return {row.name: row for row in rows}


DEFAULT_VARIANT = "Dapo, adapters from projection"


def result_row(name: str, weights: str, result: RigResult) -> dict[str, str]:
    """One table row: binary figures, then per kind ``type AUROC / named right``, then the unseen means."""
    row = {"model": name, "weights": weights, "pixel AUROC": f"{result.pixel_auroc:.3f}"}
    row["image AUROC"] = f"{result.image_auroc:.3f}"
    for kind in VOCABULARY:
        figures = result.kinds.get(kind)
        seen = "seen" if kind in SEEN_KINDS else "unseen"
        row[f"{kind} ({seen})"] = "–" if figures is None else f"{figures.type_auroc:.2f} / {figures.named_right:.2f}"
    unseen = all(kind in result.kinds for kind in UNSEEN_KINDS)
    row["unseen type AUROC"] = f"{result.mean(UNSEEN_KINDS, 'type_auroc'):.3f}" if unseen else "–"
    row["unseen named right"] = f"{result.mean(UNSEEN_KINDS, 'named_right'):.3f}" if unseen else "–"
    row["unseen labelled right"] = f"{result.mean(UNSEEN_KINDS, 'labelled_right'):.3f}" if unseen else "–"
    row["train s"] = f"{result.train_seconds:.0f}"
    return row


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
    parser.add_argument("--random-beside", nargs="+", default=[DEFAULT_VARIANT], help="rows run on random weights too")
    parser.add_argument("--pictures", type=int, default=2, help="pictures per unseen kind, of the first row")
    parser.add_argument("--output", type=Path, default=Path("results/zero_shot_rig"))
    args = parser.parse_args(argv)
    table = variants()
    names = list(table) if args.variants == ["all"] else args.variants
    unknown = [name for name in [*names, *args.random_beside] if name not in table]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from: {', '.join(table)}")
    print(DISCLAIMER)
    print(f"backbone: {TINY_BACKBONE} with the '{SYNTHETIC_TAG}' weights (and random weights where marked)")
    print(f"seen kinds {', '.join(SEEN_KINDS)}; unseen kinds {', '.join(UNSEEN_KINDS)} (named by text only)")
    train, test = rig_views(args.train_per_state, args.test_per_state)
    runs = [(name, SYNTHETIC_TAG) for name in names] + [(name, None) for name in args.random_beside]
    rows, pictured = [], None
    for name, pretrained in runs:
        result, model = run_variant(table[name], pretrained, train, test, args.steps)
        pictured = pictured or model
        rows.append(result_row(name, pretrained or "random", result))
        print(" | ".join(f"{key} {value}" for key, value in rows[-1].items()), flush=True)
    header = [
        f"# Zero-shot-by-name rig ({TINY_BACKBONE} backbone, '{SYNTHETIC_TAG}' weights unless marked random)",
        "",
        f"**{DISCLAIMER}**",
        "",
        f"Seen kinds: {', '.join(SEEN_KINDS)}. Unseen kinds: {', '.join(UNSEEN_KINDS)}. Each kind's cell is "
        "`type AUROC / named right` (chance of named right: 1/7). "
        f"{len(train.kinds)} training views, {len(test.kinds)} test views, {args.steps} steps per model.",
    ]
    folder = write_table(rows, args.output, header)
    if args.pictures and pictured is not None and not pictured.object_agnostic:
        save_pictures(pictured, test, folder, args.pictures)
    print(f"table and pictures: {folder}")  # returns None: the console script's exit status is 0
