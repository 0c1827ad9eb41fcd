"""Under the ``anomalib`` console script, each log line is printed once (anomalib 2.7 configures two handlers)."""

import logging
import sys

from anomalib.loggers import configure_logger

from anomalib_dapo import Dapo
from anomalib_dapo._logging import single_console_handler


def clear(root: logging.Logger) -> None:
    for handler in root.handlers[:]:
        root.removeHandler(handler)


def test_anomalib_console_pair_keeps_the_rich_handler_only(root_handlers, tiny_kwargs):
    clear(root_handlers)
    configure_logger()  # what `anomalib` runs first: basicConfig's plain handler and a RichHandler
    assert len(root_handlers.handlers) == 2
    plain, rich = root_handlers.handlers
    Dapo(**tiny_kwargs)
    assert root_handlers.handlers == [rich if rich.console.is_terminal else plain]


def test_a_terminal_keeps_the_rich_handler(root_handlers, monkeypatch):
    clear(root_handlers)
    configure_logger()
    _, rich = root_handlers.handlers
    monkeypatch.setattr(rich.console, "_force_terminal", True)
    single_console_handler()
    assert root_handlers.handlers == [rich]


def test_other_logging_set_ups_are_left_alone(root_handlers):
    clear(root_handlers)
    mine = [logging.StreamHandler(sys.stderr), logging.FileHandler("/dev/null")]
    for handler in mine:
        root_handlers.addHandler(handler)
    single_console_handler()
    assert root_handlers.handlers == mine
