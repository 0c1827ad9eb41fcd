"""Start-up cost of the plugin's ``.pth`` hook: what it adds to every interpreter of the environment.

Runs ``python -X importtime -c pass`` ``--runs`` times and reads, from each run, the cumulative import time of
the modules the hook imports at start-up (``anomalib_dapo_plugin`` and, from an install made before it existed,
``anomalib_dapo``), next to that of ``site`` (all start-up imports, the hook included). Prints min / median /
max in milliseconds over the runs. Run it on an idle machine: timings of a loaded one say little.

Example::

    python benchmarks/bench_startup.py --runs 30
"""

import argparse
import statistics
import subprocess
import sys

HOOK_MODULES = ("anomalib_dapo_plugin", "anomalib_dapo")


def cumulative_ms(importtime: str) -> dict[str, float]:
    """Cumulative import time (ms) of each top-level entry of a ``-X importtime`` report."""
    times = {}
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        times.setdefault(name, int(cumulative) / 1000)  # the first import of a name is the one that costs
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    hook, site = [], []
    for _ in range(args.runs):
        report = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True, check=True
        ).stderr
        times = cumulative_ms(report)
        hook.append(sum(times.get(name, 0.0) for name in HOOK_MODULES))
        site.append(times.get("site", 0.0))
    for label, values in (("hook imports", hook), ("all of site", site)):
        print(
            f"{label:>13}: min {min(values):6.2f} ms  median {statistics.median(values):6.2f} ms  "
            f"max {max(values):6.2f} ms  (n={len(values)})"
        )


if __name__ == "__main__":
    main()
