"""Registers the plugin's models with anomalib in every program, without importing torch at start-up.

anomalib finds models among ``AnomalibModule``'s subclasses (``get_model``, and the CLI through
jsonargparse), so the plugin must be imported once ``anomalib.models`` is. ``install`` (run by the
``anomalib_dapo_plugin.pth`` file that ``pip install`` puts in site-packages) adds a one-shot import
hook that imports :mod:`anomalib_dapo.models` right after ``anomalib.models`` has been executed. The
``anomalib.models`` entry point declared in ``pyproject.toml`` names the same class for tools that
read entry points. A second hook, on ``anomalib.cli.cli``, applies the configuration's ``seed_everything``,
which anomalib 2.7's CLI ignores (see :mod:`anomalib_dapo._anomalib_cli`).
"""

import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

TRIGGER = "anomalib.models"
PLUGIN = "anomalib_dapo.models"
CLI = "anomalib.cli.cli"


def _import_plugin(_module: ModuleType) -> None:
    importlib.import_module(PLUGIN)  # a no-op while the plugin is itself importing anomalib


def _seed_cli(module: ModuleType) -> None:
    importlib.import_module("anomalib_dapo._anomalib_cli").apply_config_seed(module)


class _RegisterAfter(MetaPathFinder):
    """Finds ``trigger`` like the regular finders, and runs ``then`` on the module after executing it."""

    def __init__(self, trigger: str, then: Callable[[ModuleType], None]) -> None:
        self.trigger = trigger
        self.then = then

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        del path, target
        if fullname != self.trigger:
            return None
        sys.meta_path.remove(self)  # one-shot, and keeps the lookup below from coming back here
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenRun(spec.loader, self.then)
        return spec


class _ThenRun(Loader):
    def __init__(self, loader: Loader, then: Callable[[ModuleType], None]) -> None:
        self.loader = loader
        self.then = then

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        try:
            self.then(module)
        except Exception:  # a broken plugin must not break anomalib itself
            logging.getLogger(__name__).exception("anomalib-dapo's hook on %s failed.", module.__name__)


def name_on_anomalib(*models: type) -> None:
    """Name the plugin's models on ``anomalib.models`` too (called by :mod:`anomalib_dapo.models` once loaded).

    ``get_model`` looks dict configs (``{"class_path": "Dapo"}``, the form of ``anomalib benchmark`` configs) up
    on ``anomalib.models`` alone. Nothing of anomalib's is replaced.
    """
    anomalib_models = importlib.import_module(TRIGGER)
    for model in models:
        if not hasattr(anomalib_models, model.__name__):
            setattr(anomalib_models, model.__name__, model)


def install() -> None:
    """Register now if anomalib's models (CLI) are loaded already, else as soon as they are."""
    for trigger, then in ((TRIGGER, _import_plugin), (CLI, _seed_cli)):
        if trigger in sys.modules:
            then(sys.modules[trigger])
        elif not any(isinstance(finder, _RegisterAfter) and finder.trigger == trigger for finder in sys.meta_path):
            sys.meta_path.insert(0, _RegisterAfter(trigger, then))
