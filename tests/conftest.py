"""Shared test fixtures and the rule for tests that need external tools."""

from __future__ import annotations

import os
import shutil

import pytest


# the Debian package that ships each external program the tests use (sg_*: sg3-utils)
PACKAGES = {
    "tshark": "tshark",
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "depmod": "kmod",
    "dpkg": "dpkg",
    "apt-get": "apt",
    "apt-cache": "apt",
    "chromium": "chromium",
    "chromedriver": "chromium-driver",
    "tgtd": "tgt",
    "tgtadm": "tgt",
    "multipathd": "multipath-tools",
    "multipath": "multipath-tools",
    "dmsetup": "dmsetup",
}


def require_tool(name: str) -> str:
    """Path of `name`; skip the test when missing, or fail when FCSOFT_REQUIRE_TOOLS=1 (CI)."""
    path = shutil.which(name)
    if path is None:
        msg = f"{name} is not installed (apt-get install {PACKAGES.get(name, 'sg3-utils')})"
        if os.environ.get("FCSOFT_REQUIRE_TOOLS") == "1":
            pytest.fail(msg + " and FCSOFT_REQUIRE_TOOLS=1")
        pytest.skip(msg)
    return path
