"""Issue 14, scenario 3: live migration with a real guest, as examples/live_migration.py
runs it, with the lab checked at every step.

One guest boot: a VM whose FCoE ENode has an NPIV vport (WWPN A) holding a Write Exclusive
- Registrants Only reservation, verified I/O running the whole time; two QEMU live
migrations (the ENode follows its MAC to the destination's connection; its logins, the
reservation and the I/O survive), each followed by the talk's two-WWPN switch: the other
WWPN logs in from the destination, the reservation moves (REGISTER AND MOVE, then QEMU's
migrate-pr pattern: REGISTER the same key and PREEMPT), the old WWPN logs out. Figures
(QEMU's downtime, I/O stalls, aborts) are printed, never asserted.
"""

from __future__ import annotations

import os
import time

import pytest
import trio

from fcsoft.config import parse_config
from fcsoft.guest import GuestError
from fcsoft.server.process import run_process
from fcsoft.testing.lab import LabHandle
from tests.guest.helpers import load_example

pytestmark = pytest.mark.tools


def log(what: str) -> None:
    print(f"[live migration] {what}", flush=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_live_migration_with_two_wwpns(guest_tools, nursery, tmp_path):
    ex = load_example("live_migration")
    lab = await nursery.start(lambda task_status: run_process(
        parse_config(ex.CONFIG), ("127.0.0.1", 0), None, wait_ready=True,
        task_status=task_status))
    handle = LabHandle(lab)
    fcf = lab.fcf()
    mac = bytes.fromhex(ex.MAC.replace(":", ""))
    before: dict = {}
    seen: list[str] = []

    def pr() -> dict:
        return handle.control.pr("array1", ex.LU)

    def holder() -> str:
        return pr()["reservation"]["holder"]["initiator"]

    async def check(step) -> None:
        seen.append(f"{step.name} {step.round}")
        g = step.guest
        enode = fcf.forwarder.enodes[mac]
        if step.name == "reserved":
            state = pr()
            assert state["reservation"]["type_code"] == 5  # Write Exclusive, registrants only
            assert holder() == str(ex.WWPN_A) == str(step.wwpn)
            assert handle.fabric.port(ex.ENODE) is not None
            # the LUN follows the VM: the ENode itself sees no LUN of it
            enode_host = [h.name for h in await g.fc_hosts() if h.port_name == ex.ENODE]
            assert [d for d in await g.scsi_devices()
                    if d.hctl.split(":")[0] == enode_host[0].removeprefix("host")] == []
            # the agent answers quick commands at once: busybox ash's `wait PID` lost
            # about 1 in 60 of them until the command's timeout (fcsoft/guest/files/agent)
            t = time.monotonic()
            for _ in range(100):
                await g.run("true", timeout=5, check=True)
            log(f"100 quick commands in {time.monotonic() - t:.1f} s")
            # a migration QEMU refuses leaves the guest running where it was
            pid, segments = g.process.pid, set(fcf.segments)
            with pytest.raises(GuestError, match="downtime.limit"):
                await g.migrate(downtime_limit_ms=-1)
            assert g.process.pid == pid and g.migrations == []
            assert (await g.run("echo still here", check=True)).output == "still here\n"
            while set(fcf.segments) != segments:  # the destination's connection closes
                await trio.sleep(0.05)
            assert enode.segment in segments
        elif step.name == "migrating":
            before.clear()
            before.update(
                segment=enode.segment, moves=enode.counters["enode_moves"],
                flogi=enode.counters["fip_flogi"], fdisc=enode.counters["fip_fdisc"],
                cvl=fcf.forwarder.counters["clear_virtual_links"],
                ports={w: (handle.fabric.port(w).fcid, handle.fabric.port(w).link_id)
                       for w in (ex.ENODE, step.wwpn)},
                generation=pr()["generation"], pid=g.process.pid,
                guest_ids={h.port_name: h.port_id for h in await g.fc_hosts()})
        elif step.name == "migrated":
            m = step.migration
            # the guest runs in a new QEMU; the source is gone
            assert m.status == "completed" and m.number == step.round
            assert m.source_pid == before["pid"] and g.process.pid == m.destination_pid
            assert not alive(m.source_pid)
            assert m.ram_transferred > 0
            # the FCF follows the ENode's MAC to the destination's connection (learned from
            # the RARP the destination QEMU announces itself with); the source's is closed
            assert enode.segment is not None and enode.segment > before["segment"]
            assert enode.segment in fcf.segments and before["segment"] not in fcf.segments
            assert enode.counters["enode_moves"] == before["moves"] + 1
            assert enode.learned_from == "RARP"
            (link,) = [ln for ln in handle.switchshow()["links"] if ln["kind"] == "fcoe"]
            assert link["peer"].endswith(f"via {fcf.segments[enode.segment].peer}")
            # ... and nothing was logged out or in again: same N_Port_IDs on the same
            # fabric link, no FLOGI or FDISC, no Clear Virtual Links
            assert {w: (handle.fabric.port(w).fcid, handle.fabric.port(w).link_id)
                    for w in before["ports"]} == before["ports"]
            assert enode.counters["fip_flogi"] == before["flogi"]
            assert enode.counters["fip_fdisc"] == before["fdisc"]
            assert fcf.forwarder.counters["clear_virtual_links"] == before["cvl"]
            hosts = await g.fc_hosts()
            assert {h.port_name: h.port_id for h in hosts} == before["guest_ids"]
            assert {h.port_state for h in hosts} == {"Online"}
            # the reservation did not change
            assert holder() == str(step.wwpn) and pr()["generation"] == before["generation"]
        elif step.name == "switched":
            state = pr()
            assert holder() == str(step.wwpn)
            # the old WWPN is neither registered (UNREG / PREEMPT) nor logged in
            assert {r["initiator"] for r in state["registrations"]} == {str(step.wwpn)}
            assert handle.fabric.port(step.previous) is None
            assert step.previous not in {h.port_name for h in await g.fc_hosts()}
            # the new WWPN is an NPIV port on the ENode's link, logged in through the
            # destination's connection
            new = handle.fabric.port(step.wwpn)
            assert new is not None and new.link_id == handle.fabric.port(ex.ENODE).link_id
            assert step.method == ("register-and-move" if step.round == 1 else "preempt")
        elif step.name == "stopped":
            r = step.report
            assert r.failed == [] and r.miscompared == [], (r.failed[:5], r.errors)
            assert r.written == list(range(r.writes))

    t0 = time.monotonic()
    with trio.fail_after(600):  # a hang guard only
        result = await ex.scenario(lab, rounds=2, console_log=tmp_path / "console.log",
                                   say=log, on_step=check)
    assert seen == ["reserved 0", "migrating 1", "migrated 1", "switched 1", "migrating 2",
                    "migrated 2", "switched 2", "stopped 2"]
    report = result.report
    # every block was read back as written: in the guest through WWPN A (again), and on
    # the array; and I/O completed within every migration and switch
    assert result.guest_checked == result.blocks_checked == report.writes > 0
    assert report.reads >= report.writes - 4
    for ev in result.events:
        assert any(ev.uptime0 <= rec.uptime <= ev.uptime1 for rec in report.records
                   if rec.op == "W"), ev.name
    log(f"{report.writes} writes, {report.reads} reads verified; whole test "
        f"{time.monotonic() - t0:.0f} s; " + "; ".join(
            f"{ev.name}: downtime {ev.downtime_ms} ms, stall {ev.host_stall * 1000:.0f} ms "
            f"(guest {ev.guest_stall * 1000:.0f} ms), aborts {ev.aborts}"
            for ev in result.events))
