"""Smoke test of benchmarks/bench_dapo.py: it runs end to end on the tiny CLIP and reports every figure.

Correctness only: no timing is asserted (the machine running the tests is shared and its load unknown).
"""

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_dapo.py"

KEYS = [
    "device",
    "cpu",
    "torch",
    "dapo_images_per_s",
    "encode_image_images_per_s",
    "dapo_over_encode_image_time",
    "target_1.15",
    "text_encoder_calls",
    "text_encoder_calls_two_vocabularies",
    "train_step_s",
    "train_step_checkpointing_s",
    "train_checkpointing_over_plain_time",
    "train_needed_text_length_over_full_time",
    "vocabulary_switch_needed_over_full_text_length_time",
    "vocabulary_switch_over_image_forward_time",
    "train_plain_text_forward_fraction",
    "train_plain_vision_forward_fraction",
    "train_plain_heads_and_loss_fraction",
    "train_plain_backward_fraction",
    "memory_method",
    "dapo_peak_mib",
    "dapo_working_mib",
    "encode_image_peak_mib",
    "dapo_over_encode_image_working_memory",
    "dapo_over_encode_image_working_memory_tuned_allocator",
    "train_checkpointing_over_plain_working_memory",
    "train_checkpointing_over_plain_working_memory_tuned_allocator",
    "train_plain_batch1_peak_mib",
    "train_checkpointing_batch1_peak_mib",
    "train_checkpointing_batch1_peak_mib_tuned_allocator",
    "gpu_train_plain_batch2_peak_gib",
    "gpu_train_checkpointing_batch2_peak_gib",
]

PHASES = ("text_forward", "vision_forward", "heads_and_loss", "backward", "optimizer")


@pytest.mark.slow  # a forkserver (one interpreter start) and eight forks measure memory
def test_benchmark_reports_every_figure_and_one_text_encoder_run(capsys, monkeypatch):
    # WinClip is left out: its ViT-B-16-plus-240 takes about a minute per image pair on a small CPU.
    argv = ["--backbone", "dapo-tiny", "--image-size", "64", "--batch-size", "2", "--images", "2", "--repeats", "1"]
    argv += ["--device", "cpu", "--no-winclip", "--train-batch-size", "2", "--train-measure-batches", "1"]
    monkeypatch.syspath_prepend(str(BENCH.parent))  # its memory probes, forks, import it by name
    report = importlib.import_module("bench_dapo").main(argv)
    lines = [line.partition(" : ") for line in capsys.readouterr().out.splitlines()]
    printed = {key.strip(): value for key, _, value in lines}
    assert [key for key in KEYS if key not in printed] == []
    assert report["text_encoder_calls"].startswith("1 for 4 predicted images")
    assert printed["text_encoder_calls_two_vocabularies"] == "2"
    assert "ESTIMATE" in printed["gpu_train_checkpointing_batch2_peak_gib"]
    ratios = {
        "dapo_over_encode_image_working_memory": ("dapo", "encode_image"),
        "train_checkpointing_over_plain_working_memory": ("train_checkpointing_batch1", "train_plain_batch1"),
    }
    for suffix in ("", "_tuned_allocator"):  # each ratio from its own allocator's figures (rounded to 0.1 MiB)
        for ratio, (numerator, denominator) in ratios.items():
            over, under = report[f"{numerator}_working_mib{suffix}"], report[f"{denominator}_working_mib{suffix}"]
            low, high = (over - 0.05) / (under + 0.05), (over + 0.05) / (under - 0.05)
            assert low - 5e-4 <= report[ratio + suffix] <= high + 5e-4, ratio + suffix
    assert not any(printed[key].startswith("failed") for key in KEYS)
    assert printed["text_tokens_needed_full"] == "16 / 77"  # the K = 5 prompts end before token 16
    fractions = [float(printed[f"train_plain_{phase}_fraction"].split()[0]) for phase in PHASES]
    assert all(0 <= fraction <= 1 for fraction in fractions)  # a median each: their sum is near 1, not exactly
