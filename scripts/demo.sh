#!/usr/bin/env bash
# The demo: Dapo on the shipped tiny CLIP finds and names defect kinds it never trained on, by text alone;
# then the stock `anomalib` train (fit, then test: the metrics table) and predict on the built-in synthetic dataset.
# Outputs land in new versioned folders of results/.
set -euo pipefail
cd "$(dirname "$0")/.."
# Three third-party deprecation notices, by message, as in the test configuration (pyproject.toml): timm and
# anomalib's own dinov2 module at import, Lightning's pytree helper with recent torch. Every other warning shows.
export PYTHONWARNINGS="ignore:Importing from timm.models.layers is deprecated:FutureWarning,ignore:The anomalib.models.components.dinov2 package is deprecated:FutureWarning,ignore:\`isinstance(treespec"

cat <<'BANNER'
=== anomalib-dapo demo. BACKBONE: "dapo-tiny" with the shipped "synthetic" weights, a 4-layer, 64-wide CLIP this
=== project pretrained on SYNTHETIC defects only (docs/tiny_clip.md); not OpenAI's CLIP, never shown a real image.
=== Its numbers rank methods on synthetic data and say nothing about real products: see "Real use" in README.md.
BANNER

echo ">> 1. zero-shot by name: Dapo learns on scratch, hole, stain, missing only, and is tested on held-out views"
echo "   of all seven kinds: crack, burn and contamination are named by text alone (random weights beside)"
dapo-zero-shot-rig --steps 20 --train-per-state 8 --test-per-state 4 --pictures 2 --output results/demo_rig

echo ">> 2. anomalib train: the prompts learn on the synthetic disc, grid and tile (seed 0), then are tested on"
echo "   held-out tile images (seed 1), types scratch, hole, stain: the metrics table"
# The synthetic datamodules of configs/demo.yaml write the data, under ./datasets/SyntheticDefects, on first use.
anomalib train --config configs/demo.yaml

weights=results/Dapo/CrossDataset/tile/latest/weights/lightning/model.ckpt
echo ">> learned checkpoint: $weights ($(du -h "$weights" | cut -f1); the frozen CLIP is not in it)"
echo ">> anomalib predict: a folder of tile images, with defect types named by text"
anomalib predict --config configs/demo.yaml --model.weights "$weights" \
  --model.defect_types "[scratch, hole, stain]" --data ./datasets/SyntheticDefects/target/tile/test/stain
echo ">> pictures: unseen kinds, truth | predicted: the newest results/demo_rig/v*; tested and predicted images"
echo "   with their defect types: results/Dapo/CrossDataset/tile/v*/images and results/Dapo/latest/images*"
