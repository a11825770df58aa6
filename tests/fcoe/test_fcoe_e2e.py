"""End to end over real sockets: `run_process` with an FCoE Forwarder listening for QEMU
stream connections, fcsoft's initiator library as an ENode (enode_stream.py), arrays on
the fabric. The FC trace (pcapng) and the Ethernet frames on the wire are decoded by tshark,
which has its own FIP and FCoE dissectors."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
import trio

from fcsoft.config import parse_config
from fcsoft.initiator import open_host
from fcsoft.server.process import run_process
from fcsoft.wire import pcap
from fcsoft.wire.wwn import WWN
from tests.conftest import require_tool
from tests.e2e.conftest import tshark_problems
from tests.fcoe.enode_stream import EnodeStream, QemuStreamPort

ARRAY_PORT_1 = WWN("50:01:43:80:00:00:00:01")
ARRAY_PORT_2 = WWN("50:01:43:80:00:00:00:02")
ENODE_MAC = bytes.fromhex("525400aa0001")
ENODE_WWPN = WWN("20:00:52:54:00:aa:00:01")
VPORT = WWN("c0:50:76:00:00:00:00:01")
TCP_HOST = WWN("10:00:00:00:c9:00:00:09")
BOUND = 30  # seconds: a hang guard only

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
ports = ["{ARRAY_PORT_1}", "{ARRAY_PORT_2}"]

[[array.lun]]
name = "a"
size = "16MiB"

[[array.lun]]
name = "b"
size = "8MiB"

[[array.host]]
name = "guest"
initiators = ["{ENODE_WWPN}", "{TCP_HOST}"]
luns = {{ 0 = "a" }}

[[array.host]]
name = "vm"
initiators = ["{VPORT}"]
luns = {{ 3 = "b" }}
"""


@pytest.fixture
async def lab(nursery, tmp_path):
    conf = parse_config(CONFIG)
    trace = tmp_path / "fc.pcapng"
    lab = await nursery.start(lambda task_status: run_process(
        conf, ("127.0.0.1", 0), trace, wait_ready=True, task_status=task_status))
    yield lab
    nursery.cancel_scope.cancel()


def fcf_address(lab) -> tuple[str, int]:
    return lab.fcf().address


def write_ethernet_pcap(path: Path, frames: list[bytes]) -> None:
    with open(path, "wb") as f:
        f.write(pcap.file_header(linktype=1))
        for i, frame in enumerate(frames):
            f.write(pcap.record(1_700_000_000 + i / 1000, frame))


async def test_an_fcoe_enode_logs_in_discovers_and_does_io_through_both_array_ports(lab,
                                                                                    tmp_path):
    with trio.fail_after(BOUND):
        enode = await EnodeStream.connect(fcf_address(lab), ENODE_MAC)
        async with open_host(lab.address, ENODE_WWPN, stream=enode) as host:
            rec = lab.fabric.port(ENODE_WWPN)
            assert rec is not None and 0x08 in rec.fc4_types  # RFT_ID FCP over FCoE
            targets = await host.discover()
            assert {t.wwpn for t in targets} == {ARRAY_PORT_1, ARRAY_PORT_2}
            data = bytes(range(256)) * 64  # 16 KiB: many FCoE data frames each way
            async with host.connect(ARRAY_PORT_1) as it:
                assert await it.report_luns() == [0]
                await it.write(lun=0, lba=8, data=data)
            async with host.connect(ARRAY_PORT_2) as it:
                assert await it.read(lun=0, lba=8, blocks=32) == data
            # an ordinary FC-over-TCP host sees the same blocks
            async with open_host(lab.address, TCP_HOST) as tcp_host, \
                    tcp_host.connect(ARRAY_PORT_2) as it:
                assert await it.read(lun=0, lba=8, blocks=32) == data
                await it.write(lun=0, lba=100, data=data[::-1])
            async with host.connect(ARRAY_PORT_1) as it:
                assert await it.read(lun=0, lba=100, blocks=32) == data[::-1]
    eth = tmp_path / "ethernet.pcap"
    write_ethernet_pcap(eth, enode.wire)
    lab.server.tracer.close()
    assert tshark_problems(tmp_path / "fc.pcapng") == []
    assert tshark_problems(eth) == []
    # tshark's FIP dissector reads what the FCF sent as FC-BB FIP
    tshark = require_tool("tshark")
    fields = ["eth.src", "fip.opcode", "fip.disc_subcode", "fip.ls.subcode", "fip.flags.sol",
              "fip.flags.available", "fip.fka", "fip.fab.name", "fip.mac",
              "fip.descriptors.length_error"]
    cmd = [tshark, "-n", "-r", str(eth), "-Y", "fip", "-T", "fields"]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rows = [dict(zip(fields, line.split("\t"), strict=True)) for line in out.splitlines()]
    fcf_mac = lab.fcf().settings.mac.hex(":")
    adverts = [r for r in rows if r["eth.src"] == fcf_mac and r["fip.disc_subcode"] == "0x02"]
    solicited = [r for r in adverts if r["fip.flags.sol"] in ("1", "True")]
    assert solicited and solicited[0]["fip.flags.available"] in ("1", "True")
    assert solicited[0]["fip.fka"] == "8000"
    assert solicited[0]["fip.fab.name"] == "10:00:00:05:1e:00:00:01"
    replies = [r for r in rows if r["eth.src"] == fcf_mac and r["fip.ls.subcode"] == "0x02"]
    assert replies and all(r["fip.mac"].startswith("0e:fc:00:") for r in replies)
    assert not any(r["fip.descriptors.length_error"] for r in rows)
    # every FCoE frame either way, FCP data included, with a CRC tshark finds good
    crc = subprocess.run([tshark, "-n", "-r", str(eth), "-Y", "fcoe", "-T", "fields",
                          "-e", "fcoe.crc.status"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert len(crc) > 40 and set(crc) == {"1"}


async def test_npiv_vport_through_fip_fdisc_sees_its_own_lun_map(lab):
    with trio.fail_after(BOUND):
        enode = await EnodeStream.connect(fcf_address(lab), ENODE_MAC)
        async with open_host(lab.address, ENODE_WWPN, stream=enode) as host:
            vport = await host.add_vport(VPORT)
            assert lab.fabric.port(VPORT).link_id == lab.fabric.port(ENODE_WWPN).link_id
            assert vport.fcid in enode.vn_macs
            async with vport.connect(ARRAY_PORT_1) as it:
                assert await it.report_luns() == [3]
            async with host.connect(ARRAY_PORT_1) as it:
                assert await it.report_luns() == [0]


async def test_dropping_the_enodes_link_clears_virtual_links(lab):
    from fcsoft.testing.lab import LabHandle

    with trio.fail_after(BOUND):
        enode = await EnodeStream.connect(fcf_address(lab), ENODE_MAC)
        async with open_host(lab.address, ENODE_WWPN, stream=enode):
            assert LabHandle(lab).drop_link(ENODE_WWPN)
            while not enode.cleared:
                await trio.sleep(0.01)
            assert lab.fabric.port(ENODE_WWPN) is None


async def test_a_broken_connection_does_not_disturb_another(lab):
    with trio.fail_after(BOUND):
        enode = await EnodeStream.connect(fcf_address(lab), ENODE_MAC)
        async with open_host(lab.address, ENODE_WWPN, stream=enode) as host:
            async with await trio.open_tcp_stream(*fcf_address(lab)) as bad:
                await bad.send_all(struct.pack(">I", 1_000_000) + b"x" * 64)
                # the FCF closes the bad connection (after the advertisement it sent) ...
                while await bad.receive_some(1 << 20):
                    pass
            # ... and the good one carries on
            async with host.connect(ARRAY_PORT_1) as it:
                assert await it.report_luns() == [0]


async def test_an_enode_moving_to_a_new_connection_keeps_its_logins_and_io(lab):
    """What a QEMU live migration does to the FCF: a second connection comes up, the ENode
    announces its MAC there (RARP) and the first connection closes. The ENode and its vport
    stay logged in, with the same N_Port_IDs, and I/O goes on."""
    from fcsoft.testing.lab import LabHandle

    fcf = lab.fcf()
    with trio.fail_after(BOUND):
        enode = await EnodeStream.connect(fcf_address(lab), ENODE_MAC)
        async with open_host(lab.address, ENODE_WWPN, stream=enode) as host:
            vport = await host.add_vport(VPORT)
            async with host.connect(ARRAY_PORT_1) as it, vport.connect(ARRAY_PORT_1) as vit:
                await it.write(lun=0, lba=0, data=b"a" * 4096)
                ids = {w: lab.fabric.port(w).fcid for w in (ENODE_WWPN, VPORT)}
                state = fcf.forwarder.enodes[ENODE_MAC]
                first = state.segment
                new = QemuStreamPort(await trio.open_tcp_stream(*fcf_address(lab)))
                await enode.move(new)
                while state.segment == first or first in fcf.segments:
                    await trio.sleep(0.01)
                assert state.learned_from == "RARP" and state.segment in fcf.segments
                local = new.tcp.socket.getsockname()
                (link,) = [ln for ln in LabHandle(lab).switchshow()["links"]
                           if ln["kind"] == "fcoe"]
                assert link["peer"].endswith(f"via {local[0]}:{local[1]}")
                # the same logins, I/O on both N_Ports through the new connection
                await it.write(lun=0, lba=8, data=b"b" * 4096)
                assert await it.read(lun=0, lba=0, blocks=16) == b"a" * 4096 + b"b" * 4096
                assert await vit.report_luns() == [3]
                assert {w: lab.fabric.port(w).fcid for w in ids} == ids
                assert not enode.cleared
                assert fcf.forwarder.counters["clear_virtual_links"] == 0
