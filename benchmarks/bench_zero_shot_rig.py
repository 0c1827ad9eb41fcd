"""Side by side on the zero-shot-by-name rig: Dapo variants, MultiAds, few-shot, and the paper's ablations.

Every row trains on the seen kinds and is tested on held-out views of every kind, with the shipped tiny CLIP
(``dapo-tiny`` + ``synthetic``); the main rows are also run on random weights. One table (markdown and CSV) goes
to a new ``results/zero_shot_rig/v<N>``. The rig ranks methods on synthetic data: it says nothing about accuracy
on real products.

Not in the table: MultiAds-F (product-filtered vocabulary) equals MultiAds here, because every product of the rig
can show every kind but ``missing``; anomalib's WinClip builds its own ViT-B-16-plus-240 with LAION weights
(``anomalib.models.image.winclip.torch_model.BACKBONE``) and cannot run on the tiny CLIP.

    python benchmarks/bench_zero_shot_rig.py [--steps 150] [--train-per-state 20] [--test-per-state 10]
"""

import sys

from anomalib_dapo.pipelines.zero_shot_rig import main

BESIDE_RANDOM = ["Dapo (paper defaults)", "Dapo, adapters from projection", "MultiAds"]

if __name__ == "__main__":
    main(["--variants", "all", "--random-beside", *BESIDE_RANDOM, *sys.argv[1:]])
