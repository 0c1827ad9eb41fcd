"""One console line per log record under the ``anomalib`` console script (anomalib 2.7).

anomalib's ``configure_logger`` (run by its CLI) calls ``logging.basicConfig``, which puts a plain stderr
handler on the root logger, and then adds a ``RichHandler`` next to it: every record that reaches the root
logger is printed twice, once plain and once rich. :func:`single_console_handler` keeps one of the two when,
and only when, the root logger holds exactly that pair, so any other logging set-up is left alone: the rich
one on a terminal, the plain one otherwise (rich wraps lines at 80 columns in files and pipes).
"""

import logging
import sys

from rich.logging import RichHandler


def single_console_handler() -> None:
    """Keep one of anomalib's plain and rich root handlers: rich on a terminal, plain in logs and pipes."""
    root = logging.getLogger()
    if len(root.handlers) != len(("plain", "rich")):
        return
    plain, rich = root.handlers
    if type(plain) is logging.StreamHandler and plain.stream is sys.stderr and type(rich) is RichHandler:
        root.removeHandler(plain if rich.console.is_terminal else rich)
