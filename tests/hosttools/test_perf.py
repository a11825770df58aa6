"""`fcsoft perf` as a user runs it, in a subprocess against a live built-in lab: every
workload completes with no error, --verify catches data that is not what was written, the
JSON has the documented keys, and bad usage is one line with sg3_utils' status 1."""

from __future__ import annotations

import json

import pytest

from tests.hosttools.test_tools import H1, PORT1, tool

KEYS = {"iops", "mbps", "p50_ms", "p99_ms", "p999_ms", "ios", "errors", "seconds"}


@pytest.mark.parametrize("rw, extra", [
    ("randread", ()), ("randwrite", ()), ("read", ("--bs", "128k")),
    ("write", ("--bs", "64k")), ("randrw", ("--mix", "70")),
])
async def test_each_workload_runs_and_verifies(fcsoft_lab, rw, extra):
    r = await tool(fcsoft_lab, "perf", "--target", PORT1, "--lun", "1", "--rw", rw,
                   "--count", "300", "--qd", "8", "--size", "8m", "--verify", "--json", *extra)
    assert r.rc == 0, r.err
    out = json.loads(r.out)
    assert KEYS <= set(out)
    assert out["ios"] == 300 and out["errors"] == 0
    assert out["p50_ms"] <= out["p99_ms"] <= out["p999_ms"]
    reads = {"randread": 300, "read": 300, "randwrite": 0, "write": 0}.get(rw)
    if reads is not None:
        assert out["reads"] == reads


async def test_verify_catches_foreign_data(fcsoft_lab):
    # the region holds the pattern after a verified write run ...
    r = await tool(fcsoft_lab, "perf", "--target", PORT1, "--lun", "2", "--rw", "write",
                   "--count", "64", "--size", "1m", "--bs", "16k", "--verify", "--json")
    assert r.rc == 0, r.err
    # ... then another initiator overwrites one block: a verified read run must notice
    async with fcsoft_lab.host(H1) as host, host.connect(PORT1) as it:
        await it.test_unit_ready()
        await it.write(lun=2, lba=0, data=b"\xee" * 4096)
    r = await tool(fcsoft_lab, "perf", "--target", PORT1, "--lun", "2", "--rw", "read",
                   "--count", "64", "--size", "1m", "--bs", "16k", "--json",
                   "--verify-only", "--initiator", "10:00:00:00:c9:00:00:02")
    assert r.rc == 1
    assert json.loads(r.out)["errors"] == 1  # the 16 KiB at LBA 0, read once
    assert "READ LBA 0: data does not match what was written" in r.err


@pytest.mark.parametrize("args, message", [
    (("--bs", "1000"), "not a multiple of the LU's block size"),
    (("--qd", "0"), "must be at least 1"),
    (("--rw", "sideways"), "invalid choice"),
    (("--seconds", "1", "--count", "5"), "not allowed with"),
    (("--rw", "write", "--verify-only"), "--verify-only needs a read workload"),
])
async def test_bad_usage(fcsoft_lab, args, message):
    r = await tool(fcsoft_lab, "perf", "--target", PORT1, *args)
    assert r.rc == 1, (r.rc, r.err)
    assert message in r.err
    assert "Traceback" not in r.err
