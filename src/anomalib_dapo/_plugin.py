"""Registration of the plugin's models with anomalib 2.7 (run once :mod:`anomalib_dapo.models` is imported).

The start-up hook that imports it when ``anomalib.models`` is (top-level module ``anomalib_dapo_plugin``, run by
``anomalib_dapo_plugin.pth``) stays outside this package so that a plain interpreter start-up never imports it.
"""

import importlib

TRIGGER = "anomalib.models"
PACKAGE = "anomalib_dapo"
"""The module that saved configs name (``class_path: anomalib_dapo.Dapo``): jsonargparse writes the shortest path."""


def name_on_anomalib(*models: type) -> None:
    """Name the plugin's models on ``anomalib.models``, and let ``get_model`` import configs that name this package.

    ``get_model`` looks dict configs (``{"class_path": "Dapo"}``, the form of ``anomalib benchmark`` configs) up
    on ``anomalib.models`` alone, and imports a dotted ``class_path`` only from the modules in its
    ``ALLOWED_MODULES`` whitelist: the ``config.yaml`` that ``anomalib train`` saves says
    ``anomalib_dapo.Dapo``, which anomalib's ``tools/inference/lightning_inference.py`` would refuse. This
    package is added to that whitelist; nothing of anomalib's is replaced or removed.
    """
    anomalib_models = importlib.import_module(TRIGGER)
    for model in models:
        if not hasattr(anomalib_models, model.__name__):
            setattr(anomalib_models, model.__name__, model)
    anomalib_models.ALLOWED_MODULES.add(PACKAGE)


def install() -> None:
    """The start-up hook, under the name the ``.pth`` line of anomalib-dapo 0.1.0 called.

    An editable install keeps the ``.pth`` file it copied at install time: after a ``git pull`` the old line
    still runs until the project is reinstalled.
    """
    import anomalib_dapo_plugin

    anomalib_dapo_plugin.install()
