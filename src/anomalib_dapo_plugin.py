"""Start-up hook of anomalib-dapo: registers the plugin's models once ``anomalib.models`` is imported.

``pip install`` puts ``anomalib_dapo_plugin.pth`` in site-packages, so every interpreter of the environment runs
:func:`install` at start-up. That must stay nearly free: this module imports nothing beyond ``sys`` (not the
plugin, not torch, not even ``importlib.abc`` or ``typing``) and only adds a finder to ``sys.meta_path``. anomalib
finds models among ``AnomalibModule``'s subclasses (``get_model``, and its CLI through jsonargparse), so the
finder imports :mod:`anomalib_dapo.models` right after ``anomalib.models`` has been executed: by then the
``anomalib`` console script, ``import anomalib.models`` and ``get_model`` see ``Dapo`` and ``MultiAds``.
"""

import sys

TRIGGER = "anomalib.models"
PLUGIN = "anomalib_dapo.models"


class _RegisterAfter:
    """A one-shot ``sys.meta_path`` finder: finds ``anomalib.models`` as the other finders do, then wraps its loader."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> object:
        if fullname != TRIGGER:
            return None
        sys.meta_path.remove(self)  # one-shot, and keeps the lookup below from coming back here
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenImportPlugin(spec.loader)
                return spec
        return None


class _ThenImportPlugin:
    """Executes ``anomalib.models`` with its own loader, then imports the plugin's models."""

    def __init__(self, loader: object) -> None:
        self.loader = loader

    def __getattr__(self, name: str) -> object:
        return getattr(self.loader, name)  # everything else (resource readers, source) is the wrapped loader's

    def create_module(self, spec: object) -> object:
        return self.loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: object) -> None:
        self.loader.exec_module(module)  # type: ignore[attr-defined]
        try:
            __import__(PLUGIN)  # a no-op while the plugin is itself importing anomalib
        except Exception:  # a broken plugin must not break anomalib itself
            import logging

            logging.getLogger(__name__).exception("anomalib-dapo could not register its models with anomalib.")


def install() -> None:
    """Register now if anomalib's models are loaded already, else as soon as they are."""
    if TRIGGER in sys.modules:
        __import__(PLUGIN)
    elif not any(isinstance(finder, _RegisterAfter) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfter())
