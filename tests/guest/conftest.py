"""Fixtures for the guest-lab tests."""

from __future__ import annotations

import pytest

from .helpers import require_guest_tools


@pytest.fixture
def guest_tools() -> None:
    """Skip (fail under FCSOFT_REQUIRE_TOOLS=1) unless a guest can be built and booted;
    a plain fixture, so the skip happens before trio starts."""
    require_guest_tools()
