"""Where one Dapo training step spends its time: torch.profiler's operators, by self time, after a warm-up step.

It prints the operator table and the time under each of the step's phases (``record_function`` scopes around
the text encoder, the image encoder, the loss, backward and the optimizer), as shares of the step. Random
weights (``pretrained=None``): the cost does not depend on them. On a shared machine the shares hold, the
seconds do not.

Example::

    python benchmarks/profile_step.py --backbone ViT-L-14-336 --image-size 518 --batch-size 1 --threads 1
"""

import argparse
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from bench_dapo import build_dapo, parse_args, train_step, training_batch
from torch.profiler import ProfilerActivity, profile, record_function


def scoped(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``method`` inside a profiler scope called ``name``."""

    def run(*args: Any, **kwargs: Any) -> Any:
        with record_function(name):
            return method(*args, **kwargs)

    return run


def main(argv: Sequence[str] | None = None) -> None:
    """Profile one training step at ``--batch-size``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=25, help="operators listed")
    own, rest = parser.parse_known_args(argv)
    args = parse_args(rest)
    if args.threads:
        torch.set_num_threads(args.threads)
    dapo = build_dapo(args)
    net = dapo.model.train()
    net.encode_states = scoped(net.encode_states, "phase: text forward")
    net.encode_image = scoped(net.encode_image, "phase: vision forward")
    optimizer = dapo.configure_optimizers()
    batch = training_batch(dapo, args.batch_size, args.device)
    train_step(dapo, optimizer, batch, args)  # warm-up
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.cuda else [])
    with warnings.catch_warnings(), profile(activities=activities) as prof:
        warnings.simplefilter("ignore")
        with record_function("phase: step"):
            train_step(dapo, optimizer, batch, args)
    events = prof.key_averages()
    print(events.table(sort_by="self_cuda_time_total" if args.cuda else "self_cpu_time_total", row_limit=own.rows))
    totals = {event.key: event.cpu_time_total for event in events if event.key.startswith("phase: ")}
    step = totals.pop("phase: step")
    for name, value in sorted(totals.items()):
        print(f"{name:<24} {value / step:6.3f} of the step (CPU time, forward only; backward in the table)")


if __name__ == "__main__":
    main()
