"""fcsoft's initiator library as an FCoE ENode: a trio Stream that speaks RFC 3643 frames
to `open_host` on one side and FIP + FCoE in QEMU's stream framing to an FCF on the other,
the way Linux's libfcoe sits under libfc.

- At start: a FIP solicitation; the solicited advertisement names the FCF's MAC.
- FLOGI, FDISC and LOGO to FFFFFE travel as FIP link service requests; the FIP reply's
  encapsulated LS_ACC/LS_RJT comes back as an ordinary frame, and the granted MAC becomes
  that N_Port_ID's source MAC.
- Every other frame travels as FCoE from the VN_Port's MAC to the FCF's.
- ENode keep-alives go out every FKA_ADV_PERIOD while the stream is read.
- Clear Virtual Links ends the stream (the host library sees its link go down).
- `move(port)` carries on over another connection (a migrated guest's new QEMU): it
  announces the MAC with a RARP there, as QEMU does, and closes the old one.
Tests use it for fast end-to-end checks of the forwarder; the real ENode is Linux in the
guest lab.
"""

from __future__ import annotations

import struct

import trio

from fcsoft.wire.encap import EOF, SOF, FrameDecoder, encapsulate, fc_crc
from fcsoft.wire.fcoe import (
    ALL_FCF_MACS,
    ETH_P_FCOE,
    ETH_P_FIP,
    decode_fcoe,
    encode_fcoe,
    ethernet_header,
    parse_ethernet,
)
from fcsoft.wire.fip import (
    ControlSub,
    DescriptorType,
    DiscoverySub,
    Encapsulated,
    FipFlags,
    FipFrame,
    FipOp,
    FkaAdvPeriod,
    LinkServiceSub,
    MacAddress,
    MaxFcoeSize,
    NameIdentifier,
    decode_fip,
)
from fcsoft.wire.header import RCtl, WellKnownAddress
from fcsoft.wire.wwn import WWN

_LEN = struct.Struct(">I")
F_PORT = int(WellKnownAddress.FABRIC_F_PORT)
_KINDS = {0x04: DescriptorType.FLOGI, 0x51: DescriptorType.FDISC, 0x05: DescriptorType.LOGO}


class QemuStreamPort:
    """Ethernet frames over a TCP connection in QEMU's stream netdev framing."""

    def __init__(self, tcp: trio.SocketStream) -> None:
        self.tcp = tcp
        self._buf = bytearray()

    async def send(self, frame: bytes) -> None:
        await self.tcp.send_all(_LEN.pack(len(frame)) + frame)

    async def receive(self) -> bytes:
        while True:
            if len(self._buf) >= 4:
                (n,) = _LEN.unpack_from(self._buf)
                if len(self._buf) >= 4 + n:
                    frame = bytes(self._buf[4:4 + n])
                    del self._buf[:4 + n]
                    return frame
            data = await self.tcp.receive_some(65536)
            if not data:
                raise trio.BrokenResourceError("FCF closed the connection")
            self._buf += data

    async def aclose(self) -> None:
        await self.tcp.aclose()


class RawSocketPort:
    """Ethernet frames on a network interface through an AF_PACKET socket."""

    def __init__(self, ifname: str) -> None:
        import socket

        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        raw.bind((ifname, 0))
        self.sock = trio.socket.from_stdlib_socket(raw)

    async def send(self, frame: bytes) -> None:
        await self.sock.send(frame)

    async def receive(self) -> bytes:
        while True:
            data, addr = await self.sock.recvfrom(65536)
            if addr[2] != 4:  # not our own outgoing frame
                return data

    async def aclose(self) -> None:
        self.sock.close()


class EnodeStream(trio.abc.Stream):
    """See the module docstring. `mac` is the ENode's MAC; `port` carries its Ethernet
    frames (QemuStreamPort or RawSocketPort)."""

    def __init__(self, port: QemuStreamPort | RawSocketPort, mac: bytes, *,
                 max_fcoe_size: int = 2158) -> None:
        self.port = port
        self.mac = mac
        self.max_fcoe_size = max_fcoe_size
        self.fcf_mac: bytes | None = None
        self.period = 8.0
        self.vn_macs: dict[int, bytes] = {}  # N_Port_ID -> granted MAC
        self._out = FrameDecoder()
        self._ready: list[bytes] = []
        self._next_ka = 0.0
        self.cleared = False
        self.wire: list[bytes] = []  # every Ethernet frame either way, in order (for tshark)
        self._send_lock = trio.Lock()  # keep-alives (reader) and frames (writer) share TCP

    @classmethod
    async def connect(cls, address: tuple[str, int], mac: bytes, **kw: int) -> EnodeStream:
        """An ENode on a QEMU-stream connection to the FCF at `address`."""
        s = cls(QemuStreamPort(await trio.open_tcp_stream(*address)), mac, **kw)
        await s.discover()
        return s

    # -- Ethernet ----------------------------------------------------------------------
    async def _eth_send(self, frame: bytes) -> None:
        self.wire.append(frame)
        async with self._send_lock:
            await self.port.send(frame)

    async def _eth_receive(self) -> bytes:
        while True:
            port = self.port
            try:
                frame = await port.receive()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                if self.port is port:
                    raise
                continue  # moved: the old connection ended, read the new one
            self.wire.append(frame)
            return frame

    async def move(self, port: QemuStreamPort | RawSocketPort) -> None:
        """Go on over `port`: RARP from the ENode's MAC there (QEMU's self-announcement
        after a migration), then the old connection is closed."""
        old, self.port = self.port, port
        rarp = (bytes.fromhex("0001080006040003") + self.mac + bytes(4) + self.mac
                + bytes(4))
        await self._eth_send(b"\xff" * 6 + self.mac + b"\x80\x35" + rarp + bytes(18))
        await old.aclose()

    async def discover(self) -> None:
        """Solicit and wait for the solicited advertisement."""
        wwnn = WWN(0x1000 << 48 | int.from_bytes(self.mac, "big"))
        await self._eth_send(ethernet_header(ALL_FCF_MACS, self.mac, ETH_P_FIP) + FipFrame(
            FipOp.DISCOVERY, DiscoverySub.SOLICITATION, FipFlags.FP,
            (MacAddress(self.mac), NameIdentifier(wwnn), MaxFcoeSize(self.max_fcoe_size))
        ).encode())
        while self.fcf_mac is None:
            frame = await self._eth_receive()
            eth = parse_ethernet(frame)
            if eth.ethertype != ETH_P_FIP:
                continue
            fip = decode_fip(memoryview(frame)[eth.offset:])
            if (fip.op, fip.subcode) == (FipOp.DISCOVERY, DiscoverySub.ADVERTISEMENT) and \
                    fip.flags & FipFlags.S:
                self.fcf_mac = fip.find(MacAddress).mac  # type: ignore[union-attr]
                fka = fip.find(FkaAdvPeriod)
                self.period = fka.period_ms / 1000 if fka else 8.0
        self._next_ka = trio.current_time() + self.period

    # -- trio.abc.Stream -----------------------------------------------------------------
    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        assert self.fcf_mac is not None
        for ev in self._out.feed(bytes(data)):
            raw = bytes(ev.raw)
            h = ev.header  # type: ignore[union-attr]
            payload = bytes(ev.payload)  # type: ignore[union-attr]
            kind = _KINDS.get(payload[0]) if payload else None
            if h.d_id == F_PORT and h.r_ctl == RCtl.ELS_REQUEST and kind is not None:
                mac = self.mac if kind == DescriptorType.LOGO else bytes(6)
                fip = FipFrame(FipOp.LINK_SERVICE, LinkServiceSub.REQUEST, FipFlags.FP,
                               (Encapsulated(kind, raw[32:-8]), MacAddress(mac)))
                await self._eth_send(ethernet_header(self.fcf_mac, self.mac, ETH_P_FIP)
                                     + fip.encode())
            else:
                await self._eth_send(encode_fcoe(self.fcf_mac, self.vn_macs[h.s_id], raw))

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        while not self._ready:
            if self.cleared:
                return b""
            with trio.move_on_at(self._next_ka):
                frame = await self._eth_receive()
                self._frame(frame)
                continue
            await self._keep_alive()
        return self._ready.pop(0)

    async def _keep_alive(self) -> None:
        assert self.fcf_mac is not None
        self._next_ka = trio.current_time() + self.period
        await self._eth_send(ethernet_header(self.fcf_mac, self.mac, ETH_P_FIP) + FipFrame(
            FipOp.CONTROL, ControlSub.KEEP_ALIVE, FipFlags.FP, (MacAddress(self.mac),)
        ).encode())

    def _frame(self, frame: bytes) -> None:
        eth = parse_ethernet(frame)
        pdu = memoryview(frame)[eth.offset:]
        if eth.ethertype == ETH_P_FCOE:
            self._ready.append(bytes(decode_fcoe(pdu).raw))
            return
        if eth.ethertype != ETH_P_FIP:
            return
        fip = decode_fip(pdu)
        if (fip.op, fip.subcode) == (FipOp.CONTROL, ControlSub.CLEAR_VIRTUAL_LINKS):
            self.cleared = True
            return
        if (fip.op, fip.subcode) != (FipOp.LINK_SERVICE, LinkServiceSub.REPLY):
            return
        els = fip.descriptors[0]
        assert isinstance(els, Encapsulated)
        body = els.frame + bytes(-len(els.frame) & 3)
        raw = encapsulate(SOF.SOFi3, body, fc_crc(body).to_bytes(4, "little"), EOF.EOFt)
        mac = fip.find(MacAddress)
        if els.kind in (DescriptorType.FLOGI, DescriptorType.FDISC) and mac is not None \
                and body[24] == 0x02:
            d_id = int.from_bytes(body[1:4], "big")
            self.vn_macs[d_id] = mac.mac
        self._ready.append(raw)

    async def send_eof(self) -> None:
        pass

    async def wait_send_all_might_not_block(self) -> None:
        pass

    async def aclose(self) -> None:
        await self.port.aclose()
