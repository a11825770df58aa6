"""A sans-IO harness for the FCoE Forwarder over a real fabric core: no sockets, no trio,
a fake clock. The forwarder's Ethernet output is recorded per segment; its fabric side is a
`fcsoft.fabric.Fabric` whose transmissions come back to the forwarder's links."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from fcsoft.config import parse_config
from fcsoft.fabric import Fabric
from fcsoft.fcoe import FcfSettings, Forwarder
from fcsoft.wire.encap import Frame
from fcsoft.wire.fcoe import ETH_P_FCOE, ETH_P_FIP, decode_fcoe, parse_ethernet
from fcsoft.wire.fip import FipFrame, decode_fip
from fcsoft.wire.wwn import WWN

FABRIC_TOML = """
[fabric]
name = "lab"
domain_id = 1
wwn = "10:00:00:05:1e:00:00:01"
"""


class FcfHarness:
    """`h.rx(frame)` feeds an ENode's Ethernet frame to the forwarder on segment 1;
    `h.out` collects (segment, frame) the forwarder sent; `h.fabric` is the fabric."""

    def __init__(self, toml: str = FABRIC_TOML, *, mac: bytes = bytes.fromhex("0efc00fffffe"),
                 fka_adv_period_ms: int = 8000, vlan: int | None = None) -> None:
        conf = parse_config(toml)
        self.now = 100.0
        self.fabric = Fabric(conf.fabric, zones=conf.zones)
        self.links: dict[int, Callable[[bytes], bool]] = {}
        self.detached: list[tuple[int, str]] = []
        self.fabric.transmit = lambda link_id, data: (
            self.links[link_id](data) if link_id in self.links else False)
        self._ids = itertools.count(1)
        self.out: list[tuple[int | None, bytes]] = []
        settings = FcfSettings("fcf1", mac, 0x0EFC00, WWN(conf.fabric.wwn),
                               WWN(conf.fabric.wwn), fka_adv_period_ms=fka_adv_period_ms,
                               vlan=vlan)
        self.fcf = Forwarder(settings, self, self._send, now=self.now)
        self.fcf.segment_up(1, self.now)
        self.out.clear()

    # -- FabricSide ----------------------------------------------------------------------
    def attach(self, name: str, peer: str, send: Callable[[bytes], bool]) -> int | None:
        link_id = next(self._ids)
        self.links[link_id] = send
        self.fabric.link_up(link_id, self.now)
        return link_id

    def deliver(self, link_id: int, frame: Frame) -> None:
        self.fabric.frame_received(link_id, frame, self.now)

    def detach(self, link_id: int, reason: str) -> None:
        self.links.pop(link_id, None)
        self.detached.append((link_id, reason))
        self.fabric.link_down(link_id, self.now)

    # -- Ethernet ------------------------------------------------------------------------
    def _send(self, segment: int | None, frame: bytes) -> bool:
        self.out.append((segment, frame))
        return True

    def rx(self, frame: bytes, segment: int = 1) -> list[tuple[int | None, bytes]]:
        """Feed one frame; return (and forget) what the forwarder sent in answer."""
        self.out.clear()
        self.fcf.ethernet_received(segment, frame, self.now)
        sent, self.out = self.out, []
        return sent

    def advance(self, seconds: float) -> list[tuple[int | None, bytes]]:
        """Move the clock on, running every timer that comes due on the way."""
        self.out.clear()
        end = self.now + seconds
        while True:
            due = [t for t in (self.fcf.next_timer(), self.fabric.next_timer()) if t is not None]
            nxt = min(due, default=None)
            if nxt is None or nxt > end:
                break
            self.now = max(self.now, nxt)
            self.fcf.handle_timer(self.now)
            self.fabric.handle_timer(self.now)
        self.now = end
        sent, self.out = self.out, []
        return sent


def fip_of(frame: bytes) -> FipFrame:
    eth = parse_ethernet(frame)
    assert eth.ethertype == ETH_P_FIP, hex(eth.ethertype)
    return decode_fip(memoryview(frame)[eth.offset:])


def fcoe_of(frame: bytes) -> Frame:
    eth = parse_ethernet(frame)
    assert eth.ethertype == ETH_P_FCOE, hex(eth.ethertype)
    return decode_fcoe(memoryview(frame)[eth.offset:])
