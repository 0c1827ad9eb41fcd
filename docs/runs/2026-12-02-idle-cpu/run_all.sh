#!/bin/bash
# The idle-machine figures of docs/performance.md, one after another (nothing else runs meanwhile).
cd /work/main
. .venv/bin/activate
export PYTHONWARNINGS=ignore
run() { name=$1; shift; echo "== $name start $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >> /work/bench/log.txt
  /usr/bin/time -v "$@" > /work/bench/$name.txt 2> /work/bench/$name.err
  echo "== $name end $(date +%T) rc $? load $(cut -d' ' -f1-3 /proc/loadavg)" >> /work/bench/log.txt; }
run vitl python benchmarks/bench_dapo.py --backbone ViT-L-14-336 --image-size 518 --batch-size 1 --images 2 \
    --repeats 7 --threads 1 --train-measure-batches 1 2
run profile python benchmarks/profile_step.py --backbone ViT-L-14-336 --image-size 518 --batch-size 1 --threads 1
run tiny_compile python benchmarks/bench_dapo.py --backbone dapo-tiny --image-size 224 --batch-size 8 --images 8 \
    --repeats 25 --threads 1 --no-winclip --compile --train-measure-batches 8
run tiny_winclip python benchmarks/bench_dapo.py --backbone dapo-tiny --image-size 224 --batch-size 8 --images 8 \
    --repeats 7 --threads 1 --no-train --no-memory
run metrics python benchmarks/bench_metrics.py --threads 1
run metrics_type python benchmarks/bench_metrics.py --images 1000 --size 518 --groups type type_previous --threads 1
echo "== all done $(date +%T)" >> /work/bench/log.txt
# Re-run the same day after the type metrics' counts were made faster (the *_counted_once.txt outputs):
#   python benchmarks/bench_metrics.py --threads 1 > metrics_counted_once.txt
#   python benchmarks/bench_metrics.py --images 1000 --size 518 --groups type type_previous --threads 1 \
#       > metrics_type_counted_once.txt
