#!/usr/bin/env bash
# Dapo's GPU figures in one short run (about 5 minutes on one H200; at most 8), from the repository root:
#
#   bash benchmarks/gpu_check.sh                    # on a GPU machine
#   GPU_CHECK_CPU=1 bash benchmarks/gpu_check.sh    # the reduced CPU form (tiny backbone) the test suite runs
#
# 1. benchmarks/gpu_check.py: inference latency and images/s of Dapo beside the bare encode_image (ViT-L-14-336,
#    518 px, float32 and bfloat16, batch 1 and 32), FLOPs per image and the achieved fraction of the peak, and
#    training step time and peak GPU memory at batch 8 with and without gradient checkpointing;
# 2. `anomalib train --model anomalib_dapo.Dapo` for a few steps with --trainer.precision bf16-mixed on a
#    synthetic dataset that step 1 writes;
# 3. the same on two GPUs with DDP when more than one is present.
#
# Random weights throughout (time and memory do not depend on them). A GPU machine without network gets the
# Python packages it lacks from .whl/ (wheels written here by benchmarks/gpu_wheels.sh and carried along):
# they are installed offline into a private folder. Figures and logs go to $OUT (or ./gpu_check_out).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1

if [[ -z "${GPU_CHECK_CPU:-}" ]] && compgen -G ".whl/*.whl" >/dev/null; then  # the CPU form uses this env
    site=${TMPDIR:-/tmp}/gpu_check_site
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" .whl/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
anomalib_cli=("$PYTHON" -m anomalib.cli.cli)

if [[ -n "${GPU_CHECK_CPU:-}" ]]; then
    device=cpu accelerator=cpu precision=32-true gpus=0
    check=(--backbone dapo-tiny --image-size 64 --device cpu --dtypes float32 --batches 1 2 --train-batch 2
        --repeats 1 --matmul-size 256)
    model=(--model.backbone dapo-tiny --model.image_size 64 --model.text_depth 4 --model.adapter_layers "[2, 4]")
else
    device=cuda accelerator=gpu precision=bf16-mixed
    gpus=$("$PYTHON" -c "import torch; print(torch.cuda.device_count())")
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia_smi.csv"
    check=(--peak-tflops '{"bfloat16": 989, "float32": 67}')  # H100/H200 SXM datasheet, dense
    model=(--model.backbone ViT-L-14-336 --model.image_size 518)
fi

echo "== 1. inference and training figures (and the synthetic datasets of step 2)"
data=${TMPDIR:-/tmp}/gpu_check_data
"$PYTHON" benchmarks/gpu_check.py --device "$device" "${check[@]}" --synthetic-data "$data" 2>&1 \
    | tee "$OUT/gpu_check.txt"

echo "== 2. anomalib train --model Dapo, a few steps, precision $precision"
train=(train --model anomalib_dapo.Dapo --model.pretrained null "${model[@]}" --model.visualizer false
    --data anomalib_dapo.data.CrossDataset --data.source synthetic --data.source_root "$data/source"
    --data.target synthetic --data.target_root "$data/target" --data.target_category tile
    --data.train_batch_size 8 --data.eval_batch_size 8
    --trainer.max_steps 4 --trainer.accelerator "$accelerator" --trainer.precision "$precision"
    --trainer.logger false)
start=$SECONDS
"${anomalib_cli[@]}" "${train[@]}" --trainer.devices 1 --default_root_dir "$OUT/run1" 2>&1 | tail -n 40 | tee "$OUT/train_1gpu.txt"
echo "anomalib train, 1 device: $((SECONDS - start)) s (model build, 4 steps, validation and test included)"

if (( gpus > 1 )); then
    echo "== 3. the same with DDP on 2 GPUs"
    start=$SECONDS
    "${anomalib_cli[@]}" "${train[@]}" --trainer.devices 2 --trainer.strategy ddp --default_root_dir "$OUT/run2" \
        2>&1 | tail -n 40 | tee "$OUT/train_ddp.txt"
    echo "anomalib train, 2 devices (DDP): $((SECONDS - start)) s"
else
    echo "== 3. DDP skipped: $gpus GPU(s)"
fi
rm -rf "$OUT/run1" "$OUT/run2"  # checkpoints: not figures, and too large to bring back
echo "gpu_check done"
