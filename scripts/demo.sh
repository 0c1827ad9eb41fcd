#!/usr/bin/env bash
# The demo: Dapo on the shipped tiny CLIP finds and names defect kinds it never trained on, by text alone;
# then the stock `anomalib` train/test/predict workflow on the built-in synthetic dataset.
# Outputs land in new versioned folders of results/.
set -euo pipefail
cd "$(dirname "$0")/.."

cat <<'BANNER'
=====================================================================================================
 anomalib-dapo DEMO. Backbone: "dapo-tiny" with the shipped "synthetic" weights, a 4-layer, 64-wide
 CLIP that this project pretrained (dapo-pretrain-tiny) on SYNTHETIC close-ups of three procedural
 products with seven defect kinds. It is not OpenAI's CLIP and has never seen a real image: the
 numbers below rank methods on synthetic data and say nothing about accuracy on real products.
 For real use (ViT-L-14-336 weights, real datasets) see "Real use" in README.md.
=====================================================================================================
BANNER

echo ">> 1. zero-shot by name: Dapo learns on scratch, hole, stain, missing only, then is tested on held-out"
echo "      views of all seven kinds; crack, burn and contamination are named only by text (random weights beside)"
dapo-zero-shot-rig --steps 40 --train-per-state 8 --test-per-state 4 --pictures 2 --output results/demo_rig

data=./datasets/SyntheticDefects
dapo-synthetic --root "$data/source" --seed 0 --image_size 64 >/dev/null
dapo-synthetic --root "$data/target" --seed 1 --image_size 64 >/dev/null

echo ">> 2. anomalib train: the prompts learn on the synthetic disc, grid and tile (seed 0)"
anomalib train --config configs/demo.yaml

run=results/Dapo/CrossDataset/tile/latest
weights="$run/weights/lightning/model.ckpt"
echo ">> learned checkpoint: $weights ($(du -h "$weights" | cut -f1); the frozen CLIP is not in it)"

echo ">> anomalib test: held-out tile images (seed 1), types scratch, hole, stain"
anomalib test --config configs/demo.yaml --model.weights "$weights"

echo ">> anomalib predict: a folder of tile images, with defect types named by text"
anomalib predict --config configs/demo.yaml --model.weights "$weights" \
  --model.defect_types "[scratch, hole, stain]" --data "$data/target/tile/test/stain"
echo ">> pictures of the unseen kinds (truth | predicted): the newest results/demo_rig/v*"
echo ">> pictures with the defect types: results/Dapo/CrossDataset/tile/v*/images (each test run in a version folder of its own; latest stays the training run) and results/Dapo/latest/images*"
