"""The FCoE Forwarder on a Linux network interface (AF_PACKET), the way a lab with a veth
pair or a real NIC runs it: a veth pair, the FCF on one end, fcsoft's initiator library as
an ENode on the other through its own raw socket. Needs root (CAP_NET_ADMIN for the veth
pair, CAP_NET_RAW for the sockets); skipped with the reason otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import trio

from fcsoft.config import parse_config
from fcsoft.initiator import open_host
from fcsoft.server.process import run_process
from fcsoft.wire.wwn import WWN
from tests.fcoe.enode_stream import EnodeStream, RawSocketPort

ARRAY_PORT = WWN("50:01:43:80:00:00:00:01")
ENODE_MAC = bytes.fromhex("525400bb0001")
ENODE_WWPN = WWN("20:00:52:54:00:bb:00:01")


@pytest.fixture
def veth():
    """(fcf_end, enode_end) of a fresh veth pair, removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    a, b = f"fcsf{tag}a", f"fcsf{tag}b"
    made = subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b],
                          capture_output=True, text=True) if _have_ip() else None
    if made is None or made.returncode != 0:
        why = made.stderr.strip() if made is not None else "the ip command is missing"
        pytest.skip(f"cannot create a veth pair ({why}): needs root and iproute2")
    for name in (a, b):
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
    yield a, b
    subprocess.run(["ip", "link", "del", a], capture_output=True)


def _have_ip() -> bool:
    return any(os.access(os.path.join(d, "ip"), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/sbin", "/sbin"])


def config(interface: str) -> str:
    return f"""
[fabric]
listen = "127.0.0.1:0"

[[fcoe]]
name = "fcf-veth"
interface = "{interface}"

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{ARRAY_PORT}"]

[[array.lun]]
name = "a"
size = "4MiB"

[[array.host]]
name = "h"
initiators = ["{ENODE_WWPN}"]
luns = {{ 0 = "a" }}
"""


async def test_an_enode_on_a_veth_pair_logs_in_and_does_io(nursery, veth):
    fcf_end, enode_end = veth
    lab = await nursery.start(lambda task_status: run_process(
        parse_config(config(fcf_end)), ("127.0.0.1", 0), wait_ready=True,
        task_status=task_status))
    with trio.fail_after(30):
        # veth's 1500-byte MTU: an FCoE PDU of at most 1498 bytes, as libfcoe computes it
        enode = EnodeStream(RawSocketPort(enode_end), ENODE_MAC, max_fcoe_size=1498)
        await enode.discover()
        async with open_host(lab.address, ENODE_WWPN, stream=enode, frame_size=1452) as host, \
                host.connect(ARRAY_PORT) as it:
            await it.write(lun=0, lba=0, data=b"v" * 4096)
            assert await it.read(lun=0, lba=0, blocks=8) == b"v" * 4096
    assert lab.fcf().forwarder.enodes[ENODE_MAC].vn_ports
    nursery.cancel_scope.cancel()


def test_a_missing_interface_is_a_one_line_error(tmp_path):
    # a subprocess: `serve` configures process-wide logging
    path = tmp_path / "lab.toml"
    path.write_text(config("fcsfnone0"))
    done = subprocess.run([sys.executable, "-m", "fcsoft.cli", "serve", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"fcsoft: {path}: fcoe 'fcf-veth': interface 'fcsfnone0': no such network interface")
