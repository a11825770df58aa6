"""The fcsoft pytest plugin (registered through the `pytest11` entry point).

    import pytest

    @pytest.mark.fcsoft_config('''
    [[array]]
    name = "a1"
    ...
    ''')
    async def test_x(fcsoft_lab):
        async with fcsoft_lab.host("10:00:00:00:c9:00:00:01") as host:
            targets = await host.discover()
            async with host.connect(targets[0].wwpn) as it:
                await it.write(lun=0, lba=0, data=b"x" * 512)

`fcsoft_lab` runs a fabric with the config's arrays inside the test's trio loop, on
127.0.0.1 with an ephemeral port, and tears it down after the test. The marker takes TOML
text or a path to a TOML file; without it the built-in lab runs. Needs pytest-trio; an
async test that uses `fcsoft_lab` is marked as a trio test here, so it runs without
`trio_mode = true` or `@pytest.mark.trio`.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

import pytest

from .lab import LabHandle, load_lab_config


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fcsoft_config(toml_or_path): the fcsoft config for the fcsoft_lab fixture (TOML text "
        "or a path to a TOML file; default: the built-in lab)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every async test that uses `fcsoft_lab` as a trio test (pytest-trio), unless it
    already is: the fixture runs in the test's trio loop, so the test must be one."""
    for item in items:
        if "fcsoft_lab" not in getattr(item, "fixturenames", ()):
            continue
        if item.get_closest_marker("trio") is not None:
            continue
        func = getattr(item, "obj", None)
        inner = getattr(getattr(func, "hypothesis", None), "inner_test", func)
        if inspect.iscoroutinefunction(inner):
            item.add_marker(pytest.mark.trio)


@pytest.fixture
def fcsoft_lab_config(request: pytest.FixtureRequest) -> Any:
    """The config `fcsoft_lab` runs: from the `fcsoft_config` marker, else the built-in lab.
    A bad config is a setup error naming the key and the problem."""
    from fcsoft.config import ConfigError

    marker = request.node.get_closest_marker("fcsoft_config")
    source = marker.args[0] if marker is not None and marker.args else None
    base = Path(str(request.node.fspath)).parent
    try:
        return load_lab_config(source, base_dir=base)
    except ConfigError as exc:
        pytest.fail(f"fcsoft_config: {exc}", pytrace=False)


@pytest.fixture
async def fcsoft_lab(fcsoft_lab_config: Any, nursery: Any) -> Any:
    """A running fcsoft fabric with its arrays (see `fcsoft.testing.lab.LabHandle`)."""
    from fcsoft.server.process import run_process

    conf = fcsoft_lab_config
    lab = await nursery.start(functools.partial(run_process, conf, ("127.0.0.1", 0),
                                                wait_ready=True))
    return LabHandle(lab)
