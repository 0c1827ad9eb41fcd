"""Side by side on the zero-shot-by-name rig: the methods, few-shot, and the paper's ablations, in one table.

Every row trains on the seen kinds and is tested on the same held-out views of every kind, with the shipped tiny
CLIP (``dapo-tiny`` + ``synthetic``): Dapo (paper defaults; adapters from the projection; plain prefix tuning;
object-agnostic, the AnomalyCLIP-style baseline; 2-shot), MultiAds, MultiAds-F (each product scored with its own
kinds), MultiAds 2-shot, anomalib's WinClip (a row marked NOT RUN with the reason: it builds its own backbone),
and the ablations λ ∈ {1, 2, 3}, l ∈ {7, 10}, token initialisation random / offset (the reference row,
adapters from the projection, has λ = 4, l = 5, clip, progressive). The main rows also run on random weights.
Binary pixel/image AUROC and AUPRO, and per kind, seen and unseen, the type AUROC and the share named right.
One table (markdown and CSV) goes to a new ``results/zero_shot_rig/v<N>``. The rig ranks methods on synthetic
data: it says nothing about accuracy on real products.

    python benchmarks/bench_zero_shot_rig.py [--steps 100] [--train-per-state 12] [--test-per-state 6]
"""

import sys

from anomalib_dapo.pipelines.zero_shot_rig import main

BESIDE_RANDOM = ["Dapo (paper defaults)", "Dapo, adapters from projection", "MultiAds"]
SIZE = ["--steps", "100", "--train-per-state", "12", "--test-per-state", "6"]  # 629-691 s on 2 cores at a load of 4-6


def main_all(argv: list[str]) -> None:
    """Every row of the rig, the main ones on random weights too; ``argv`` overrides any option."""
    main(["--variants", "all", "--random-beside", *BESIDE_RANDOM, *SIZE, *argv])


if __name__ == "__main__":
    main_all(sys.argv[1:])
