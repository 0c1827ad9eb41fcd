#!/usr/bin/env bash
# Write to .whl/ the wheels that benchmarks/gpu_check.sh installs offline on a GPU machine without network:
# the packages anomalib-dapo needs that the workplace's CUDA image (Python 3.12, torch, lightning, timm,
# torchmetrics, opencv, pandas, scikit-image ...) lacks, at the versions this project is tested with.
# Run it here once, from the repository root; .whl/ is git-ignored, so name it in the device run's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
WHEELS=(
    anomalib==2.7.0 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4
    jsonargparse==4.46.0 docstring_parser==0.18.0 typeshed_client==2.15.0 rich-argparse==1.8.0
    omegaconf==2.4.0 kornia==0.9.0 kornia_rs==0.2.0 platformdirs==4.14.9
)
SOURCE_ONLY=(FrEIA==0.2)  # pure Python, published as source only: built into a wheel here
platforms=()
for tag in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done
"$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d .whl "${WHEELS[@]}"
"$PYTHON" -m pip wheel --no-deps -w .whl "${SOURCE_ONLY[@]}"
du -sh .whl
