"""Smoke test of benchmarks/bench_metrics.py in its reduced form: every group runs and reports its figures.

Correctness only: no timing is asserted (the machine running the tests is shared and its load unknown).
"""

import importlib.util
from pathlib import Path

BENCH = Path(__file__).parents[2] / "benchmarks" / "bench_metrics.py"


def test_reduced_benchmark_reports_every_group(capsys):
    spec = importlib.util.spec_from_file_location("bench_metrics", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--images", "4", "--size", "32", "--batch-size", "2", "--pool", "1", "--in-process"])
    assert [r["group"] for r in results] == list(module.GROUPS)
    printed = capsys.readouterr().out
    for figures in results:
        assert figures["images"] == 4 and figures["batches"] == 2
        assert 0 < figures["update_images_per_s"][0] <= figures["update_images_per_s"][1]
        assert f"{figures['group']:>14} : update" in printed
    by_group = {r["group"]: r for r in results}
    # The fine histogram is bounded and the same at any run size; anomalib's pixel metrics keep every pixel.
    assert by_group["type"]["state_mib"] > 0 and by_group["pixel"]["state_mib_per_image"] > 0
    assert 0.5 <= by_group["type"]["macro_type_auroc"] <= 1
