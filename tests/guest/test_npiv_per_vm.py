"""Issue 14, scenario 2: NPIV per VM with a real guest, as examples/npiv_per_vm.py runs it.

One guest boot: the guest plays the KVM host, its ENode in no zone; each of two VMs gets
an NPIV vport with its own WWPN, host group (LUN masking) and zone. Asserted: each VM's
discovery finds the array ports only, its SCSI devices and REPORT LUNS are its own LUNs,
the two VMs' LUs differ and each reads back only its own data; vport_delete logs VM A out
of the fabric (gone from the name server, RSCNs to the array ports zoned with it, which end
its sessions; none to VM B or the host, zoned apart), while VM B's disks and verified I/O
go on without a failed or miscompared I/O.
"""

from __future__ import annotations

import pytest
import trio

from fcsoft.config import parse_config
from fcsoft.server.process import run_process
from tests.guest.helpers import load_example

pytestmark = pytest.mark.tools


def log(what: str) -> None:
    print(f"[npiv per vm] {what}", flush=True)


async def test_each_vm_sees_only_its_own_luns_and_vport_delete_logs_out(guest_tools, nursery,
                                                                        tmp_path):
    ex = load_example("npiv_per_vm")
    lab = await nursery.start(lambda task_status: run_process(
        parse_config(ex.CONFIG), ("127.0.0.1", 0), None, wait_ready=True,
        task_status=task_status))
    with trio.fail_after(600):  # a hang guard only
        report = await ex.scenario(lab, ex.Options(console_log=str(tmp_path / "console.log")),
                                   say=log)
    assert ex.problems(report) == []
    a, b = report.vms["A"], report.vms["B"]
    # the fabric's name server, as each VM's discovery (GPN_FT from its N_Port_ID) and the
    # zoning show it: the array ports only, never the other VM or the host
    assert a.remote_ports == b.remote_ports == ["P1", "P2"]
    assert a.fabric_sees == b.fabric_sees == ["P1", "P2"]
    assert report.host_remote_ports == []
    # LUN masking: each VM's REPORT LUNS and devices are its own
    assert a.report_luns == [0] and b.report_luns == [0, 1]
    assert a.devices == ["P1 LUN 0", "P2 LUN 0"]
    assert b.devices == ["P1 LUN 0", "P1 LUN 1", "P2 LUN 0", "P2 LUN 1"]
    assert a.wwids["LUN 0"] != b.wwids["LUN 0"]
    assert a.reads_own_data and b.reads_own_data
    assert not a.reads_other_data and not b.reads_other_data
    # three N_Ports on the ENode's one link: FLOGI and two FDISCs
    assert [p.split()[-1] for p in report.link_ports] == ["FLOGI", "FDISC", "FDISC"]
    # vport_delete: logged out, RSCNs to the array ports only, their sessions with A ended
    assert not report.a_in_name_server_after and not report.a_fc_host_after
    assert lab.fabric.port(ex.VA) is None
    assert report.rscns_after["P1"] > report.rscns_before["P1"]
    assert report.rscns_after["P2"] > report.rscns_before["P2"]
    assert report.rscns_after["VM B"] == report.rscns_before["VM B"]
    assert report.rscns_after["host"] == report.rscns_before["host"]
    assert report.array_sessions_with_a_after == []
    # VM B went on
    assert report.b_remote_ports_after == ["P1 Online", "P2 Online"]
    assert report.b_reads_after
    assert report.b_io > 0 and report.b_io_failed == report.b_io_miscompared == 0
    log(f"vport_delete to logout {report.delete_seconds:.2f} s; VM B's I/O meanwhile: "
        f"{report.b_io} I/Os, longest gap {report.b_io_stall:.2f} s; run {report.duration:.0f} s")
