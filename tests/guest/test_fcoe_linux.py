"""Linux's own FC initiator (libfc / libfcoe / fcoe in a QEMU guest) against fcsoft:
through the FCoE Forwarder into the fabric, to the arrays.

One guest boot runs the whole list, in order, because a boot costs ~10-20 s under TCG:
fabric login through FIP and the name-server registrations; discovery, PLOGI and PRLI to
both array ports; the SCSI scan (exactly the mapped LUNs, sizes, INQUIRY, checked with the
guest's sg3_utils); data written with dd in the guest read back through fcsoft's initiator
library over the other port, and the other way; persistent reservations between sg_persist
in the guest and the library (conflict, PREEMPT AND ABORT and the guest's unit attention);
an NPIV vport with its own LUN map; a zoning change and a LUN map change followed by the
guest; and, at the end, the whole run's trace decoded cleanly by tshark.

Figures (boot, login, dd throughput) are printed for the record, never asserted.
"""

from __future__ import annotations

import hashlib
import re
import time

import pytest
import trio

from fcsoft.config import parse_config
from fcsoft.initiator import open_host
from fcsoft.server.process import run_process
from fcsoft.testing import open_guest
from fcsoft.testing.lab import LabHandle
from fcsoft.wire.wwn import WWN
from tests.e2e.conftest import tshark_problems

pytestmark = pytest.mark.tools

P1 = WWN("50:01:43:80:00:00:00:01")
P2 = WWN("50:01:43:80:00:00:00:02")
GUEST_MAC = "52:54:00:fc:00:01"
GUEST = WWN("20:00:52:54:00:fc:00:01")
VPORT = WWN("c0:50:76:00:00:00:00:07")
LIB = WWN("10:00:00:00:c9:00:00:09")  # fcsoft's initiator library, over TCP
MIB = 1 << 20

CONFIG = f"""
[fabric]
name = "lab"
listen = "127.0.0.1:0"

[[fcoe]]
name = "fcf1"
listen = "127.0.0.1:0"

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{P1}", "{P2}"]

[[array.lun]]
name = "a"
size = "64MiB"

[[array.lun]]
name = "b"
size = "32MiB"
block_size = 4096

[[array.lun]]
name = "v"
size = "16MiB"

[[array.lun]]
name = "late"
size = "8MiB"

[[array.host]]
name = "guest"
initiators = ["{GUEST}", "{LIB}"]
luns = {{ 0 = "a", 1 = "b" }}

[[array.host]]
name = "vm"
initiators = ["{VPORT}"]
luns = {{ 3 = "v" }}
"""

def log(what: str) -> None:
    print(f"[linux initiator] {what}", flush=True)


async def devices(g, host: int | None = None) -> dict[tuple[WWN, int], object]:
    """(target WWPN, LUN) -> ScsiDevice, optionally only on SCSI host `host`."""
    found = {}
    for d in await g.scsi_devices():
        if host is None or d.hctl.split(":")[0] == str(host):
            found[(d.target, d.lun)] = d
    return found


async def test_linux_fc_initiator_through_fcoe(guest_tools, nursery, tmp_path):
    trace = tmp_path / "run.pcapng"
    lab = await nursery.start(lambda task_status: run_process(
        parse_config(CONFIG), ("127.0.0.1", 0), trace, wait_ready=True,
        task_status=task_status))
    handle = LabHandle(lab)
    t0 = time.monotonic()
    with trio.fail_after(600):  # a hang guard only
        await _exercise(lab, handle, tmp_path, t0)
    # the whole run's trace: Linux reuses OX_IDs at once (see tshark_problems)
    nursery.cancel_scope.cancel()
    lab.server.tracer.close()
    assert tshark_problems(trace, reused_sequence_ids=True) == []


async def _exercise(lab, handle, tmp_path, t0) -> None:
    async with open_guest(fcoe=lab.fcf().address, mac=GUEST_MAC,
                          console_log=tmp_path / "console.log") as g:
        log(f"guest up in {time.monotonic() - t0:.1f} s: " + ", ".join(
            f"{k} {v:.1f} s" for k, v in g.timings.items()))

        # -- fabric login through FIP, name server --------------------------------------
        (phys,) = [h for h in await g.fc_hosts() if h.port_name == GUEST]
        assert phys.port_state == "Online"
        rec = lab.fabric.port(GUEST)
        assert rec is not None and int(phys.port_id, 16) == rec.fcid
        assert lab.fabric.links[rec.link_id] is not None
        assert 0x08 in rec.fc4_types  # RFT_ID: FCP
        assert rec.fc4_features.get(0x08, 0) & 0x2  # RFF_ID: FCP initiator
        assert rec.symbolic_port_name  # RSPN_ID, libfc's "fcoe ... over eth0"
        log(f"name server: {rec.symbolic_port_name.decode(errors='replace')!r} "
            f"fc4_types={sorted(rec.fc4_types)}")
        vn = lab.fcf().forwarder.enodes[bytes.fromhex(GUEST_MAC.replace(":", ""))]
        assert list(vn.vn_ports) == [rec.fcid]

        # -- discovery, PLOGI, PRLI to both array ports; the SCSI scan --------------------
        for port in lab.array("array1").ports:
            session = port.sessions.get(rec.fcid)
            assert session is not None and session.image_pair, port.wwpn
        found = await devices(g, host=int(phys.name.removeprefix("host")))
        assert set(found) == {(P1, 0), (P1, 1), (P2, 0), (P2, 1)}
        for (_target, lun), dev in found.items():
            inq = await g.run(f"sg_inq {dev.sg}", check=True)
            assert "Vendor identification: FCSOFT" in inq.output
            cap = await g.run(f"sg_readcap {dev.sg}", check=True)
            if lun == 0:
                assert "Number of logical blocks=131072" in cap.output
                assert "Logical block length=512 bytes" in cap.output
            else:
                assert "Number of logical blocks=8192" in cap.output
                assert "Logical block length=4096 bytes" in cap.output
        luns = await g.run(f"sg_luns {found[(P1, 0)].sg}", check=True)
        assert re.findall(r"^\s+(\w{16})$", luns.output, re.M) == [
            "0000000000000000", "0001000000000000"]

        # -- data: dd in the guest <-> the initiator library, across the two ports -------
        sda, sdb = found[(P1, 0)].block, found[(P2, 0)].block
        await g.run("dd if=/dev/urandom of=/tmp/pattern bs=64k count=64 2>/dev/null",
                    check=True)
        t = time.monotonic()
        await g.run(f"dd if=/tmp/pattern of={sda} bs=64k count=64 oflag=direct", check=True)
        write_s = time.monotonic() - t
        pattern_md5 = (await g.run("md5sum < /tmp/pattern", check=True)).output.split()[0]
        async with open_host(lab.address, LIB) as host, host.connect(P2) as it:
            data = await it.read(lun=0, lba=0, blocks=4 * MIB // 512)
            assert hashlib.md5(data).hexdigest() == pattern_md5
            back = bytes(reversed(data))
            await it.write(lun=0, lba=16384, data=back)
        t = time.monotonic()
        got = await g.run(f"dd if={sdb} bs=64k skip=128 count=64 iflag=direct | md5sum",
                          check=True)
        read_s = time.monotonic() - t
        assert got.output.split()[0] == hashlib.md5(back).hexdigest()
        log(f"dd 4 MiB: write {4 / write_s:.1f} MB/s, read {4 / read_s:.1f} MB/s (TCG)")

        # -- persistent reservations: sg_persist in the guest, the library elsewhere ------
        sg = found[(P1, 0)].sg
        await g.run(f"sg_persist -n -o -G -S 0x1 {sg}", check=True)
        await g.run(f"sg_persist -n -o -R -K 0x1 -T 1 {sg}", check=True)  # Write Exclusive
        res = await g.run(f"sg_persist -n -i -r {sg}", check=True)
        assert "Key=0x1" in res.output and "Write Exclusive" in res.output
        async with open_host(lab.address, LIB) as host, host.connect(P2) as it:
            await it.scsi(0, bytes(6))  # TEST UNIT READY: takes the login's unit attention
            r = await it.scsi(0, bytes.fromhex("2a000000000000000100"), data_out=bytes(512))
            assert r.status == 0x18  # RESERVATION CONFLICT for a non-registrant's WRITE
            r = await it.persistent_reserve_out(0, 0x00, sa_key=0x2)  # REGISTER 0x2
            assert r.status == 0, r
            # PREEMPT AND ABORT the guest's key 0x1 (Write Exclusive)
            r = await it.persistent_reserve_out(0, 0x05, key=0x2, sa_key=0x1, type=1)
            assert r.status == 0, r
        # the guest's next command reports its registration gone (2A/05)
        res = await g.run(f"sg_turs -v {sg}")
        assert res.status == 6, res.output + res.errors
        assert "egistrations preempted" in res.output + res.errors
        res = await g.run(f"sg_persist -n -i -k {sg}", check=True)
        assert "0x2" in res.output and "0x1\n" not in res.output

        # -- ALUA as sg3_utils decodes it: sg_rtpg (both formats) and sg_vpd, through port 2
        handle.set_alua("array1", P2, "standby")
        sg2 = found[(P2, 0)].sg
        await g.run(f"sg_turs {sg2}")  # takes ASYMMETRIC ACCESS STATE CHANGED (2A/06)
        for extended in ("", " -e"):
            rtpg = (await g.run(f"sg_rtpg -d{extended} {sg2}", check=True)).output
            groups = re.findall(r"target port group id : 0x(\w+) , Pref=0, Rtpg_fmt=0\s+"
                                r"target port group asymmetric access state : 0x(\w+)", rtpg)
            assert groups == [("1", "00"), ("2", "02")], rtpg
            assert rtpg.count("O_SUP : 1, LBD_SUP : 0, U_SUP : 1, S_SUP : 1, AN_SUP : 1, "
                              "AO_SUP : 1") == 2, rtpg
            assert re.search(r"status code : 0x02", rtpg), rtpg
            assert re.findall(r"Relative target port ids:\s+0x(\w+)", rtpg) == ["01", "02"]
        turs = await g.run(f"sg_turs {sg2}")  # standby: NOT READY, 04/0B
        assert turs.status != 0
        vpd = (await g.run(f"sg_vpd -p di {sg2}", check=True)).output
        assert "Target port group: 0x2" in vpd and "Relative target port: 0x2" in vpd
        handle.set_alua("array1", P2, "active-optimized")
        await g.run(f"sg_turs {sg2}")
        await g.run(f"sg_turs {found[(P1, 0)].sg}")

        # -- NPIV: an FDISC, a vport with its own LUN map --------------------------------
        await g.create_vport(VPORT)
        await g.wait_online()
        await g.settle()
        (vhost,) = [h for h in await g.fc_hosts() if h.port_name == VPORT]
        vrec = lab.fabric.port(VPORT)
        assert vrec is not None and vrec.link_id == rec.link_id  # NPIV on the ENode's link
        assert int(vhost.port_id, 16) == vrec.fcid
        vfound = await devices(g, host=int(vhost.name.removeprefix("host")))
        assert set(vfound) == {(P1, 3), (P2, 3)}
        assert set(await devices(g, host=int(phys.name.removeprefix("host")))) == set(found)

        # -- a zoning change: P2 leaves the guest's zone, then comes back ----------------
        await g.run("for r in /sys/class/fc_remote_ports/rport-*; do "
                    "echo 30 > $r/dev_loss_tmo 2>/dev/null; done")
        rport_of_p2 = ("for r in /sys/class/fc_remote_ports/rport-*; do "
                       f"[ $(cat $r/port_name) = 0x{int(P2):016x} ] && "
                       "[ -d $r/device ] && echo $r; done | head -1")
        p2 = (await g.run(rport_of_p2, check=True)).output.strip()
        assert p2, "no rport for array port 2"
        handle.set_zones({"guest": [GUEST, LIB, P1], "vm": [VPORT, P1, P2]})
        await g.wait_until(f"! grep -q Online {p2}/port_state", 60,
                           what="array port 2 leaving the guest's view")
        state = (await g.run(f"cat {p2}/port_state", check=True)).output.strip()
        log(f"zoned out: array port 2's rport is {state}")
        handle.set_zones(None)
        await g.wait_until(f"grep -q Online {p2}/port_state", 60,
                           what="array port 2 coming back")
        await g.settle()
        assert set(await devices(g, host=int(phys.name.removeprefix("host")))) == set(found)

        # -- a LUN map change: REPORTED LUNS DATA HAS CHANGED reaches Linux ---------------
        # Linux logs the unit attention and leaves the rescan to user space (udev rules or
        # rescan-scsi-bus); the test does what those do.
        phys_host = int(phys.name.removeprefix("host"))
        handle.scsi("array1").map_lun("guest", 2, "late")
        for dev in (found[(P1, 0)], found[(P2, 0)]):
            await g.run(f"dd if={dev.block} of=/dev/null bs=512 count=1 iflag=direct",
                        check=True)
        await g.wait_until("dmesg | grep -q 'LUN assignments on this target have changed'",
                           30, what="the kernel seeing REPORTED LUNS DATA HAS CHANGED")
        await g.run(f"echo '- - -' > /sys/class/scsi_host/host{phys_host}/scan", check=True)
        await g.settle()
        now = await devices(g, host=phys_host)
        assert {(t, lun) for t, lun in now if lun == 2} == {(P1, 2), (P2, 2)}
