"""Installation metadata: every requirement on anomalib names extras that anomalib 2.7 provides."""

from importlib.metadata import metadata
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    listed = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    return [Requirement(requirement) for requirement in listed]


def test_anomalib_extras_that_are_required_exist():
    provided = set(metadata("anomalib").get_all("Provides-Extra"))
    anomalib = [requirement for requirement in requirements() if requirement.name == "anomalib"]
    assert anomalib, "the plugin must depend on anomalib"
    for requirement in anomalib:
        assert requirement.extras <= provided, f"{requirement} names extras anomalib does not provide"


def test_installed_versions_meet_the_declared_floors():
    """The versions this suite runs on satisfy what pyproject.toml asks for (no requirement is out of reach)."""
    for requirement in requirements():
        if requirement.marker is None and requirement.name not in {"pytest", "ruff"}:
            version = metadata(requirement.name)["Version"]
            assert requirement.specifier.contains(version, prereleases=True), f"{requirement.name} {version}"
