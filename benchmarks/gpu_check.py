"""Dapo's GPU figures in one short run: inference speed, FLOPs and achieved peak, training time and memory.

Measured, for ViT-L-14-336 at 518 px with random weights (time and memory do not depend on them):

- inference latency and images/s of Dapo beside open_clip's bare ``encode_image`` of the same backbone, in
  float32 and Lightning's mixed precision (``--trainer.precision bf16-mixed``), at batch 1 and 32: median
  (min–max, n) over interleaved repeats;
- FLOPs per image (``torch.utils.flop_counter``) and the achieved fraction of the GPU's matrix rate, measured
  here on a large product in the same dtype (and beside the datasheet figure given with ``--peak-tflops``);
- training step time and peak GPU memory (``torch.cuda.max_memory_allocated``) at batch 8, with and without
  gradient checkpointing.

``benchmarks/gpu_check.sh`` runs it, then ``anomalib train`` on the GPU. With ``--device cpu`` and a tiny
backbone it is the reduced form the test suite runs, so that the script cannot rot.
"""

import argparse
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from bench_dapo import (
    Report,
    build_dapo,
    in_precision,
    interleaved,
    make_images,
    over_batches,
    parse_args,
    print_report,
    spread,
    synchronize,
    train_step,
    training_batch,
)
from torch.utils.flop_counter import FlopCounterMode

from anomalib_dapo.data import generate_synthetic_dataset

PUBLISHED_MS_PER_IMAGE = {"AnomalyCLIP": 155, "AdaCLIP": 212}
"""ViT-L at 518 px, as the AdaptCLIP README reports them (their GPU, not this one): anchors, not comparisons."""


def options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="ViT-L-14-336")
    parser.add_argument("--image-size", type=int, default=518)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="inference batch sizes")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats after a warm-up")
    parser.add_argument("--matmul-size", type=int, default=8192, help="side of the product that measures the peak")
    parser.add_argument("--peak-tflops", type=json.loads, default={}, help='datasheet peaks, e.g. {"bfloat16": 989}')
    parser.add_argument("--output", type=Path, help="also write the report as JSON here")
    parser.add_argument(
        "--synthetic-data",
        type=Path,
        help="also write the small synthetic source and target datasets of gpu_check.sh's anomalib train here",
    )
    return parser.parse_args(argv)


def bench_args(opts: argparse.Namespace, dtype: str) -> argparse.Namespace:
    """bench_dapo's options for one dtype (its model builder and timing helpers read them)."""
    argv = ["--backbone", opts.backbone, "--image-size", str(opts.image_size), "--device", opts.device]
    return parse_args([*argv, "--dtype", dtype, "--repeats", str(opts.repeats)])


def matmul_tflops(dtype: torch.dtype, size: int, device: str) -> float:
    """The rate of a ``size``³ matrix product on random data: the ceiling that dense layers can reach here."""
    a, b = (torch.randn(size, size, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    synchronize(device)
    start, count = time.perf_counter(), 10
    for _ in range(count):
        a @ b
    synchronize(device)
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e12


def flops_per_image(run: object, image: torch.Tensor) -> int:
    """FLOPs of one image through ``run``: matrix products, and attention on CUDA (torch counts its CUDA kernels
    only); elementwise work is not counted."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        run(image)
    return counter.get_total_flops()


def inference(opts: argparse.Namespace, report: Report) -> None:
    """Latency and images/s of Dapo and the bare image encoder per dtype and batch, with the achieved peak."""
    dapo = build_dapo(bench_args(opts, "float32"))
    net = dapo.model.eval()
    with torch.inference_mode():
        net.states()  # cached once per vocabulary: neither the FLOPs nor the timings below include the text
    for dtype in opts.dtypes:
        args = bench_args(opts, dtype)
        run_dapo, encode_image = in_precision(net, args), in_precision(net.clip.encode_image, args)
        flops = {"dapo": flops_per_image(run_dapo, make_images(1, opts.image_size, opts.device))}
        flops["encode_image"] = flops_per_image(encode_image, make_images(1, opts.image_size, opts.device))
        rate = matmul_tflops(getattr(torch, dtype), opts.matmul_size, opts.device)
        report[f"{dtype}_matmul_tflops_measured"] = round(rate, 1)
        for name, value in flops.items():
            report[f"{dtype}_{name}_gflops_per_image"] = float(f"{value / 1e9:.4g}")
        for batch in opts.batches:
            images = make_images(batch, opts.image_size, opts.device)
            runs = {
                "dapo": over_batches(run_dapo, images, batch),
                "encode_image": over_batches(encode_image, images, batch),
            }
            timings = interleaved(runs, opts.repeats, opts.device)
            key = f"{dtype}_batch{batch}"
            for name in runs:
                seconds = timings.wall[name]
                report[f"{key}_{name}_latency_ms"] = spread([1000 * value for value in seconds])
                images_per_s = batch / statistics.median(seconds)
                report[f"{key}_{name}_images_per_s"] = round(images_per_s, 2)
                achieved = flops[name] * images_per_s / 1e12
                report[f"{key}_{name}_achieved_tflops"] = round(achieved, 2)
                report[f"{key}_{name}_fraction_of_measured_matmul_peak"] = round(achieved / rate, 3)
                if dtype in opts.peak_tflops:
                    report[f"{key}_{name}_fraction_of_datasheet_peak"] = round(achieved / opts.peak_tflops[dtype], 3)
            timings.record(report, f"{key}_dapo_over_encode_image_time", "dapo", "encode_image", cuda=True)
    report["published_ms_per_image_vit_l_518"] = ", ".join(f"{k} {v}" for k, v in PUBLISHED_MS_PER_IMAGE.items())


def training(opts: argparse.Namespace, report: Report) -> None:
    """Step time and peak memory at the training batch, without and with gradient checkpointing."""
    cuda = opts.device.startswith("cuda")
    args = bench_args(opts, "bfloat16" if cuda else "float32")
    dapo = build_dapo(args)
    dapo.model.train()
    optimizer = dapo.configure_optimizers()
    batch = training_batch(dapo, opts.train_batch, opts.device)
    report["train_batch"] = opts.train_batch
    report["train_precision"] = "bf16-mixed" if cuda else "32-true"

    def step(checkpointing: bool) -> None:
        dapo.model.gradient_checkpointing = checkpointing
        train_step(dapo, optimizer, batch, args)

    runs = {"plain": lambda: step(False), "checkpointing": lambda: step(True)}
    for name, run in runs.items():
        run()  # warm-up; with Adam's state from the first step on, the peak below is a steady step's
        if cuda:
            torch.cuda.reset_peak_memory_stats(opts.device)
            run()
            report[f"train_{name}_peak_gib"] = round(torch.cuda.max_memory_allocated(opts.device) / 2**30, 2)
    timings = interleaved(runs, opts.repeats, opts.device)
    for name in runs:
        report[f"train_{name}_step_s"] = spread(timings.wall[name])
    timings.record(report, "train_checkpointing_over_plain_time", "checkpointing", "plain", cuda=True)


def write_synthetic_data(root: Path) -> None:
    """The datasets of gpu_check.sh's ``anomalib train``: a source and a target with few test images (its steps see
    the source's, validation and test the target's). Written here, where the plugin is imported already, to spare
    the script an interpreter start."""
    generate_synthetic_dataset(root / "source", image_size=128, n_test_per_defect=4, n_test_good=4)
    generate_synthetic_dataset(root / "target", image_size=128, seed=1, n_test_per_defect=2, n_test_good=2)


def main(argv: Sequence[str] | None = None) -> Report:
    """Run both parts, print the report and write it as JSON where asked (and to ``$OUT`` when set); write the
    synthetic datasets where asked."""
    opts = options(argv)
    if opts.synthetic_data:
        write_synthetic_data(opts.synthetic_data)
    cuda = opts.device.startswith("cuda")
    report: Report = {
        "device": torch.cuda.get_device_name(opts.device) if cuda else "cpu",
        "devices": torch.cuda.device_count() if cuda else 0,
        "torch": torch.__version__,
        "backbone": opts.backbone,
        "image_size": opts.image_size,
        "repeats": opts.repeats,
    }
    inference(opts, report)
    training(opts, report)
    print_report(report)
    targets = [opts.output] + ([Path(os.environ["OUT"]) / "gpu_check.json"] if os.environ.get("OUT") else [])
    for target in filter(None, targets):
        target.write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
