import pytest


@pytest.fixture
def multiads_kwargs(tiny_kwargs) -> dict:
    """The tiny test configuration without Dapo's prompt-learning options."""
    return {key: value for key, value in tiny_kwargs.items() if key not in {"text_depth", "num_prompts"}}
