"""A closed stdout ends every tool quietly, as a Unix filter ends (`fcsoft ns | head -1`):
nothing on stderr, no traceback, exit status 141 (128 + SIGPIPE, what a shell reports for a
filter whose reader went away), and the tool still logs out of the fabric.

The reader is gone before the tool starts (the read end of its stdout pipe is closed), so
its first write fails, whenever that comes: no timing is involved."""

from __future__ import annotations

import os
import sys

import pytest
import trio

from tests.hosttools.test_tools import BOUND, H1, PORT1, _env

CLOSED = 141

# every tool, in a run that prints something to stdout
RUNS = {
    "ns": ("ns",),
    "ns-query": ("ns", "--gid_pn", PORT1),
    "ping": ("ping", "-c", "2", "-i", "0.01", PORT1),
    "inq": ("inq",),
    "inq-vpd": ("inq", "-p", "0x83"),
    "luns": ("luns",),
    "readcap": ("readcap",),
    "persist": ("persist", "-k"),
    "persist-out": ("persist", "--out", "--register", "--param-sark", "0xabc"),
    "check": ("check", "--target", PORT1, "--lun", "0", "--initiators", H1,
              "--case", "pr-in.read-keys.empty"),
}
# and what needs no fabric at all
OFFLINE = {
    "help": ("--help",),
    "tool-help": ("persist", "--help"),
    "version": ("--version",),
    "tool-version": ("inq", "--version"),
    "luns-test": ("luns", "--test", "0001000000000000"),
    "check-list": ("check", "--list"),
}


async def run_with_closed_stdout(argv: list[str]) -> tuple[int, str]:
    r, w = os.pipe()
    os.close(r)  # the reader has already gone
    try:
        with trio.fail_after(BOUND):
            p = await trio.run_process([sys.executable, "-m", "fcsoft", *argv], stdout=w,
                                       capture_stderr=True, check=False, env=_env(),
                                       stdin=b"")
    finally:
        os.close(w)
    return p.returncode, p.stderr.decode("latin-1")


@pytest.mark.parametrize("name", sorted(RUNS))
async def test_a_tool_stops_quietly_when_stdout_is_closed(fcsoft_lab, name):
    argv = list(RUNS[name])
    argv[1:1] = ["--fabric", f"{fcsoft_lab.address[0]}:{fcsoft_lab.address[1]}"]
    rc, err = await run_with_closed_stdout(argv)
    if name == "check":  # check's warning goes to stderr, before anything is printed
        err = "\n".join(line for line in err.splitlines()
                        if not line.startswith("WARNING: fcsoft check is destructive"))
    assert (rc, err) == (CLOSED, "")
    assert not fcsoft_lab.logged_in(H1)  # the tool logged out all the same


@pytest.mark.parametrize("name", sorted(OFFLINE))
async def test_help_version_and_offline_modes_stop_quietly(name):
    rc, err = await run_with_closed_stdout(list(OFFLINE[name]))
    assert (rc, err) == (CLOSED, "")
