"""The metric path of a zero-shot test at dataset scale: anomalib's binary metrics and the plugin's type metrics.

A Real-IAD-sized test is about 20,000 images; Dapo's maps are at its input resolution (518²). This benchmark
streams synthetic batches shaped like Dapo's outputs through the metrics a test run updates, one group of
metrics per fresh subprocess, and prints for each group:

* update throughput in images/s (min / median / max over the batches, n batches) and the compute time;
* the bytes its states hold after the stream, per image, and extrapolated to ``--target-images``;
* the process's peak resident set (``VmHWM``) over its stream.

Groups: ``image`` (anomalib's image AUROC, AUPR, F1-max), ``pixel`` (anomalib's pixel AUROC and F1-max),
``aupro`` (anomalib's pixel AUPRO), ``type`` (the plugin's pixel TypeAUROC, TypeAveragePrecision, TypeF1Score,
image multi-label precision / recall / F1, and the type confusion matrix), and ``type_previous`` (the plugin's
type AUROC and AP as they were before the fine grid: 200 evenly spaced thresholds). The groups other than
``type_previous`` are the ones Dapo's evaluator updates in a test run. The synthetic maps are upsampled from
a 37×37 patch grid, as ViT-L-14 gives at 518 px, and their probabilities are skewed (defect states rarely
above 0.2), as the released prompts give; the ``type`` and ``type_previous`` rows also print their macro
TypeAUROC on the stream, so the cost of exactness is shown beside its effect.

Timings are absolute and depend on the machine and its load: compare groups within one run.

Examples::

    python benchmarks/bench_metrics.py                                   # 200 images at 518², extrapolated to 20k
    python benchmarks/bench_metrics.py --images 2000 --size 256 --groups type type_previous
    python benchmarks/bench_metrics.py --images 8 --size 64 --batch-size 4 --in-process   # reduced (seconds)
"""

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from anomalib.metrics import AUPRO
from torchmetrics import Metric
from torchmetrics.classification import MulticlassAUROC

from anomalib_dapo import Dapo
from anomalib_dapo.data.dataclasses import TypedImageBatch
from anomalib_dapo.metrics import TypeConfusionMatrix
from anomalib_dapo.models.components.typed_module import type_metrics

GROUPS = ("image", "pixel", "aupro", "type", "type_previous")
BOUNDED = {"type", "type_previous"}
"""Groups whose state does not grow with the images (histograms and counts); the others keep every value."""
PATCH_GRID = 37
"""ViT-L-14's patch grid at 518 px."""
MIB = 2**20
MARK = "GROUP "


def synthetic_batch(seed: int, batch_size: int, size: int, states: int) -> TypedImageBatch:
    """A batch shaped like Dapo's test outputs: smooth state maps, blocky typed masks, half the images normal."""
    g = torch.Generator().manual_seed(seed)
    grid = min(PATCH_GRID, size)
    blocks = torch.rand(batch_size, 4, 4, generator=g) < 0.2
    truth = torch.randint(1, states, (batch_size, 1, 1), generator=g) * blocks
    truth *= (torch.arange(batch_size) % 2).view(-1, 1, 1)  # even images are normal
    gt = F.interpolate(truth[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    logits = torch.randn(batch_size, states, grid, grid, generator=g) - 3.0
    logits[:, 0] += 3.0
    onehot = F.one_hot(F.interpolate(truth[:, None].float(), size=(grid, grid), mode="nearest")[:, 0].long(), states)
    logits += 2.5 * onehot.movedim(-1, 1)
    type_map = F.interpolate(logits.softmax(1), size=(size, size), mode="bilinear", align_corners=False)
    anomaly_map = 1 - type_map[:, 0]
    return TypedImageBatch(
        image=torch.zeros(batch_size, 3, 1, 1),
        gt_label=(gt.flatten(1) > 0).any(1).long(),
        gt_mask=gt > 0,
        gt_type_mask=gt,
        anomaly_map=anomaly_map[:, None],
        pred_score=anomaly_map.flatten(1).amax(1),
        pred_type_map=type_map,
        pred_type_mask=type_map.argmax(1),
        pred_type_probs=torch.rand(batch_size, states - 1, generator=g),
    )


def _previous_binned_confmat(preds: torch.Tensor, target: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """The plugin's update before the fine grid (one-vs-rest counts at 200 even thresholds), for comparison."""
    num_t, num_c = len(thresholds), preds.shape[1]
    bins = torch.bucketize(preds, thresholds, right=True, out_int32=True)
    classes = torch.arange(num_c, dtype=torch.int32)
    key = ((2 * classes + (target.unsqueeze(1) == classes)) * (num_t + 1) + bins).flatten()
    hist = torch.bincount(key, minlength=num_c * 2 * (num_t + 1)).view(num_c, 2, num_t + 1)
    above = hist.flip(-1).cumsum(-1).flip(-1)[..., 1:]
    return torch.stack((hist.sum(-1, keepdim=True) - above, above), dim=-1).permute(2, 0, 1, 3)


class PreviousTypeAUROC(MulticlassAUROC):
    """TypeAUROC as it was: torchmetrics' binned AUROC on 200 even thresholds, with the plugin's fast update."""

    def __init__(self, num_classes: int) -> None:
        super().__init__(num_classes=num_classes, thresholds=200, average="macro")

    def update(self, batch: TypedImageBatch) -> None:  # type: ignore[override]
        """Count a batch's state map (as the previous update did: channels last, then flat)."""
        preds = batch.pred_type_map.movedim(1, -1).reshape(-1, self.num_classes)
        self.confmat += _previous_binned_confmat(preds, batch.gt_type_mask.reshape(-1), self.thresholds)


def metrics_of(group: str, states: int) -> list[Metric]:
    """The metrics of a group, built as Dapo's evaluator builds them."""
    binary = Dapo.configure_evaluator().test_metrics
    if group == "image":
        return [m for m in binary if m.fields[0] == "pred_score"]
    if group == "pixel":
        return [m for m in binary if m.fields[0] == "anomaly_map" and not isinstance(m, AUPRO)]
    if group == "aupro":
        return [m for m in binary if isinstance(m, AUPRO)]
    if group == "type":
        return [*type_metrics(states - 1), TypeConfusionMatrix(num_classes=states, strict=False)]
    if group == "type_previous":
        return [PreviousTypeAUROC(states)]
    msg = f"Unknown group {group!r}; choose from {GROUPS}."
    raise ValueError(msg)


def state_bytes(metrics: Sequence[Metric]) -> int:
    """Bytes held by the metrics' states (tensors and lists of tensors)."""
    total = 0
    for metric in metrics:
        for name in metric._defaults:
            value = getattr(metric, name)
            tensors = value if isinstance(value, list) else [value]
            total += sum(t.numel() * t.element_size() for t in tensors)
    return total


def peak_rss_mib() -> float:
    """The process's resident-set high-water mark (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_group(group: str, args: argparse.Namespace) -> dict[str, Any]:
    """Stream ``args.images`` images through one group's metrics; return its figures."""
    torch.set_num_threads(args.threads)
    metrics = metrics_of(group, args.states)
    pool = [synthetic_batch(seed, args.batch_size, args.size, args.states) for seed in range(args.pool)]
    rates = []
    for index in range(args.images // args.batch_size):
        # A fresh copy per update: metrics that keep every value must not share one tensor across updates.
        batch = copy.deepcopy(pool[index % args.pool])
        start = time.perf_counter()
        for metric in metrics:
            metric.update(batch)
        rates.append(args.batch_size / (time.perf_counter() - start))
    images = len(rates) * args.batch_size
    held = state_bytes(metrics)
    start = time.perf_counter()
    values = [metric.compute() for metric in metrics]
    compute_s = time.perf_counter() - start
    figures = {
        "group": group,
        "images": images,
        "update_images_per_s": [min(rates), statistics.median(rates), max(rates)],
        "batches": len(rates),
        "compute_s": compute_s,
        "state_mib": held / MIB,
        "state_mib_per_image": held / MIB / images,
        "peak_rss_mib": peak_rss_mib(),
    }
    if group in {"type", "type_previous"}:
        figures["macro_type_auroc"] = float(values[0])
    return figures


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run every group in its own subprocess and print a table of the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="Images streamed per group.")
    parser.add_argument("--target-images", type=int, default=20_000, help="Run size the state is extrapolated to.")
    parser.add_argument("--size", type=int, default=518, help="Map resolution (Dapo's input size).")
    parser.add_argument("--states", type=int, default=6, help="K + 1 states (5 defect types + normal).")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--pool", type=int, default=4, help="Distinct synthetic batches cycled through.")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="Run the groups here, not in subprocesses (peak RSS then accumulates).",
    )
    parser.add_argument("--group", help=argparse.SUPPRESS)  # internal: run one group in this process
    args = parser.parse_args(argv)
    if args.group:
        print(MARK + json.dumps(run_group(args.group, args)), flush=True)
        return []
    results = []
    shared = ["--images", args.images, "--size", args.size, "--states", args.states, "--batch-size", args.batch_size]
    shared += ["--pool", args.pool, "--threads", args.threads]
    for group in args.groups:
        if args.in_process:
            results.append(run_group(group, args))
            continue
        command = [sys.executable, __file__, *map(str, shared), "--group", group]
        output = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ).stdout
        results.append(json.loads(output.split(MARK, 1)[1]))
    print(f"{args.images} images of {args.size}², {args.states} states, batch {args.batch_size}, {args.threads} thread")
    for figures in results:
        low, median, high = figures["update_images_per_s"]
        extrapolated = figures["state_mib_per_image"] * args.target_images
        if figures["group"] in BOUNDED:
            extrapolated = figures["state_mib"]  # the same whatever the number of images
        line = (
            f"{figures['group']:>14} : update {median:9.1f} images/s (min {low:.1f}, max {high:.1f}, "
            f"n={figures['batches']}), compute {figures['compute_s']:.2f} s, state {figures['state_mib']:.1f} MiB "
            f"(at {args.target_images} images: {extrapolated:.0f} MiB), peak RSS {figures['peak_rss_mib']:.0f} MiB"
        )
        if "macro_type_auroc" in figures:
            line += f", macro TypeAUROC {figures['macro_type_auroc']:.4f}"
        print(line)
    return results


if __name__ == "__main__":
    main()
