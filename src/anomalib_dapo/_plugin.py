"""Registers the plugin's models with anomalib in every program, without importing torch at start-up.

anomalib finds models among ``AnomalibModule``'s subclasses (``get_model``, and the CLI through
jsonargparse), so the plugin must be imported once ``anomalib.models`` is. ``install`` (run by the
``anomalib_dapo_plugin.pth`` file that ``pip install`` puts in site-packages) adds a one-shot import
hook that imports :mod:`anomalib_dapo.models` right after ``anomalib.models`` has been executed. The
``anomalib.models`` entry point declared in ``pyproject.toml`` names the same class for tools that
read entry points.
"""

import importlib.util
import logging
import sys
from collections.abc import Sequence
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

TRIGGER = "anomalib.models"
PLUGIN = "anomalib_dapo.models"


class _RegisterAfter(MetaPathFinder):
    """Finds ``anomalib.models`` like the regular finders, and imports the plugin after executing it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        del path, target
        if fullname != TRIGGER:
            return None
        sys.meta_path.remove(self)  # one-shot, and keeps the lookup below from coming back here
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenImportPlugin(spec.loader)
        return spec


class _ThenImportPlugin(Loader):
    def __init__(self, loader: Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        try:
            register(module)
        except Exception:  # a broken plugin must not break anomalib itself
            logging.getLogger(__name__).exception("anomalib-dapo could not register its models with anomalib.")


def register(anomalib_models: ModuleType) -> None:
    """Import the plugin's models and name them on ``anomalib.models`` too.

    The names are needed by ``get_model`` for dict configs (``{"class_path": "Dapo"}``, the form of
    ``anomalib benchmark`` configs), which it looks up on ``anomalib.models`` alone; nothing of anomalib's
    is replaced.
    """
    plugin = importlib.import_module(PLUGIN)
    base = anomalib_models.AnomalibModule
    for name in plugin.__all__:
        model = getattr(plugin, name)
        if isinstance(model, type) and issubclass(model, base) and not hasattr(anomalib_models, name):
            setattr(anomalib_models, name, model)


def install() -> None:
    """Register now if anomalib's models are loaded already, else as soon as they are."""
    if TRIGGER in sys.modules:
        register(sys.modules[TRIGGER])
    elif not any(isinstance(finder, _RegisterAfter) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfter())
