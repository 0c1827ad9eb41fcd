"""Start-up hook of anomalib-dapo: registers the plugin's models once ``anomalib.models`` is imported.

``pip install`` puts ``anomalib_dapo_plugin.pth`` in site-packages, so every interpreter of the environment runs
:func:`install` at start-up. That must stay nearly free: this module imports nothing beyond ``sys`` (not the
plugin, not torch, not even ``importlib.abc`` or ``typing``) and only adds a finder to ``sys.meta_path``. anomalib
finds models among ``AnomalibModule``'s subclasses (``get_model``, and its CLI through jsonargparse), so the
finder imports :mod:`anomalib_dapo.models` right after ``anomalib.models`` has been executed: by then the
``anomalib`` console script, ``import anomalib.models`` and ``get_model`` see ``Dapo`` and ``MultiAds``. After
``anomalib.cli.cli`` it applies the workarounds for anomalib 2.7's CLI: the config's seed, and the plugin's errors
in the last lines (see :mod:`anomalib_dapo.compat`). After ``anomalib.cli.pipelines`` it makes ``anomalib
benchmark`` run the plugin's benchmark, which writes every job's row and exits non-zero when a job failed (see
:mod:`anomalib_dapo.compat`).
"""

import sys

HOOKS = {
    "anomalib.models": ("anomalib_dapo.models", None),
    "anomalib.cli.cli": ("anomalib_dapo.compat", "apply_cli_workarounds"),
    "anomalib.cli.pipelines": ("anomalib_dapo.compat", "register_benchmark_command"),
}
"""For each anomalib module: the plugin module to import right after it, and a function of it to call on it."""


def _run_hook(module: object, trigger: str) -> None:
    plugin_module, function = HOOKS[trigger]
    __import__(plugin_module)  # a no-op while the plugin is itself importing anomalib
    if function is not None:
        getattr(sys.modules[plugin_module], function)(module)


class _RegisterAfter:
    """A ``sys.meta_path`` finder, one-shot per trigger: finds it as the other finders do, then wraps its loader."""

    def __init__(self, triggers: list) -> None:
        self.pending = set(triggers)

    def find_spec(self, fullname: str, path: object, target: object = None) -> object:
        if fullname not in self.pending:
            return None
        self.pending.discard(fullname)
        if not self.pending:
            sys.meta_path.remove(self)
        for finder in sys.meta_path:
            if finder is self:  # keeps the lookup below from coming back here
                continue
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _ThenRunHook(spec.loader, fullname)
                return spec
        return None


class _ThenRunHook:
    """Executes the trigger module with its own loader, then runs the plugin's hook on it."""

    def __init__(self, loader: object, trigger: str) -> None:
        self.loader = loader
        self.trigger = trigger

    def __getattr__(self, name: str) -> object:
        return getattr(self.loader, name)  # everything else (resource readers, source) is the wrapped loader's

    def create_module(self, spec: object) -> object:
        return self.loader.create_module(spec)  # type: ignore[attr-defined]

    def exec_module(self, module: object) -> None:
        self.loader.exec_module(module)  # type: ignore[attr-defined]
        try:
            _run_hook(module, self.trigger)
        except Exception:  # a broken plugin must not break anomalib itself
            import logging

            logging.getLogger(__name__).exception("anomalib-dapo's hook on %s failed.", self.trigger)


def install() -> None:
    """Run each hook now if its anomalib module is loaded already, else as soon as it is."""
    pending = {trigger for finder in sys.meta_path if isinstance(finder, _RegisterAfter) for trigger in finder.pending}
    waiting = []
    for trigger in HOOKS:
        if trigger in sys.modules:
            _run_hook(sys.modules[trigger], trigger)  # each hook may run again: it does nothing twice
        elif trigger not in pending:
            waiting.append(trigger)
    if waiting:
        sys.meta_path.insert(0, _RegisterAfter(waiting))
