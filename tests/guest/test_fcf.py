"""The guest lab against fcsoft's own FCoE Forwarder: `open_guest` waits for the login and
the SCSI scan, creates an NPIV vport, and its helpers (`fc_hosts`, `scsi_devices`) report
what Linux found. One boot; the deeper FCF checks (RSCN, reservations ...) live with the
forwarder's tests."""

from __future__ import annotations

import pytest
import trio

from fcsoft.config import parse_config
from fcsoft.guest import open_guest
from fcsoft.server.process import run_process
from fcsoft.wire.wwn import WWN

pytestmark = pytest.mark.tools

PORT_1 = WWN("50:01:43:80:00:00:00:01")
PORT_2 = WWN("50:01:43:80:00:00:00:02")
ENODE = "20:00:52:54:00:ab:00:01"
VPORT = "20:00:52:54:00:ab:10:01"

CONFIG = f"""
[fabric]
listen = "127.0.0.1:0"

[[fcoe]]
name = "fcf1"
listen = "127.0.0.1:0"

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{PORT_1}", "{PORT_2}"]

[[array.lun]]
name = "a"
size = "16MiB"

[[array.lun]]
name = "b"
size = "8MiB"

[[array.host]]
name = "enode"
initiators = ["{ENODE}"]
luns = {{ 0 = "a" }}

[[array.host]]
name = "vport"
initiators = ["{VPORT}"]
luns = {{ 3 = "b" }}
"""


async def test_guest_logs_in_scans_and_does_io(guest_tools, nursery):
    lab = await nursery.start(lambda task_status: run_process(
        parse_config(CONFIG), ("127.0.0.1", 0), None, wait_ready=True,
        task_status=task_status))
    with trio.fail_after(600):  # a hang guard only
        async with open_guest(lab.fcf().address, wwpn=ENODE, vports=[VPORT]) as g:
            hosts = {h.port_name: h for h in await g.fc_hosts()}
            assert set(hosts) == {WWN(ENODE), WWN(VPORT)}
            assert all(h.port_state == "Online" for h in hosts.values())
            assert all(h.port_id.startswith("0x01") for h in hosts.values())  # domain 1
            assert lab.fabric.port(ENODE) is not None and lab.fabric.port(VPORT) is not None

            # each initiator sees its own LUN through both array ports
            disks = await g.scsi_devices()
            seen = sorted((d.target, d.lun) for d in disks)
            assert seen == sorted([(PORT_1, 0), (PORT_2, 0), (PORT_1, 3), (PORT_2, 3)])
            assert all(d.vendor == "FCSOFT" and d.sg and d.block for d in disks)

            lun0 = next(d for d in disks if d.lun == 0 and d.target == PORT_1)
            res = await g.run(f"sg_luns {lun0.sg} && sg_readcap {lun0.sg}", check=True)
            assert "0000000000000000" in res.output
            assert "Number of logical blocks=32768" in res.output  # 16 MiB / 512

            # what is written through one port reads back through the other
            other = next(d for d in disks if d.lun == 0 and d.target == PORT_2)
            res = await g.run(
                "dd if=/dev/urandom of=/tmp/data bs=64k count=8 2>/dev/null && "
                f"dd if=/tmp/data of={lun0.block} bs=64k oflag=direct 2>/dev/null && "
                f"dd if={other.block} bs=64k count=8 iflag=direct 2>/dev/null "
                "| cmp - /tmp/data && echo same")
            assert res.output == "same\n", res.errors
    nursery.cancel_scope.cancel()
