"""The demo (`make demo`, scripts/demo.sh) run end to end in a copy: what it shows and that it fits one screen."""

import shutil
import subprocess
from pathlib import Path

import pytest

from anomalib_dapo.pipelines.zero_shot_rig import UNSEEN_KINDS

ROOT = Path(__file__).parents[2]
SCREEN = 45
"""Lines of a terminal screen: the demo's output above its metrics table must fit in them."""


@pytest.mark.slow  # the whole demo: about a minute on an idle 2-core machine
def test_the_demo_names_its_backbone_shows_unseen_kinds_named_by_text_and_fits_one_screen(tmp_path):
    for folder in ("scripts", "configs"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    result = subprocess.run(
        ["bash", "scripts/demo.sh"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout[-4000:]
    table = next(number for number, line in enumerate(lines) if "Test metric" in line)
    assert table - 1 <= SCREEN, "\n".join(lines[:table])
    assert 'BACKBONE: "dapo-tiny" with the shipped "synthetic" weights' in result.stdout
    shipped = next(line for line in lines if line.startswith("Dapo, adapters from projection [synthetic]: "))
    random = next(line for line in lines if line.startswith("Dapo, adapters from projection [random]: "))
    assert all(f"{kind} " in shipped and f"{kind} " in random for kind in UNSEEN_KINDS)
    assert _named_right(shipped) >= _named_right(random) + 0.25  # the unseen kinds are named, by text alone
    pictures = sorted(path.name for path in (tmp_path / "results/demo_rig/v1").glob("*_truth_vs_predicted.png"))
    assert [name.split("_")[0] for name in pictures] == sorted(kind for kind in UNSEEN_KINDS for _ in range(2))
    assert "pixel_AUROC" in "\n".join(lines[table:])
    # anomalib predict on a folder through the console script: one picture per image
    predicted = list((tmp_path / "results/Dapo/latest/images").rglob("*.png"))
    folder = tmp_path / "datasets/SyntheticDefects/target/tile/test/stain"
    assert len(predicted) == len(list(folder.glob("*.png"))) > 0


def _named_right(summary: str) -> float:
    """The mean share of unseen-kind pixels named right, from a rig summary line ("... mean 0.95 / 0.64 ...")."""
    return float(summary.rpartition("mean ")[2].split(" / ")[1].split()[0])
