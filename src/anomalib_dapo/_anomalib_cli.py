"""Workaround for anomalib 2.7's CLI, which declares ``seed_everything`` but never applies it.

``anomalib train --config configs/demo.yaml`` with ``seed_everything: 0`` draws other prompt and adapter
initialisations and another batch order at every run (Lightning's own CLI seeds before instantiating the
classes; anomalib 2.7's ``AnomalibCLI`` parses the option and drops it). :func:`apply_config_seed` makes
``AnomalibCLI`` seed as Lightning's CLI does, once the configuration is parsed and before any class is built, when
the seed is an integer. ``True`` (anomalib's default, "a random seed") and ``False`` leave the run unseeded, as
before. Applying the same seed again, should a later anomalib do it too, changes nothing.
"""

from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anomalib.cli import AnomalibCLI

SEEDED = "_anomalib_dapo_seeds"
"""Marks the wrapped method, so that it is wrapped once."""


def config_seed(cli: "AnomalibCLI") -> int | None:
    """The integer ``seed_everything`` of the parsed configuration of the running subcommand, else ``None``."""
    seed = cli.config.get(str(cli.subcommand), cli.config).get("seed_everything")
    return None if isinstance(seed, bool) else seed


def apply_config_seed(cli_module: ModuleType) -> None:
    """Make ``cli_module.AnomalibCLI`` apply an integer ``seed_everything`` before it instantiates the classes."""
    cli_class = cli_module.AnomalibCLI
    original = cli_class.before_instantiate_classes
    if getattr(original, SEEDED, False):
        return

    def before_instantiate_classes(self: "AnomalibCLI") -> None:
        original(self)
        if (seed := config_seed(self)) is not None:
            from lightning.pytorch import seed_everything

            seed_everything(seed, workers=True)

    before_instantiate_classes.__doc__ = original.__doc__
    setattr(before_instantiate_classes, SEEDED, True)
    cli_class.before_instantiate_classes = before_instantiate_classes
