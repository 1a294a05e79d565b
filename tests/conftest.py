"""Shared test fixtures.

`shared_data` points at the project's ``shared/data`` folder (next to the checkout, or
``$CRYSPEXT_SHARED_DATA``); tests that need it skip cleanly when it is absent, as in a
user's checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def find_shared_data() -> Path | None:
    env = os.environ.get("CRYSPEXT_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared" / "data", REPO.parent.parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = find_shared_data()
    if path is None:
        pytest.skip("shared/data not available (set CRYSPEXT_SHARED_DATA)")
    return path
