"""The start-up hook under its 0.1 name (the hook itself is the top-level module ``anomalib_dapo_plugin``).

The hook stays outside this package so that a plain interpreter start-up never imports it; the models are named
on anomalib by :func:`anomalib_dapo.compat.name_on_anomalib`.
"""


def install() -> None:
    """The start-up hook, under the name the ``.pth`` line of anomalib-dapo 0.1.0 called.

    An editable install keeps the ``.pth`` file it copied at install time: after a ``git pull`` the old line
    still runs until the project is reinstalled.
    """
    import anomalib_dapo_plugin

    anomalib_dapo_plugin.install()
