import pytest

from tiny import PROMPT_OPTIONS, tiny_config


@pytest.fixture
def multiads_kwargs() -> dict:
    """The tiny test configuration without Dapo's prompt-learning options."""
    return tiny_config(drop=PROMPT_OPTIONS)
