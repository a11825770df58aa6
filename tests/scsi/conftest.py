"""Fixtures for the SCSI layer tests: array configs built in code, LUs with the fake
reservation engine, arrays whose file-backed LUNs live in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fcsoft.config import ArrayConfig, HostConfig, LunConfig
from fcsoft.scsi.array import ScsiArray
from fcsoft.scsi.disk import LogicalUnit

from .fakes import HOST1, HOST1B, HOST2, NODE, PORT1, PORT2, fake_factory, ready


def array_config(luns: tuple[LunConfig, ...] | None = None,
                 hosts: tuple[HostConfig, ...] | None = None) -> ArrayConfig:
    if luns is None:
        luns = (LunConfig("boot", 4 << 20), LunConfig("data", 64 << 20),
                LunConfig("big4k", 1 << 40, block_size=4096))
    if hosts is None:
        hosts = (HostConfig("host1", (HOST1, HOST1B), ((0, "boot"), (1, "data"), (300, "big4k"))),
                 HostConfig("host2", (HOST2,), ((5, "data"),)))
    return ArrayConfig("array1", NODE, (PORT1, PORT2), vendor="FCSOFT", product="VDISK",
                       luns=luns, hosts=hosts)


@pytest.fixture
def config() -> ArrayConfig:
    return array_config()


@pytest.fixture
def lu(config: ArrayConfig) -> Iterator[LogicalUnit]:
    """LU "boot": 4 MiB of 512-byte blocks, in memory, fake reservation engine."""
    unit = LogicalUnit(config, 0, engine_factory=fake_factory)
    yield unit
    unit.close()


@pytest.fixture
def array(config: ArrayConfig) -> Iterator[ScsiArray]:
    a = ScsiArray(config, engine_factory=fake_factory)
    yield a
    a.close()


@pytest.fixture
def rlu(lu: LogicalUnit) -> LogicalUnit:
    """The "boot" LU with nexus() past its power-on unit attention."""
    ready(lu)
    return lu


@pytest.fixture
def file_lu(tmp_path: Path) -> Iterator[LogicalUnit]:
    """A 1 MiB file-backed LU, nexus() past its power-on unit attention."""
    config = array_config(luns=(LunConfig("file", 1 << 20, backing=tmp_path / "f.img"),),
                          hosts=())
    unit = LogicalUnit(config, 0, engine_factory=fake_factory)
    ready(unit)
    yield unit
    unit.close()


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The file descriptors os.fsync is called with from now on (it still syncs)."""
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls
