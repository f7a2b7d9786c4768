"""Fixtures shared by the test modules (the helpers they import are in ``helpers.py``)."""

import pytest

from tests.helpers import compose_config


@pytest.fixture
def config():
    """``config(*overrides)``: the composed config, as ``python -m logreg_exp`` would run it."""
    return compose_config
