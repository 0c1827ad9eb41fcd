"""Performance benchmark of Dapo: inference against a plain CLIP image encoder and WinClip, and training memory.

Every comparison is a ratio measured within one run: the compared models run interleaved on the same images,
in an order rotated each repeat, and the report gives the per-repeat ratios as median (min–max, n). Absolute
timings depend on the machine and its load and are printed for reference only.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the peak resident set size (``VmHWM`` of
``/proc/self/status``, reset through ``/proc/self/clear_refs``). Each figure comes from a fresh process that has
done no work before it: a fork of a ``multiprocessing`` forkserver whose server has only imported this module
(torch, open_clip, anomalib, the plugin). Forking it costs milliseconds where a new interpreter costs the
imports again (about 10 s), and the fork holds no tensor, allocator state or CUDA context of an earlier figure.
On CPU the fork first maps the library pages that the server has resident, so that its resident set starts as a
fresh interpreter's would after the same imports (fork maps anonymous memory only).
A figure is the total peak and the increase over the state just before the measured work (model built, text
features cached): the working memory. Memory is measured with the default allocator, as users see it, and
again with glibc's mmap threshold fixed at 64 KiB (``mallopt(M_MMAP_THRESHOLD)``, what ``MALLOC_MMAP_THRESHOLD_``
sets at start-up) so that freed tensors leave the resident set at once and the high-water mark follows the live
tensors: a proxy for a GPU's caching allocator, which holds live tensors only.

Examples::

    python benchmarks/bench_dapo.py --backbone ViT-L-14-336 --image-size 518 --batch-size 1 --images 2 --threads 1
    python benchmarks/bench_dapo.py --backbone dapo-tiny --image-size 224 --batch-size 8 --images 8 --repeats 25 \
        --threads 1 --no-winclip --compile --train-measure-batches 8
    python benchmarks/bench_dapo.py --device cuda --dtype bfloat16 --batch-size 8 --images 64 --compile

``--dtype bfloat16`` runs every model under Lightning's mixed precision (``--trainer.precision bf16-mixed``), as
a Trainer runs each step: Dapo keeps its text encoder and similarity heads in float32 within it.

docs/performance.md has the figures and what each of them means.
"""

import argparse
import ctypes
import multiprocessing
import multiprocessing.forkserver
import os
import platform
import re
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import open_clip
import torch
import torch.nn.functional as F  # noqa: N812
from anomalib.models.image.winclip.torch_model import WinClipModel
from lightning.pytorch.plugins.precision import MixedPrecision, Precision

from anomalib_dapo import Dapo
from anomalib_dapo.data.dataclasses import TypedImageBatch

VOCABULARY = ("scratch", "dent", "crack", "hole", "contamination")
"""The defect types scored: K = 5, a typical MVTec AD category."""
SECOND_VOCABULARY = ("bent", "cut")
"""Switched to once, to check that the text encoder runs once per vocabulary."""
WINCLIP_SIZE = 240
"""WinClip's own input resolution (its ViT-B-16-plus-240 backbone)."""
MIXED_PRECISION = {"bfloat16": "bf16-mixed", "float16": "16-mixed"}
"""Lightning's ``--trainer.precision`` for each ``--dtype`` other than float32."""
GPU_BUDGET_GIB = 24.0
"""The GPU that must hold training of ViT-L-14-336 at 518 px, batch 8, with gradient checkpointing."""
MIB = 2**20
MMAP_THRESHOLD = 64 * 1024
"""The tuned allocator's mmap threshold: freed blocks of this size or more go back to the OS at once."""
M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter of the mmap threshold (malloc.h)."""
PROBE_PRELOAD = (
    "torch",
    "open_clip",
    "lightning.pytorch",
    "anomalib.models.image.winclip.torch_model",
    "anomalib_dapo",
)
"""What this module imports, for the probes' forkserver to import once before it forks: by name, as the server may not
find this module itself (a file loaded by path: Python 3.11's server does not take this process's ``sys.path``)."""

Report = dict[str, Any]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; ``--probe`` is internal: the memory measurement of a probe (see :func:`probe_child`)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="ViT-L-14-336", help="OpenCLIP model name, or dapo-tiny")
    parser.add_argument("--image-size", type=int, default=518)
    parser.add_argument("--batch-size", type=int, default=1, help="inference batch size")
    parser.add_argument("--images", type=int, default=4, help="images per timed inference pass")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=7, help="timed passes per model, after one warm-up")
    parser.add_argument("--train-batch-size", type=int, default=8, help="the training batch reported")
    parser.add_argument(
        "--train-measure-batches",
        type=int,
        nargs="+",
        help="training batches actually run (default: the training batch on CUDA, 1 and 2 on CPU); "
        "the training batch is extrapolated from them when it is not among them",
    )
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        help="Lightning mixed precision on CUDA: bfloat16 is --trainer.precision bf16-mixed "
        "(default: bfloat16 on CUDA, float32 on CPU)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--winclip", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--train", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd Dapo and encoder")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.cuda = args.device.startswith("cuda")
    args.dtype = args.dtype or ("bfloat16" if args.cuda else "float32")
    if not args.cuda and args.dtype != "float32":
        parser.error("--dtype selects CUDA mixed precision: Dapo runs in float32 on CPU.")
    if args.images % args.batch_size:
        parser.error("--images must be a multiple of --batch-size (equal batches: no recompilation, fair timing).")
    args.train_measure_batches = sorted(
        set(args.train_measure_batches or ([args.train_batch_size] if args.cuda else [1, 2]))
    )
    return args


# ------------------------------------------------------------------------------------------------ models


def build_dapo(args: argparse.Namespace, gradient_checkpointing: bool = False) -> Dapo:
    """Dapo with random backbone weights (speed and memory do not depend on them) and the paper's settings.

    The layer defaults are the paper's positions relative to the backbone's depth (every text layer, adapters at
    the quarter points of the vision tower).
    """
    dapo = Dapo(
        backbone=args.backbone,
        pretrained=None,
        image_size=args.image_size,
        gradient_checkpointing=gradient_checkpointing,
        visualizer=False,
    )
    dapo.use_vocabulary(VOCABULARY)
    return dapo.to(args.device)


def build_winclip(device: str) -> WinClipModel:
    """The WinClip torch model of anomalib, with random weights.

    WinClipModel asks open_clip for its laion400m weights, a download that fails offline: the factory is
    patched to build the same architecture without weights.
    """
    create = open_clip.create_model_and_transforms

    def without_weights(name: str, pretrained: str | None = None, **kwargs: Any) -> Any:
        del pretrained
        return create(name, pretrained=None, **kwargs)

    with mock.patch.object(open_clip, "create_model_and_transforms", without_weights):
        model = WinClipModel(class_name="object")
    return model.to(device).eval()


def autocast(args: argparse.Namespace) -> AbstractContextManager:
    """The context a Lightning Trainer runs each step in for ``--dtype`` (its precision plugin's)."""
    plugin = Precision() if args.dtype == "float32" else MixedPrecision(MIXED_PRECISION[args.dtype], "cuda")
    return plugin.forward_context()


def in_precision(run: Callable[[torch.Tensor], object], args: argparse.Namespace) -> Callable[[torch.Tensor], object]:
    """``run`` in the precision of ``--dtype``, as a Trainer would run it."""

    def wrapped(batch: torch.Tensor) -> object:
        with autocast(args):
            return run(batch)

    return wrapped


def make_images(count: int, size: int, device: str, seed: int = 0) -> torch.Tensor:
    """Normalised-looking random images: the models' cost does not depend on the content."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(count, 3, size, size, generator=generator).to(device)


def training_batch(dapo: Dapo, size: int, device: str) -> TypedImageBatch:
    """Half normal, half anomalous images with random per-pixel types, as a typed datamodule gives."""
    generator = torch.Generator().manual_seed(1)
    labels = torch.arange(size) % 2
    shape = (size, dapo.image_size, dapo.image_size)
    types = torch.randint(1, len(dapo.model.vocabulary) + 1, shape, generator=generator)
    return TypedImageBatch(
        image=make_images(size, dapo.image_size, device),
        gt_label=labels.to(device),
        gt_type_mask=(types * labels[:, None, None]).to(device),
    )


def train_step(
    dapo: Dapo, optimizer: torch.optim.Optimizer, batch: TypedImageBatch, args: argparse.Namespace
) -> dict[str, float]:
    """One optimisation step through Dapo's own training_step (forward, eq. 9 loss, backward, Adam).

    The forward runs in the precision of ``args.dtype`` and the backward outside it, as in a Trainer.

    Returns:
        Seconds of its forward (with the loss), backward and optimizer phases, by :func:`step_clock`.

    """
    clock, device = step_clock(batch.image.device.type), batch.image.device.type
    start = clock()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*self.log.*")  # no Trainer attached: logging is a no-op
        with autocast(args):
            loss = dapo.training_step(batch)["loss"]
    synchronize(device)
    forward = clock()
    loss.backward()
    synchronize(device)
    backward = clock()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    return {"forward": forward - start, "backward": backward - forward, "optimizer": clock() - backward}


def step_clock(device: str) -> Callable[[], float]:
    """Wall clock on CUDA; on CPU this process's CPU time, which other processes' load disturbs less."""
    return time.perf_counter if device.startswith("cuda") else time.process_time


def time_encoders(net: torch.nn.Module, device: str) -> dict[str, float]:
    """Accumulate the seconds spent in the text and image encoders of ``net`` (its methods are wrapped)."""
    spent = {"text_forward": 0.0, "vision_forward": 0.0}
    clock = step_clock(device)

    def wrap(phase: str, method: Callable) -> Callable:
        def timed(*args: Any, **kwargs: Any) -> Any:
            synchronize(device)
            start = clock()
            result = method(*args, **kwargs)
            synchronize(device)
            spent[phase] += clock() - start
            return result

        return timed

    net.encode_states = wrap("text_forward", net.encode_states)
    net.encode_image = wrap("vision_forward", net.encode_image)
    return spent


def full_context(net: torch.nn.Module) -> torch.Tensor:
    """The vocabulary's tokens zero-padded to the whole text context: how the text encoder ran before it stopped
    at the length the prompts need (the state embeddings are the same, see tests/models/dapo)."""
    return F.pad(net.tokens, (0, net.clip.context_length - net.tokens.shape[1]))


# ------------------------------------------------------------------------------------------------ timing


def synchronize(device: str) -> None:
    """Wait for queued CUDA work, so that a timing covers it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


@dataclass
class Timings:
    """Seconds per repeat of each run: wall clock, and CPU time of this process (meaningful on CPU only)."""

    wall: dict[str, list[float]]
    cpu: dict[str, list[float]]

    def ratios(self, numerator: str, denominator: str, clock: str = "wall") -> list[float]:
        """The per-repeat ratios: both sides of a ratio ran back to back, under the same load."""
        seconds = getattr(self, clock)
        return [a / b for a, b in zip(seconds[numerator], seconds[denominator], strict=True)]

    def record(self, report: Report, key: str, numerator: str, denominator: str, cuda: bool) -> list[float]:
        """Record the wall-clock ratio, and on CPU the CPU-time ratio (steadier on a shared machine), with spread."""
        report[key] = spread(self.ratios(numerator, denominator))
        if not cuda:
            report[f"{key}_cpu"] = spread(self.ratios(numerator, denominator, "cpu"))
        return self.ratios(numerator, denominator)


def spread(values: Sequence[float]) -> str:
    """``median (min–max, n)`` of per-repeat figures."""
    return f"{statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def verdict(ratios: Sequence[float], target: float) -> str:
    """Whether every repeat met ``target``, none did, or the spread straddles it (not resolved at this noise)."""
    if max(ratios) <= target:
        return f"met (every repeat <= {target})"
    if min(ratios) > target:
        return f"NOT met (every repeat > {target})"
    return f"not resolved at this noise (repeats {min(ratios):.3f}..{max(ratios):.3f} straddle {target})"


def interleaved(runs: dict[str, Callable[[], object]], repeats: int, device: str) -> Timings:
    """Time each run per repeat: one warm-up each, then the runs alternate in a rotating order."""
    for run in runs.values():
        run()
    names = list(runs)
    timings = Timings({name: [] for name in names}, {name: [] for name in names})
    for repeat in range(repeats):
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            runs[name]()
            synchronize(device)
            timings.wall[name].append(time.perf_counter() - wall)
            timings.cpu[name].append(time.process_time() - cpu)
    return timings


def over_batches(model: Callable[[torch.Tensor], object], images: torch.Tensor, batch_size: int) -> Callable:
    """A run predicting all ``images`` in batches."""

    def run() -> None:
        with torch.inference_mode():
            for batch in images.split(batch_size):
                model(batch)

    return run


def inference(args: argparse.Namespace, report: Report) -> None:
    """Dapo against open_clip's ``encode_image`` of the same CLIP and against WinClip, and the text encoder."""
    dapo = build_dapo(args)
    net = dapo.model.eval()
    calls_before = net.text_encoder_calls
    images = make_images(args.images, args.image_size, args.device)
    run_dapo, encode_image = in_precision(net, args), in_precision(net.clip.encode_image, args)
    runs = {
        "dapo": over_batches(run_dapo, images, args.batch_size),
        "encode_image": over_batches(encode_image, images, args.batch_size),
    }
    if args.winclip:
        winclip = build_winclip(args.device)
        small = F.interpolate(images, size=(WINCLIP_SIZE, WINCLIP_SIZE), mode="bicubic", align_corners=False)
        runs["winclip"] = over_batches(in_precision(winclip, args), small, args.batch_size)
    if args.compile:
        compile_start = time.perf_counter()
        compiled = in_precision(torch.compile(net), args)
        compiled_encoder = torch.compile(encode_image)
        over_batches(compiled, images[: args.batch_size], args.batch_size)()
        over_batches(compiled_encoder, images[: args.batch_size], args.batch_size)()
        report["compile_warmup_s"] = round(time.perf_counter() - compile_start, 1)
        runs["dapo_compiled"] = over_batches(compiled, images, args.batch_size)
        runs["encode_image_compiled"] = over_batches(compiled_encoder, images, args.batch_size)

    timings = interleaved(runs, args.repeats, args.device)
    for name, values in timings.wall.items():
        report[f"{name}_images_per_s"] = round(args.images / statistics.median(values), 3)
    ratios = timings.record(report, "dapo_over_encode_image_time", "dapo", "encode_image", args.cuda)
    report["target_1.15"] = verdict(ratios, 1.15)
    if args.winclip:
        timings.record(report, "dapo_over_winclip_time", "dapo", "winclip", args.cuda)
        report["winclip_image_size"] = WINCLIP_SIZE
    if args.compile:
        timings.record(report, "dapo_compiled_over_eager_time", "dapo_compiled", "dapo", args.cuda)
        timings.record(
            report, "dapo_compiled_over_encode_image_compiled_time", "dapo_compiled", "encode_image_compiled", args.cuda
        )

    dapo_runs = 2 if args.compile else 1
    predicted = args.images * (args.repeats + 1) * dapo_runs + (args.batch_size if args.compile else 0)
    calls = net.text_encoder_calls - calls_before
    dapo.use_vocabulary(SECOND_VOCABULARY)
    over_batches(run_dapo, images[: args.batch_size], args.batch_size)()
    switched = net.text_encoder_calls - calls_before
    if (calls, switched) != (1, 2):
        msg = f"The text encoder ran {calls} times for one vocabulary and {switched} times for two: expected 1 and 2."
        raise RuntimeError(msg)
    report["text_encoder_calls"] = f"{calls} for {predicted} predicted images (one vocabulary)"
    report["text_encoder_calls_two_vocabularies"] = switched


def training_time(args: argparse.Namespace, report: Report) -> None:
    """Step time at the smallest measured batch: plain, with gradient checkpointing, and with the text encoder
    at the full context (as before it stopped at the needed length), interleaved on one model; the plain and
    checkpointing steps broken down into text forward, vision forward, heads with loss, backward and optimizer.
    The vocabulary switch (the text encoder in inference) is timed at both lengths first, on the same model."""
    batch_size = args.train_measure_batches[0]
    dapo = build_dapo(args)
    net = dapo.model
    needed, full = net.tokens, full_context(net)
    report["text_tokens_needed_full"] = f"{needed.shape[1]} / {full.shape[1]}"
    vocabulary_switch_time(args, report, dapo, {"needed": needed, "full": full})
    net.train()
    spent = time_encoders(net, args.device)
    optimizer = dapo.configure_optimizers()
    batch = training_batch(dapo, batch_size, args.device)
    phases: dict[str, list[dict[str, float]]] = {"plain": [], "checkpointing": [], "full_text": []}

    def step(name: str, checkpointing: bool, tokens: torch.Tensor) -> None:
        net.gradient_checkpointing, net.tokens = checkpointing, tokens
        before = dict(spent)
        seconds = train_step(dapo, optimizer, batch, args)
        encoders = {phase: spent[phase] - before[phase] for phase in spent}
        seconds["heads_and_loss"] = seconds.pop("forward") - sum(encoders.values())
        phases[name].append({**encoders, **seconds})

    runs = {
        "plain": lambda: step("plain", False, needed),
        "checkpointing": lambda: step("checkpointing", True, needed),
        "full_text": lambda: step("full_text", False, full),
    }
    timings = interleaved(runs, args.repeats, args.device)
    net.tokens = needed
    report["train_time_batch"] = batch_size
    report["train_step_s"] = round(statistics.median(timings.wall["plain"]), 3)
    report["train_step_checkpointing_s"] = round(statistics.median(timings.wall["checkpointing"]), 3)
    timings.record(report, "train_checkpointing_over_plain_time", "checkpointing", "plain", args.cuda)
    timings.record(report, "train_needed_text_length_over_full_time", "plain", "full_text", args.cuda)
    for name in ("plain", "checkpointing"):
        measured = phases[name][1:]  # the first step is the warm-up
        for phase in measured[0]:
            fractions = [seconds[phase] / sum(seconds.values()) for seconds in measured]
            report[f"train_{name}_{phase}_fraction"] = spread(fractions)
    if batch_size != args.train_batch_size:
        scale = args.train_batch_size / batch_size
        for name in ("plain", "checkpointing"):
            key = "train_step_s" if name == "plain" else "train_step_checkpointing_s"
            value = statistics.median(timings.wall[name]) * scale
            report[f"{key}_batch{args.train_batch_size}"] = f"{value:.1f} (ESTIMATE: linear in the batch)"


def vocabulary_switch_time(
    args: argparse.Namespace, report: Report, dapo: Dapo, tokens: dict[str, torch.Tensor]
) -> None:
    """A vocabulary switch (the text encoder over E × (K + 1) prompts) at the needed and the full length, beside
    one image's forward pass of the same model."""
    net = dapo.model.eval()
    image = make_images(1, args.image_size, args.device)

    def switch(name: str) -> Callable[[], object]:
        def run() -> None:
            net.tokens = tokens[name]
            with torch.inference_mode():
                net.encode_states()

        return run

    with torch.inference_mode():
        net.states()  # cached: the image forward below runs no text encoder

    def image_forward() -> None:
        with torch.inference_mode(), autocast(args):
            net(image)

    timings = interleaved(
        {"needed": switch("needed"), "full": switch("full"), "image": image_forward}, args.repeats, args.device
    )
    net.tokens = tokens["needed"]
    timings.record(report, "vocabulary_switch_needed_over_full_text_length_time", "needed", "full", args.cuda)
    timings.record(report, "vocabulary_switch_over_image_forward_time", "needed", "image", args.cuda)
    timings.record(report, "vocabulary_switch_full_text_length_over_image_forward_time", "full", "image", args.cuda)


# ------------------------------------------------------------------------------------------------ memory


def _status_bytes(field: str) -> int:
    """A memory field of /proc/self/status (given in KiB)."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        msg = f"/proc/self/status has no {field}: CPU peak memory needs Linux."
        raise RuntimeError(msg)
    return int(match.group(1)) * 1024


def measure_peak(work: Callable[[], object], device: str) -> dict[str, float]:
    """Peak memory of ``work``: total, and the increase over the memory in use before it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        work()
        torch.cuda.synchronize(device)
        peak = torch.cuda.max_memory_allocated(device)
    else:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
        before = _status_bytes("VmRSS")
        work()
        peak = _status_bytes("VmHWM")
    return {"peak_mib": peak / MIB, "working_mib": (peak - before) / MIB}


def run_probe(args: argparse.Namespace) -> dict[str, float]:
    """One memory measurement, the child side of :func:`probe`.

    ``args.probe`` names it: ``dapo``, ``encode_image``, ``winclip`` or ``train:<batch>:<checkpointing 0/1>``.
    """
    kind, *options = args.probe.split(":")
    if kind == "winclip":
        winclip = build_winclip(args.device)
        images = make_images(args.batch_size, WINCLIP_SIZE, args.device)
        return measure_peak(over_batches(in_precision(winclip, args), images, args.batch_size), args.device)
    checkpointing = kind == "train" and options[1] == "1"
    dapo = build_dapo(args, gradient_checkpointing=checkpointing)
    weights = sum(t.numel() * t.element_size() for t in [*dapo.model.parameters(), *dapo.model.buffers()])
    net = dapo.model
    if kind == "train":
        net.train()
        optimizer = dapo.configure_optimizers()
        batch = training_batch(dapo, int(options[0]), args.device)
        result = measure_peak(lambda: train_step(dapo, optimizer, batch, args), args.device)
    else:
        net.eval()
        with torch.inference_mode():
            net.states()  # cached once per vocabulary: not part of the per-batch memory
        images = make_images(args.batch_size, args.image_size, args.device)
        run = net if kind == "dapo" else net.clip.encode_image
        result = measure_peak(over_batches(in_precision(run, args), images, args.batch_size), args.device)
    return {**result, "weights_mib": weights / MIB}


def probe(args: argparse.Namespace, name: str, tuned: bool = False) -> dict[str, float] | str:
    """Run one memory measurement in a fresh fork of the probe server; a failure (e.g. out of memory) is returned
    as text.

    ``tuned``: with glibc's mmap threshold fixed at 64 KiB, so that freed tensors leave the resident set at
    once (a proxy for what a GPU's caching allocator holds); else the default allocator, as users see it.
    """
    forwarded = ["--backbone", args.backbone, "--image-size", str(args.image_size)]
    forwarded += ["--batch-size", str(args.batch_size), "--images", str(args.batch_size)]
    forwarded += ["--device", args.device, "--dtype", args.dtype, "--probe", name]
    if args.threads:
        forwarded += ["--threads", str(args.threads)]
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([run_probe.__module__, *PROBE_PRELOAD])
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=probe_child, args=(forwarded, tuned, sender), name=f"probe {name}")
    child.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:  # the child ended without a word: killed (e.g. out of memory)
        result = None
    child.join()
    if child.exitcode or not isinstance(result, dict):
        return f"failed (exit {child.exitcode}): {result or ''}"
    return result


def probe_child(argv: list[str], tuned: bool, results: Any) -> None:
    """The probe's side of :func:`probe`, in the fresh fork: send :func:`run_probe`'s figures, or the error.

    A fork starts with the server's allocator, already initialised, so the tuned threshold is set here through
    ``mallopt``, which is what ``MALLOC_MMAP_THRESHOLD_`` does when malloc initialises (it also turns off glibc's
    dynamic threshold), before the model is built.
    """
    try:
        if tuned and not ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD):
            msg = "mallopt(M_MMAP_THRESHOLD) failed: the tuned allocator needs glibc."
            raise RuntimeError(msg)
        args = parse_args(argv)
        if not args.cuda:
            map_the_servers_file_pages()
        if args.threads:
            torch.set_num_threads(args.threads)
        results.send(run_probe(args))
    except Exception as error:  # the figure's failure, reported in its place in the report
        results.send(f"{type(error).__name__}: {error}")
        raise


def map_the_servers_file_pages() -> None:
    """Map into this fork every page of a file mapping (torch's and the other libraries' code and data) that its
    parent, the forkserver, has resident, as a fresh interpreter has them after the same imports.

    fork copies the page tables of anonymous memory only: a file mapping's pages are mapped again as they are
    touched. Without this, the fork's resident set would lack the pages that only the imports touched (about
    350 MiB for torch and anomalib), which a fresh interpreter's peak counts, and the measured work would count
    again those it touches, which a fresh interpreter counted before it. ``/proc/<pid>/pagemap`` gives whether
    each page is present (bit 63; the frame numbers need privileges, the bit does not).
    """
    server, page = os.getppid(), os.sysconf("SC_PAGE_SIZE")
    with open(f"/proc/{server}/pagemap", "rb") as pagemap:
        for line in Path(f"/proc/{server}/maps").read_text().splitlines():
            span, permissions, *_, path = line.split(maxsplit=5)  # the path, else (anonymous memory) the inode 0
            if not path.startswith("/") or not permissions.startswith("r"):
                continue  # anonymous memory, this fork's already, or a mapping that cannot be read
            start, end = (int(address, 16) for address in span.split("-"))
            pagemap.seek(start // page * 8)
            present = np.frombuffer(pagemap.read((end - start) // page * 8), dtype=np.uint64) >> np.uint64(63)
            for index in np.flatnonzero(present):
                ctypes.string_at(start + int(index) * page, 1)  # reading a byte maps the page


def _mib(result: dict[str, float] | str, key: str) -> float | str:
    return result if isinstance(result, str) else round(result[key], 1)


Probed = dict[str, dict[str, float] | str]
"""A figure's probe results by allocator: ``""`` the default one, ``"_tuned_allocator"`` the GPU proxy (CPU only)."""


def probe_both(args: argparse.Namespace, report: Report, prefix: str, name: str) -> Probed:
    """Record ``{prefix}_peak_mib`` and ``{prefix}_working_mib`` with the default allocator and, on CPU, with the
    tuned one (``…_tuned_allocator``); return both results by their suffix."""
    allocators = {"": False} if args.cuda else {"": False, "_tuned_allocator": True}
    results: Probed = {}
    for suffix, tuned in allocators.items():
        results[suffix] = result = probe(args, name, tuned=tuned)
        report[f"{prefix}_peak_mib{suffix}"] = _mib(result, "peak_mib")
        report[f"{prefix}_working_mib{suffix}"] = _mib(result, "working_mib")
    return results


def report_working_ratio(report: Report, key: str, over: Probed, under: Probed) -> None:
    """``key`` (and ``key`` + ``_tuned_allocator``): the ratio of two figures' working memory, per allocator."""
    for suffix, numerator in over.items():
        denominator = under[suffix]
        if not isinstance(numerator, str) and not isinstance(denominator, str):
            report[key + suffix] = round(numerator["working_mib"] / denominator["working_mib"], 3)


def memory(args: argparse.Namespace, report: Report) -> None:
    """Peak memory of inference and of a training step, and the training estimate for the GPU budget."""
    report["memory_method"] = (
        "torch.cuda.max_memory_allocated, fresh process (forkserver fork) per figure"
        if args.cuda
        else "peak RSS (VmHWM after clear_refs) of a fresh process (forkserver fork) per figure: default "
        "allocator, and '_tuned_allocator' with glibc's mmap threshold at 65536 (as MALLOC_MMAP_THRESHOLD_=65536; "
        "freed tensors leave at once: a GPU proxy)"
    )
    inference_runs = ["dapo", "encode_image"] + (["winclip"] if args.winclip else [])
    try:
        results = {name: probe_both(args, report, name, name) for name in inference_runs}
        report_working_ratio(report, "dapo_over_encode_image_working_memory", results["dapo"], results["encode_image"])
        if args.train:
            training_memory(args, report)
    finally:
        # The probe server holds the imports' memory until its parent exits: not beyond the figures (a caller
        # such as the test suite lives on). multiprocessing has no public way to stop it.
        multiprocessing.forkserver._forkserver._stop()


def training_memory(args: argparse.Namespace, report: Report) -> None:
    """Training-step peaks at the measured batches; the training batch on the GPU, measured or estimated.

    On CPU the estimate is fitted to the tuned allocator's figures, the proxy for what a GPU's caching
    allocator holds."""
    target = args.train_batch_size
    proxy, measured_by = ("", "max_memory_allocated") if args.cuda else ("_tuned_allocator", "tuned allocator")
    largest: dict[str, Probed] = {}
    for checkpointing, label in ((False, "plain"), (True, "checkpointing")):
        probed = {
            batch: probe_both(args, report, f"train_{label}_batch{batch}", f"train:{batch}:{int(checkpointing)}")
            for batch in args.train_measure_batches
        }
        results = {batch: result for batch, both in probed.items() if not isinstance(result := both[proxy], str)}
        if not results:
            continue
        largest[label] = probed[max(results)]
        key = f"gpu_train_{label}_batch{target}_peak_gib"
        if args.cuda and target in results:
            report[key] = f"{results[target]['peak_mib'] / 1024:.2f} (MEASURED on {report['device']})"
            continue
        weights = results[max(results)]["weights_mib"]
        points = [(batch, result["working_mib"]) for batch, result in results.items()]
        estimate = (weights + extrapolate(points, target)) / 1024
        fits = "fits" if estimate <= GPU_BUDGET_GIB else "does NOT fit"
        report[key] = (
            f"{estimate:.1f} (ESTIMATE, {fits} {GPU_BUDGET_GIB:.0f} GiB: weights {weights:.0f} MiB + working memory "
            f"fitted linearly over {args.device} batches {', '.join(map(str, results))} ({measured_by}), "
            f"{args.dtype}, CUDA context not included)"
        )
    if len(largest) == 2:
        ratio_key = "train_checkpointing_over_plain_working_memory"
        report_working_ratio(report, ratio_key, largest["checkpointing"], largest["plain"])


def extrapolate(points: list[tuple[int, float]], batch: int) -> float:
    """Working memory at ``batch`` from a line fitted to (batch, MiB) points; one point: proportional."""
    if len(points) == 1:
        return points[0][1] * batch / points[0][0]  # no fixed part assumed: an over-estimate
    slope, intercept = statistics.linear_regression(*zip(*points, strict=True))
    return intercept + slope * batch


# ------------------------------------------------------------------------------------------------ report


def machine(args: argparse.Namespace) -> Report:
    """What the figures were taken on."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    report: Report = {
        "device": torch.cuda.get_device_name(args.device) if args.cuda else "cpu",
        "cpu": model.group(1) if model else platform.processor(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "torch": torch.__version__,
        "open_clip": open_clip.__version__,
    }
    config = ("backbone", "image_size", "batch_size", "images", "repeats", "dtype", "train_batch_size")
    report.update({name: getattr(args, name) for name in config})
    report["vocabulary_size"] = len(VOCABULARY)
    return report


def print_report(report: Report) -> None:
    """One ``key: value`` line per figure."""
    width = max(map(len, report))
    for key, value in report.items():
        print(f"{key:<{width}} : {value}")


def main(argv: Sequence[str] | None = None) -> Report:
    """Run the benchmark and print its report."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    report = machine(args)
    inference(args, report)
    if args.train:
        training_time(args, report)
    if args.memory:
        memory(args, report)
    print_report(report)
    return report


if __name__ == "__main__":
    main()
