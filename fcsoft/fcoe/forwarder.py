"""An FCoE Forwarder (FCF, FC-BB-6 clause 7): ENodes on Ethernet segments become ordinary
N_Ports of the fabric (sans-IO).

Theory of operation
-------------------
The trio shell (fcsoft.server.fcoe_server) owns the Ethernet side: it numbers segments (a
QEMU stream connection, an AF_PACKET interface), hands every received Ethernet frame to
`ethernet_received`, and sends what the forwarder gives to its `send` callback
(`send(segment, frame)`; segment None floods every segment, for multicast). The fabric
side is a `FabricSide`: each ENode that logs in becomes one fabric link (a VF_Port),
created with `attach`, fed with `deliver`, ended with `detach`; the fabric answers through
the `send` function it was given at attach, which is `from_fabric`. The fabric never learns
that a port is FCoE. Every entry point takes `now`; `next_timer`/`handle_timer` drive the
periodic advertisements and the keep-alive timeouts.

Per ENode (keyed by its MAC address, FC-BB-6 7.8):
  solicitation      -> a unicast advertisement (flags FP, A, S, F), padded to the
                       ENode's Max FCoE Size so that the frame size is verified
  FIP FLOGI/FDISC   -> FLOGI/FDISC on the ENode's link; the fabric's reply comes back as a
                       FIP link service reply, an LS_ACC with the granted MAC address (FPMA:
                       FC-MAP then N_Port_ID)
  FIP LOGO          -> LOGO to FFFFFE; the VN_Port's MAC is forgotten once accepted
  keep-alives       -> refresh the ENode (MAC descriptor only) or one VN_Port (with a
                       Vx_Port ID descriptor); an ENode silent for 2.5 x FKA_ADV_PERIOD, or
                       a VN_Port silent for 5 x FKA_VN_PERIOD, is logged out (implicit
                       logout on the fabric, RSCN) and sent Clear Virtual Links
  FCoE frames       -> the FC frame, checked (CRC, delimiters, source MAC = the FPMA of its
                       S_ID), goes to the fabric on the ENode's link
  LOGO from FFFFFE  -> (the fabric logging a VN_Port out: zoning tool, duplicate WWPN)
                       Clear Virtual Links for that VN_Port, instead of the LOGO itself
  VLAN request      -> VLAN notification
Every FKA_ADV_PERIOD the forwarder multicasts an unsolicited advertisement to
All-ENode-MACs; Linux's libfcoe drops an FCF it has not heard for 2.5 periods.

The FCF learns where an ENode is as an Ethernet switch learns a MAC: from the segment the
last frame with the ENode's MAC (or one of its VN_Ports' MACs) as its source came on, whatever
the frame is (FIP, FCoE, or anything else: the RARP QEMU sends for a guest that has just
migrated, an ARP). Learning moves the ENode; only FIP and valid FCoE frames count as signs
of life for the keep-alive timers. A segment going away does not log its ENodes out (a real
FCF cannot see a host's cable behind a bridge either); keep-alives decide. Until an ENode
whose segment went away is heard again, frames for it are flooded to every segment, as a
switch floods a frame for a MAC it has not learned. So an ENode may move to a new
connection (a guest migrated to another QEMU) and keep its logins.
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fcsoft.logs import get_logger
from fcsoft.wire.els import ElsCommand, Logo, LsRjt, LsRjtExplanation, LsRjtReason
from fcsoft.wire.encap import EOF, SOF, Frame, encapsulate, encode_frame, fc_crc
from fcsoft.wire.errors import DecodeError, FrameError
from fcsoft.wire.fcoe import (
    ALL_ENODE_MACS,
    ALL_FCF_MACS,
    ALL_FCOE_MACS,
    ETH_P_FCOE,
    ETH_P_FIP,
    FLOGI_MAC,
    MAX_FCOE_PDU,
    decode_fcoe,
    encode_fcoe,
    ethernet_header,
    fcoe_pdu_length,
    format_mac,
    fpma,
    is_unicast,
    parse_ethernet,
)
from fcsoft.wire.fip import (
    FKA_VN_PERIOD,
    ControlSub,
    DescriptorType,
    DiscoverySub,
    Encapsulated,
    Fabric,
    FipFlags,
    FipFrame,
    FipOp,
    FkaAdvPeriod,
    LinkServiceSub,
    MacAddress,
    MaxFcoeSize,
    NameIdentifier,
    Priority,
    Vlan,
    VlanSub,
    VxPortId,
    decode_fip,
)
from fcsoft.wire.header import (
    F_CTL_REPLY,
    F_CTL_REQUEST,
    HEADER_LEN,
    FcType,
    RCtl,
    WellKnownAddress,
    decode_header,
    make_header,
)
from fcsoft.wire.wwn import WWN

F_PORT = WellKnownAddress.FABRIC_F_PORT
ENODE_TIMEOUT_PERIODS = 2.5  # FC-BB-6: ENode keep-alives missed for 2.5 x FKA_ADV_PERIOD
VN_PORT_TIMEOUT_PERIODS = 5  # VN_Port keep-alives missed for 5 x FKA_VN_PERIOD
MAX_PENDING = 64  # FIP link service requests awaiting the fabric, per ENode
LOGGED_PER_REASON = 20  # drops logged per reason before only counting
LOGGED_MOVES = 20  # moves logged per ENode before only every 1000th (a MAC that flaps)


class FabricSide(Protocol):
    """How the forwarder reaches the fabric (the shell binds it to a FabricServer)."""

    def attach(self, name: str, peer: str, send: Callable[[bytes], bool]) -> int | None:
        """A new fabric link whose frames go to `send`; None when the fabric is full."""

    def deliver(self, link_id: int, frame: Frame) -> None:
        """A frame from the link's N_Port(s) into the fabric."""

    def detach(self, link_id: int, reason: str) -> None:
        """The link is gone: implicit logout of everything on it."""


@dataclass(frozen=True, slots=True)
class FcfSettings:
    """One FCF's identity and timing (the `[[fcoe]]` config entry)."""

    name: str
    mac: bytes
    fc_map: int
    fabric_name: WWN
    switch_name: WWN
    fka_adv_period_ms: int = 8000
    priority: int = 128
    vlan: int | None = None


@dataclass(slots=True, eq=False)
class VnPort:
    fcid: int
    wwpn: WWN
    mac: bytes
    last_heard: float
    base: bool  # the ENode's FLOGI port (logging it out takes the others with it)


@dataclass(slots=True, eq=False)
class Enode:
    """An ENode: one MAC address, its VN_Ports and where it was last heard."""

    mac: bytes
    segment: int | None
    last_heard: float
    node_name: WWN | None = None
    max_fcoe_size: int = MAX_FCOE_PDU
    vlan: int | None = None
    link_id: int | None = None
    learned_from: str = ""  # what kind of frame last moved it to another segment ("RARP")
    vn_ports: dict[int, VnPort] = field(default_factory=dict)  # N_Port_ID -> VN_Port
    # FIP link service requests sent on to the fabric: OX_ID -> (descriptor type, name)
    pending: OrderedDict[int, tuple[DescriptorType, WWN]] = field(default_factory=OrderedDict)
    counters: Counter[str] = field(default_factory=Counter)

    @property
    def logged_in(self) -> bool:
        return bool(self.vn_ports)


def _ethertype_name(ethertype: int | None) -> str:
    if ethertype is None or ethertype in (ETH_P_FIP, ETH_P_FCOE):
        return "FIP" if ethertype in (None, ETH_P_FIP) else "FCoE"
    return {0x0806: "ARP", 0x8035: "RARP", 0x0800: "IPv4", 0x86DD: "IPv6"}.get(
        ethertype, f"ethertype {ethertype:#06x}")


def _is_vlan_request(ethertype: int, frame: bytes | memoryview, offset: int) -> bool:
    return ethertype == ETH_P_FIP and len(frame) >= offset + 4 and \
        frame[offset + 2] == 0 and frame[offset + 3] == FipOp.VLAN


class Forwarder:
    """One FCF. See the module docstring."""

    def __init__(self, settings: FcfSettings, fabric: FabricSide,
                 send: Callable[[int | None, bytes], bool], now: float = 0.0) -> None:
        self.settings = settings
        self.fabric = fabric
        self.send = send
        self.mac = settings.mac
        self.period = settings.fka_adv_period_ms / 1000
        self.enodes: dict[bytes, Enode] = {}
        self._by_vn_mac: dict[bytes, tuple[Enode, VnPort]] = {}
        self._by_link: dict[int, Enode] = {}
        self._segments: set[int] = set()
        self._next_advert = now + self.period  # segment_up advertises at once
        self.counters: Counter[str] = Counter()
        self._logged: Counter[str] = Counter()
        self._rjt_xids = itertools.cycle(range(1, 0xFFFF))
        self.log = get_logger(component="fcoe", fcf=settings.name)

    # ------------------------------------------------------------------ segments
    def segment_up(self, segment: int, now: float) -> None:
        """A new Ethernet segment: it hears an advertisement at once, so an ENode behind it
        need not wait a whole period to find the FCF."""
        self._segments.add(segment)
        self._send_advertisement(segment, None)

    def segment_down(self, segment: int, now: float) -> None:
        """The segment is gone. Its ENodes stay logged in until their keep-alives stop
        (or they are heard on another segment)."""
        self._segments.discard(segment)
        left = [e for e in self.enodes.values() if e.segment == segment]
        for enode in left:
            enode.segment = None
        logged_in = [e for e in left if e.logged_in]
        if logged_in:
            self.log.info("segment closed under logged-in ENodes: they stay logged in until "
                          "heard on another segment or their keep-alives stop",
                          segment=segment, enodes=[format_mac(e.mac) for e in logged_in])

    def clear_enode(self, link_id: int, reason: str, now: float) -> None:
        """Take an ENode off the fabric from the switch's side (a port disabled, a link
        dropped by a test): Clear Virtual Links for all its VN_Ports, then the implicit
        logout. The ENode may log in again (libfcoe does so at once)."""
        enode = self._by_link.get(link_id)
        if enode is None:
            return
        self.log.info("virtual links cleared", enode=format_mac(enode.mac), reason=reason,
                      vn_ports=len(enode.vn_ports))
        self._send_cvl(enode, list(enode.vn_ports.values()))
        self._detach(enode, reason)

    def enode_for_link(self, link_id: int) -> Enode | None:
        """The ENode behind fabric link `link_id`, if it is one's."""
        return self._by_link.get(link_id)

    # ------------------------------------------------------------------ timers
    def next_timer(self) -> float | None:
        deadlines = [self._next_advert]
        for enode in self.enodes.values():
            deadlines.append(self._enode_deadline(enode))
            deadlines.extend(vn.last_heard + self._vn_timeout for vn in enode.vn_ports.values())
        return min(deadlines)

    @property
    def _vn_timeout(self) -> float:
        return VN_PORT_TIMEOUT_PERIODS * FKA_VN_PERIOD / 1000

    def _enode_deadline(self, enode: Enode) -> float:
        return enode.last_heard + ENODE_TIMEOUT_PERIODS * self.period

    def handle_timer(self, now: float) -> None:
        if now >= self._next_advert:
            self._next_advert = now + self.period
            self._send_advertisement(None, None)
        for enode in list(self.enodes.values()):
            if now >= self._enode_deadline(enode):
                self._enode_timed_out(enode, now)
                continue
            for vn in list(enode.vn_ports.values()):
                if vn.fcid in enode.vn_ports and now >= vn.last_heard + self._vn_timeout:
                    self._count(enode, "vn_port_keepalive_timeout")
                    self.log.info("VN_Port keep-alive timeout", wwpn=vn.wwpn, fcid=vn.fcid,
                                  enode=format_mac(enode.mac))
                    self._send_cvl(enode, [vn])
                    self._logout_vn_port(enode, vn, "keep-alive timeout")

    def _enode_timed_out(self, enode: Enode, now: float) -> None:
        if enode.logged_in:
            self._count(enode, "enode_keepalive_timeout")
            self.log.info("ENode keep-alive timeout", enode=format_mac(enode.mac),
                          vn_ports=len(enode.vn_ports),
                          silent_s=round(now - enode.last_heard, 1))
            # FC-BB-6: the FCF de-instantiates the VN_Ports and tells the ENode so, in
            # case it is still there and only its keep-alives were lost
            self._send_cvl(enode, list(enode.vn_ports.values()))
        self._forget_enode(enode, "ENode keep-alive timeout")

    # ------------------------------------------------------------------ Ethernet in
    def ethernet_received(self, segment: int, frame: bytes | memoryview, now: float) -> None:
        """One Ethernet frame from `segment`."""
        try:
            eth = parse_ethernet(frame)
        except FrameError as exc:
            self._drop(None, "runt_ethernet_frame", str(exc))
            return
        if eth.ethertype not in (ETH_P_FIP, ETH_P_FCOE):
            # ARP, RARP, IPv6 ND ... from guests: normal, and they say where a MAC is
            self._learn(segment, eth.src, eth.ethertype)
            self.counters["ignored_ethertype"] += 1
            return
        # VLAN discovery happens before the ENode knows the FCoE VLAN: untagged
        if not self._vlan_ok(eth.vlan) and not _is_vlan_request(eth.ethertype, frame, eth.offset):
            self._drop(None, "wrong_vlan", f"VLAN {eth.vlan} from {format_mac(eth.src)}")
            return
        pdu = memoryview(frame)[eth.offset:]
        if eth.ethertype == ETH_P_FIP:
            self._fip_received(segment, eth.dst, eth.src, eth.vlan, pdu, now)
        else:
            self._fcoe_received(segment, eth.dst, eth.src, pdu, now)

    def _vlan_ok(self, vlan: int | None) -> bool:
        want = self.settings.vlan
        if want is None:
            return vlan is None or vlan == 0  # untagged or priority-tagged
        return vlan == want

    def _fcoe_received(self, segment: int, dst: bytes, src: bytes, pdu: memoryview,
                       now: float) -> None:
        if dst != self.mac and dst != FLOGI_MAC:
            self._learn(segment, src, ETH_P_FCOE)
            self.counters["not_for_this_fcf"] += 1
            return
        found = self._by_vn_mac.get(src)
        if found is None:
            if dst == FLOGI_MAC:
                self._drop(None, "non_fip_flogi", f"from {format_mac(src)}: this FCF "
                           "answers FIP only")
            else:
                self._drop(None, "unknown_source_mac", f"FCoE frame from {format_mac(src)}, "
                           "not a logged-in VN_Port")
            return
        enode, vn = found
        if enode.segment != segment:
            self._move(enode, segment, ETH_P_FCOE)  # even a frame dropped below says where
        try:
            fr = decode_fcoe(pdu)
        except FrameError as exc:
            self._drop(enode, "bad_fcoe_frame", str(exc))
            return
        if fr.header.s_id != vn.fcid:
            self._drop(enode, "s_id_not_mac", f"S_ID {fr.header.s_id:06x} from the MAC of "
                       f"{vn.fcid:06x}")
            return
        enode.last_heard = now
        enode.counters["rx_fcoe_frames"] += 1
        if enode.link_id is not None:
            self.fabric.deliver(enode.link_id, fr)

    def _fip_received(self, segment: int, dst: bytes, src: bytes, vlan: int | None,
                      pdu: memoryview, now: float) -> None:
        self._learn(segment, src, ETH_P_FIP)
        if dst not in (self.mac, ALL_FCF_MACS, ALL_FCOE_MACS):
            self.counters["not_for_this_fcf"] += 1
            return
        if not is_unicast(src):
            self._drop(None, "bad_source_mac", f"FIP from group address {format_mac(src)}")
            return
        try:
            fip = decode_fip(pdu)
        except DecodeError as exc:
            self._drop(self.enodes.get(src), "malformed_fip", f"from {format_mac(src)}: {exc}")
            return
        key = (fip.op, fip.subcode)
        if key == (FipOp.DISCOVERY, DiscoverySub.SOLICITATION):
            self._solicitation(segment, src, vlan, fip, now)
        elif key == (FipOp.LINK_SERVICE, LinkServiceSub.REQUEST):
            self._link_service(segment, src, vlan, fip, now)
        elif key == (FipOp.CONTROL, ControlSub.KEEP_ALIVE):
            self._keep_alive(segment, src, fip, now)
        elif key == (FipOp.VLAN, VlanSub.REQUEST):
            self._vlan_request(segment, src, fip)
        else:
            self._drop(self.enodes.get(src), "unexpected_fip", f"{fip.describe()} from "
                       f"{format_mac(src)}")

    # -- FIP operations ---------------------------------------------------------------
    def _enode(self, src: bytes, segment: int, vlan: int | None, now: float) -> Enode:
        enode = self.enodes.get(src)
        if enode is None:
            enode = Enode(src, segment, now, vlan=vlan)
            self.enodes[src] = enode
        enode.vlan = vlan
        self._heard(enode, segment, now)
        return enode

    def _heard(self, enode: Enode, segment: int, now: float) -> None:
        """A sign of life (FIP, a valid FCoE frame): where the ENode is, and that it is."""
        self._move(enode, segment, None)
        enode.last_heard = now

    def _learn(self, segment: int, src: bytes, ethertype: int) -> None:
        """Any frame whose source is an ENode's MAC or one of its VN_Ports' MACs says where
        the ENode is now (MAC learning), but not that its FCoE stack is alive."""
        enode = self.enodes.get(src)
        if enode is None:
            found = self._by_vn_mac.get(src)
            if found is None:
                return
            enode = found[0]
        self._move(enode, segment, ethertype)

    def _move(self, enode: Enode, segment: int, ethertype: int | None) -> None:
        if enode.segment == segment:
            return
        previous, enode.segment = enode.segment, segment
        if previous is None and not enode.logged_in:
            return  # not yet placed anywhere: nothing moved
        self._count(enode, "enode_moves")
        enode.learned_from = _ethertype_name(ethertype)
        n = enode.counters["enode_moves"]
        if n <= LOGGED_MOVES or n % 1000 == 0:
            self.log.info("ENode moved", enode=format_mac(enode.mac), segment=segment,
                          previous=previous, vn_ports=len(enode.vn_ports),
                          learned_from=enode.learned_from, count=n)

    def _solicitation(self, segment: int, src: bytes, vlan: int | None, fip: FipFrame,
                      now: float) -> None:
        mac = fip.find(MacAddress)
        name = fip.find(NameIdentifier)
        if mac is None or name is None or mac.mac != src:
            self._drop(self.enodes.get(src), "bad_solicitation",
                       f"from {format_mac(src)}: needs MAC (= source) and name descriptors")
            return
        if not fip.flags & FipFlags.FP:
            self._drop(self.enodes.get(src), "spma_only", f"{format_mac(src)} asks for "
                       "server-provided MAC addresses; this FCF grants fabric-provided ones")
            return
        enode = self._enode(src, segment, vlan, now)
        enode.node_name = name.name
        size = fip.find(MaxFcoeSize)
        if size is not None:
            enode.max_fcoe_size = size.size
        enode.counters["solicitations"] += 1
        self.log.debug("solicitation", enode=format_mac(src), wwnn=name.name,
                       max_fcoe_size=enode.max_fcoe_size)
        self._send_advertisement(segment, enode)

    def _link_service(self, segment: int, src: bytes, vlan: int | None, fip: FipFrame,
                      now: float) -> None:
        els = fip.descriptors[0] if fip.descriptors else None
        if not isinstance(els, Encapsulated):
            self._drop(self.enodes.get(src), "bad_link_service",
                       f"from {format_mac(src)}: the first descriptor is not an ELS")
            return
        enode = self._enode(src, segment, vlan, now)
        try:
            header = decode_header(els.frame)
        except DecodeError as exc:
            self._drop(enode, "bad_link_service", str(exc))
            return
        payload = els.frame[HEADER_LEN:]
        expected = {DescriptorType.FLOGI: ElsCommand.FLOGI, DescriptorType.FDISC:
                    ElsCommand.FDISC, DescriptorType.LOGO: ElsCommand.LOGO}.get(els.kind)
        if expected is None or header.r_ctl != RCtl.ELS_REQUEST or not payload or \
                payload[0] != expected or header.d_id != F_PORT:
            # ELP (E_Ports) and anything that is not the request its descriptor names
            self._drop(enode, "unsupported_link_service",
                       f"{els.kind.name} carrying R_CTL {header.r_ctl:#04x} to "
                       f"{header.d_id:06x}")
            self._reject(enode, els.kind, header, LsRjtReason.COMMAND_NOT_SUPPORTED)
            return
        name = WWN.from_bytes8(payload, 20) if expected != ElsCommand.LOGO and \
            len(payload) >= 28 else WWN(0)
        if expected == ElsCommand.LOGO:
            vn = enode.vn_ports.get(header.s_id)
            if vn is None:
                self._reject(enode, els.kind, header, LsRjtReason.UNABLE_TO_PERFORM,
                             LsRjtExplanation.N_PORT_LOGIN_REQUIRED)
                return
            name = vn.wwpn
        if enode.link_id is None:
            if expected != ElsCommand.FLOGI:
                self._reject(enode, els.kind, header, LsRjtReason.UNABLE_TO_PERFORM,
                             LsRjtExplanation.N_PORT_LOGIN_REQUIRED)
                return
            link_id = self.fabric.attach(f"fcoe-{format_mac(src)}",
                                         f"{self.settings.name} {format_mac(src)}",
                                         functools.partial(self.from_fabric, enode))
            if link_id is None:
                self._reject(enode, els.kind, header, LsRjtReason.UNABLE_TO_PERFORM,
                             LsRjtExplanation.INSUFFICIENT_RESOURCES)
                return
            enode.link_id = link_id
            self._by_link[link_id] = enode
        enode.pending[header.ox_id] = (els.kind, name)
        while len(enode.pending) > MAX_PENDING:
            enode.pending.popitem(last=False)
        enode.counters[f"fip_{els.kind.name.lower()}"] += 1
        body = bytes(els.frame) + bytes(-len(els.frame) & 3)
        raw = encapsulate(SOF.SOFi3, body, fc_crc(body).to_bytes(4, "little"), EOF.EOFt)
        self.fabric.deliver(enode.link_id, Frame(SOF.SOFi3, EOF.EOFt, header,
                                                 payload, raw))

    def _keep_alive(self, segment: int, src: bytes, fip: FipFrame, now: float) -> None:
        mac = fip.find(MacAddress)
        if mac is None:
            self._drop(self.enodes.get(src), "bad_keep_alive",
                       f"from {format_mac(src)}: no MAC descriptor")
            return
        enode = self.enodes.get(mac.mac)
        vn_ids = list(fip.all(VxPortId))
        if enode is None:
            # an ENode this FCF does not know (it timed out, or fcsoft restarted): Clear
            # Virtual Links makes it start again with a solicitation
            self._drop(None, "keep_alive_from_unknown_enode", format_mac(mac.mac))
            self._send_cvl_to(mac.mac, segment, None, [])
            return
        self._heard(enode, segment, now)
        if not vn_ids:
            enode.counters["enode_keep_alives"] += 1
            return
        for vid in vn_ids:
            vn = enode.vn_ports.get(vid.fcid)
            if vn is None or vn.mac != vid.mac or vn.wwpn != vid.wwpn:
                self._drop(enode, "keep_alive_from_unknown_vn_port",
                           f"{vid.fcid:06x} {format_mac(vid.mac)} {vid.wwpn}")
                self._send_cvl_to(enode.mac, segment, enode.vlan, [vid])
                continue
            vn.last_heard = now
            enode.counters["vn_port_keep_alives"] += 1

    def _vlan_request(self, segment: int, src: bytes, fip: FipFrame) -> None:
        descs: list[Any] = [MacAddress(self.mac)]
        if self.settings.vlan is not None:
            descs.append(Vlan(self.settings.vlan))
        self.counters["vlan_requests"] += 1
        self._send_fip(segment, src, None, FipFrame(FipOp.VLAN, VlanSub.NOTIFICATION,
                                                    FipFlags.NONE, tuple(descs)))

    # ------------------------------------------------------------------ fabric in
    def from_fabric(self, enode: Enode, raw: bytes | memoryview) -> bool:
        """A frame the fabric sends on `enode`'s link (RFC 3643 encapsulated)."""
        view = memoryview(raw)
        h = decode_header(view, 32)
        if h.s_id == F_PORT and h.r_ctl == RCtl.ELS_REPLY and h.ox_id in enode.pending:
            self._link_service_reply(enode, h.ox_id, h.d_id, view)
            return True
        if h.s_id == F_PORT and h.r_ctl == RCtl.ELS_REQUEST and \
                view[32 + HEADER_LEN] == ElsCommand.LOGO:
            vn = enode.vn_ports.get(h.d_id)
            if vn is not None:
                self.log.info("fabric logged a VN_Port out: Clear Virtual Links",
                              wwpn=vn.wwpn, fcid=vn.fcid, enode=format_mac(enode.mac))
                gone = list(enode.vn_ports.values()) if vn.base else [vn]
                self._send_cvl(enode, gone)
                for v in gone:
                    self._forget_vn_port(enode, v)
            return True
        vn = enode.vn_ports.get(h.d_id)
        if vn is None:
            enode.counters["tx_discard_unknown_d_id"] += 1
            return False
        if fcoe_pdu_length(view) > enode.max_fcoe_size:
            self._drop(enode, "larger_than_max_fcoe_size",
                       f"{fcoe_pdu_length(view)} bytes for {format_mac(enode.mac)}, which "
                       f"takes {enode.max_fcoe_size}")
            return False
        enode.counters["tx_fcoe_frames"] += 1
        if enode.segment is None:
            # its segment went away and it has not been heard since: flood, as a switch
            # does for a MAC it does not know (a migrated guest's new connection gets it)
            enode.counters["tx_flooded"] += 1
        return self.send(enode.segment, encode_fcoe(vn.mac, self.mac, view, enode.vlan))

    def _link_service_reply(self, enode: Enode, ox_id: int, d_id: int,
                            view: memoryview) -> None:
        kind, name = enode.pending.pop(ox_id)
        frame = bytes(view[32:len(view) - 8])
        accepted = view[32 + HEADER_LEN] == ElsCommand.LS_ACC
        descs: list[Any] = [Encapsulated(kind, frame)]
        if kind in (DescriptorType.FLOGI, DescriptorType.FDISC) and accepted:
            if kind == DescriptorType.FLOGI:
                # a new FLOGI is an implicit logout of everything the ENode had
                for old in list(enode.vn_ports.values()):
                    self._forget_vn_port(enode, old)
            vn = VnPort(d_id, name, fpma(self.settings.fc_map, d_id), enode.last_heard,
                        kind == DescriptorType.FLOGI)
            enode.vn_ports[d_id] = vn
            self._by_vn_mac[vn.mac] = (enode, vn)
            descs.append(MacAddress(vn.mac))
            self.log.info("VN_Port instantiated", kind=kind.name, wwpn=name, fcid=d_id,
                          mac=format_mac(vn.mac), enode=format_mac(enode.mac))
        elif kind == DescriptorType.LOGO:
            gone = enode.vn_ports.get(d_id)
            descs.append(MacAddress(gone.mac if gone is not None else enode.mac))
            if accepted and gone is not None:
                for v in list(enode.vn_ports.values()) if gone.base else [gone]:
                    self._forget_vn_port(enode, v)
        self._send_fip(enode.segment, enode.mac, enode.vlan,
                       FipFrame(FipOp.LINK_SERVICE, LinkServiceSub.REPLY, FipFlags.FP,
                                tuple(descs)))

    def _reject(self, enode: Enode, kind: DescriptorType, request: Any, reason: int,
                explanation: int = LsRjtExplanation.NO_ADDITIONAL_EXPLANATION) -> None:
        """Answer a FIP link service request here, with an encapsulated LS_RJT."""
        rh = request.reply(RCtl.ELS_REPLY, f_ctl=F_CTL_REPLY, rx_id=next(self._rjt_xids))
        rh = rh._replace(s_id=F_PORT)
        frame = rh.encode() + LsRjt(LsRjtReason(reason),
                                          LsRjtExplanation(explanation)).encode()
        self._send_fip(enode.segment, enode.mac, enode.vlan,
                       FipFrame(FipOp.LINK_SERVICE, LinkServiceSub.REPLY, FipFlags.FP,
                                (Encapsulated(kind, frame),)))

    # ------------------------------------------------------------------ VN_Ports
    def _forget_vn_port(self, enode: Enode, vn: VnPort) -> None:
        enode.vn_ports.pop(vn.fcid, None)
        if self._by_vn_mac.get(vn.mac, (None, None))[1] is vn:
            del self._by_vn_mac[vn.mac]

    def _logout_vn_port(self, enode: Enode, vn: VnPort, reason: str) -> None:
        """Log one VN_Port out of the fabric on the ENode's behalf (as its LOGO would)."""
        self._forget_vn_port(enode, vn)
        if enode.link_id is None:
            return
        if vn.base or not enode.vn_ports:
            self._detach(enode, reason)
            return
        hdr = make_header(RCtl.ELS_REQUEST, F_PORT, vn.fcid, FcType.ELS, F_CTL_REQUEST,
                          ox_id=next(self._rjt_xids))
        raw = encode_frame(hdr, Logo(vn.fcid, vn.wwpn).encode())
        # the fabric's LS_ACC comes back to from_fabric, finds no VN_Port and is dropped
        self.fabric.deliver(enode.link_id, Frame(SOF.SOFi3, EOF.EOFt, hdr,
                                                 memoryview(raw)[56:-8], raw))

    def _detach(self, enode: Enode, reason: str) -> None:
        for vn in list(enode.vn_ports.values()):
            self._forget_vn_port(enode, vn)
        if enode.link_id is not None:
            link_id, enode.link_id = enode.link_id, None
            self._by_link.pop(link_id, None)
            self.fabric.detach(link_id, reason)

    def _forget_enode(self, enode: Enode, reason: str) -> None:
        self._detach(enode, reason)
        self.enodes.pop(enode.mac, None)

    # ------------------------------------------------------------------ sending
    def _send_fip(self, segment: int | None, dst: bytes, vlan: int | None, fip: FipFrame,
                  pad_to: int = 0) -> bool:
        frame = ethernet_header(dst, self.mac, ETH_P_FIP, vlan) + fip.encode(pad_to)
        self.counters["fip_sent"] += 1
        return self.send(segment, frame)

    def _advertisement(self, solicited: bool) -> FipFrame:
        s = self.settings
        flags = FipFlags.FP | FipFlags.A | FipFlags.F | (FipFlags.S if solicited else 0)
        return FipFrame(FipOp.DISCOVERY, DiscoverySub.ADVERTISEMENT, flags, (
            Priority(s.priority), MacAddress(self.mac), NameIdentifier(s.switch_name),
            Fabric(0, s.fc_map, s.fabric_name), FkaAdvPeriod(s.fka_adv_period_ms)))

    def _send_advertisement(self, segment: int | None, enode: Enode | None) -> None:
        """Unicast and solicited to `enode`, or multicast to All-ENode-MACs (on `segment`,
        or every segment when None)."""
        if enode is not None:
            # FC-BB-6 7.8.4: padded to the ENode's Max FCoE Size (less the Ethernet header)
            # so that a frame of that size is known to get through
            self._send_fip(segment, enode.mac, enode.vlan, self._advertisement(True),
                           pad_to=enode.max_fcoe_size)
            return
        self.counters["advertisements"] += 1
        self._send_fip(segment, ALL_ENODE_MACS, self.settings.vlan, self._advertisement(False))

    def _send_cvl(self, enode: Enode, vn_ports: list[VnPort]) -> None:
        self._send_cvl_to(enode.mac, enode.segment, enode.vlan,
                          [VxPortId(v.mac, v.fcid, v.wwpn) for v in vn_ports])

    def _send_cvl_to(self, mac: bytes, segment: int | None, vlan: int | None,
                     vn_ids: list[VxPortId]) -> None:
        """Clear Virtual Links (FC-BB-6 7.8.7): with no Vx_Port ID descriptor it clears all
        of the ENode's VN_Ports."""
        if segment is None:
            return
        self.counters["clear_virtual_links"] += 1
        self._send_fip(segment, mac, vlan, FipFrame(
            FipOp.CONTROL, ControlSub.CLEAR_VIRTUAL_LINKS, FipFlags.NONE,
            (MacAddress(self.mac), NameIdentifier(self.settings.switch_name), *vn_ids)))

    # ------------------------------------------------------------------ drops
    def _drop(self, enode: Enode | None, reason: str, detail: str) -> None:
        self.counters[f"drop_{reason}"] += 1
        if enode is not None:
            enode.counters[f"drop_{reason}"] += 1
        self._logged[reason] += 1
        n = self._logged[reason]
        if n <= LOGGED_PER_REASON or n % 1000 == 0:
            self.log.info("frame dropped", reason=reason.replace("_", " "), detail=detail,
                          count=n)

    def _count(self, enode: Enode, what: str) -> None:
        self.counters[what] += 1
        enode.counters[what] += 1
