"""Shared fixtures. MovieLens 100K is read from $AEREC_DATA_HOME/ml-100k and never committed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _ml100k() -> Path | None:
    home = os.environ.get("AEREC_DATA_HOME")
    if not home:
        return None
    d = Path(home) / "ml-100k"
    return d if (d / "u.data").is_file() else None


ML100K = _ml100k()
needs_ml100k = pytest.mark.skipif(
    ML100K is None,
    reason="MovieLens 100K not found: set AEREC_DATA_HOME to a folder holding ml-100k/ "
    "(e.g. AEREC_DATA_HOME=../shared/data); its licence forbids shipping it with the tests",
)


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    """The ml-100k folder (u.data, u.item, u1.base, ...); skips the test when absent."""
    if ML100K is None:
        pytest.skip("MovieLens 100K not found: set AEREC_DATA_HOME to a folder holding ml-100k/")
    return ML100K
