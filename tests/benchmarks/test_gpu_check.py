"""The reduced CPU form of benchmarks/gpu_check.sh, so that the GPU script cannot rot before a GPU is lent.

Correctness only: figures are printed, never asserted (the machine running the tests is shared).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "gpu_check.sh"
FIGURES = [
    "float32_dapo_gflops_per_image",
    "float32_encode_image_gflops_per_image",
    "float32_matmul_tflops_measured",
    "float32_batch1_dapo_latency_ms",
    "float32_batch2_encode_image_images_per_s",
    "float32_batch2_dapo_fraction_of_measured_matmul_peak",
    "float32_batch1_dapo_over_encode_image_time",
    "train_plain_step_s",
    "train_checkpointing_step_s",
    "train_checkpointing_over_plain_time",
]


@pytest.mark.slow  # a tiny benchmark, then anomalib train: about a minute on an idle 2-core machine
def test_gpu_check_runs_end_to_end_in_its_cpu_form(tmp_path):
    env = {**os.environ, "GPU_CHECK_CPU": "1", "PYTHON": sys.executable, "OUT": str(tmp_path), "TMPDIR": str(tmp_path)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=900, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    printed = {key.strip(): value for key, _, value in (line.partition(" : ") for line in done.stdout.splitlines())}
    missing = [name for name in FIGURES if not any(key.endswith(name) for key in printed)]
    assert missing == [], output[-4000:]
    assert float(printed["float32_dapo_gflops_per_image"]) > float(printed["float32_encode_image_gflops_per_image"]) > 0
    assert "anomalib train, 1 device" in done.stdout
    assert "DDP skipped" in done.stdout
    assert (tmp_path / "gpu_check.json").is_file()
    assert not (tmp_path / "run1").exists()  # the training run's checkpoints are not brought back
