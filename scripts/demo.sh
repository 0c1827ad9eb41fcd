#!/usr/bin/env bash
# The demo: generate the synthetic dataset, train Dapo's prompts, test zero-shot, predict on a folder.
# Everything goes through the stock `anomalib` command; outputs land in new versioned folders of results/.
set -euo pipefail
cd "$(dirname "$0")/.."

cat <<'BANNER'
=====================================================================================================
 anomalib-dapo DEMO: built-in SYNTHETIC dataset and the tiny RANDOM-WEIGHT CLIP ("dapo-tiny").
 No real CLIP weights or datasets are used, so the metrics below show the workflow, not DAPO's
 accuracy. With ViT-L-14-336 weights and real data, use the commands under "Real use" in README.md.
=====================================================================================================
BANNER

data=./datasets/SyntheticDefects
dapo-synthetic --root "$data/source" --seed 0 --image_size 64 >/dev/null
dapo-synthetic --root "$data/target" --seed 1 --image_size 64 >/dev/null

echo ">> anomalib train: learning the prompts on the anomalies of the synthetic disc, grid and tile (seed 0)"
anomalib train --config configs/demo.yaml

run=results/Dapo/CrossDataset/tile/latest
weights="$run/weights/lightning/model.ckpt"
echo ">> learned checkpoint: $weights ($(du -h "$weights" | cut -f1); the frozen CLIP is not in it)"

echo ">> anomalib test: held-out tile images (seed 1), types scratch, hole, stain"
anomalib test --config configs/demo.yaml --model.weights "$weights"

echo ">> anomalib predict: a folder of tile images, with defect types named by text"
anomalib predict --config configs/demo.yaml --model.weights "$weights" \
  --model.defect_types "[scratch, hole, stain]" --data "$data/target/tile/test/stain"
echo ">> pictures with the defect types: results/Dapo/CrossDataset/tile/v*/images (each test run in a version folder of its own; latest stays the training run) and results/Dapo/latest/images*"
