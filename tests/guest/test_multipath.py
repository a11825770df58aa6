"""Issue 14, scenario 1: multipath with a real guest, as examples/multipath.py runs it.

One guest boot: multipath-tools' multipathd in the guest over LUN 0's two paths (array
ports P1 and P2), verified I/O through the map the whole time, while the control API
changes ALUA states, disables and enables each port and zones each path out and back in.
Asserted: no I/O failed or read back wrong, I/O completed after every event and went
through the paths the event leaves in use (and not through the others), every block on the
LU holds what the guest wrote last, the rports got multipath.conf's timeouts. The stalls
are printed, never asserted (a shared machine's timing is not the code's).
"""

from __future__ import annotations

import time

import pytest
import trio

from fcsoft.config import parse_config
from fcsoft.server.process import run_process
from tests.conftest import require_tool
from tests.guest.helpers import load_example

pytestmark = pytest.mark.tools


def log(what: str) -> None:
    print(f"[multipath] {what}", flush=True)


@pytest.fixture
def multipath_tools(guest_tools) -> None:
    """multipath-tools and dmsetup on the host (the guest image copies them in)."""
    for tool in ("multipathd", "multipath", "dmsetup"):
        require_tool(tool)


async def test_multipath_failover_failback_and_alua(multipath_tools, nursery, tmp_path):
    ex = load_example("multipath")
    lab = await nursery.start(lambda task_status: run_process(
        parse_config(ex.CONFIG), ("127.0.0.1", 0), None, wait_ready=True,
        task_status=task_status))
    t0 = time.monotonic()
    with trio.fail_after(900):  # a hang guard only
        report = await ex.scenario(lab, ex.Options(console_log=str(tmp_path / "console.log")),
                                   say=log)
    log("\n" + ex.summary(report))
    assert ex.problems(report) == []
    # no I/O failed or miscompared, and the loop ran the whole time
    assert report.failed == 0 and report.miscompared == 0, report.io_errors
    assert report.blocks_checked > 0 and report.block_mismatches == []
    assert [ev.title.split(":")[0] for ev in report.events] == [
        "baseline", "ALUA", "port disable P1 (the path in use)", "port enable P1", "ALUA",
        "port disable P2 (the path in use)", "port enable P2", "zoning", "zoning",
        "zoning", "zoning"]
    for ev in report.events:
        assert ev.failed == 0 and ev.miscompared == 0, ev.title
        # the map showed the event: the expected paths in use and failed
        assert ev.using == ev.expect_using, ev.title
        # I/O went on after it, through the paths in use only (guest's counters and the
        # commands the array ports served)
        assert ev.ios > 0, ev.title
        for port in ("P1", "P2"):
            if port in ev.expect_using:
                assert ev.path_ios[port] > 0 and ev.array_commands[port] > 0, (ev.title,
                                                                                ev)
            else:
                assert ev.path_ios[port] == 0, (ev.title, ev)
    by_title = {ev.title: ev for ev in report.events}
    assert by_title["ALUA: P2 active/non-optimized"].using == ["P1"]
    assert by_title["port disable P1 (the path in use)"].using == ["P2"]
    assert by_title["ALUA: P1 active/non-optimized, P2 active/optimized"].using == ["P2"]
    assert by_title["zoning: P2 (the path in use) out of the guest's zone"].using == ["P1"]
    log(f"whole test {time.monotonic() - t0:.0f} s")
