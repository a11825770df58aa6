"""Disabling an FCoE ENode over the control API: Clear Virtual Links, its FIP FLOGI refused
until it is enabled again, then it logs in as before."""

from __future__ import annotations

import pytest
import trio

from fcsoft.initiator import open_host
from fcsoft.initiator.host import LoginRejected
from tests.fcoe.enode_stream import EnodeStream

from .helpers import P1, P2, Api

ENODE_MAC = bytes.fromhex("525400aa0001")
ENODE = "20:00:52:54:00:aa:00:01"
BOUND = 30  # seconds: a hang guard only

CONFIG = f"""
[control]
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
size = "16MiB"

[[array.host]]
name = "guest"
initiators = ["{ENODE}"]
luns = {{ 0 = "a" }}
"""


@pytest.mark.fcsoft_config(CONFIG)
async def test_enode_disable_clears_virtual_links_and_refuses_flogi(fcsoft_lab):
    lab = fcsoft_lab.lab
    http = Api(fcsoft_lab.control_address)
    fcf = lab.fcf().address
    with trio.fail_after(BOUND):
        enode = await EnodeStream.connect(fcf, ENODE_MAC)
        async with open_host(lab.address, ENODE, stream=enode):
            switch = await http.get("/api/switch")
            (link,) = [li for li in switch["links"] if li["kind"] == "fcoe"]
            assert [p["wwpn"] for p in link["ports"]] == [ENODE]
            answer = await http.call("POST", f"/api/ports/{ENODE}/disable", {})
            assert answer["kind"] == "fcoe"
            while not enode.cleared:
                await trio.sleep(0.01)
            assert lab.fabric.port(ENODE) is None

        refused = False
        enode = await EnodeStream.connect(fcf, ENODE_MAC)
        try:
            async with open_host(lab.address, ENODE, stream=enode):
                pass
        except* LoginRejected:
            refused = True
        assert refused
        assert lab.fabric.counters["disabled_login_rejected"] == 1

        await http.call("POST", f"/api/ports/{ENODE}/enable", {})
        enode = await EnodeStream.connect(fcf, ENODE_MAC)
        async with open_host(lab.address, ENODE, stream=enode) as host, \
                host.connect(P1) as it:
            assert await it.report_luns() == [0]
