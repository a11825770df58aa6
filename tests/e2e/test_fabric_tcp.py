"""End to end over real TCP on 127.0.0.1: the fabric process core and the initiator library."""

from __future__ import annotations

import trio

from fcsoft.config import parse_config
from fcsoft.fabric import Fabric
from fcsoft.initiator import open_host
from fcsoft.server.fabric_server import FabricServer

H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"


async def start(nursery, toml=""):
    conf = parse_config(toml)
    server = FabricServer(Fabric(conf.fabric, conf.zones), max_links=conf.fabric.max_links)
    addr = await nursery.start(server.serve, "127.0.0.1", 0)
    return server, addr


async def test_two_hosts_see_each_other(nursery):
    server, addr = await start(nursery)
    async with open_host(addr, H1) as h1, open_host(addr, H2) as h2:
        assert h1.fcid >> 16 == 1 and h2.fcid >> 16 == 1 and h1.fcid != h2.fcid
        seen = await h1.discover(targets_only=False)
        assert [t.wwpn for t in seen] == [h2.wwpn]
