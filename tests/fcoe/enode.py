"""A scripted FCoE ENode for tests: builds the Ethernet frames an ENode sends (shaped as
Linux's libfcoe sends them, see linux_frames.py for the real ones) and reads the FCF's.

It is deliberately small and literal: each method returns one Ethernet frame. Frames
from the FCF are checked by the tests with fcsoft's decoders *and* by tshark."""

from __future__ import annotations

from fcsoft.wire.els import Logo
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.encap import EOF, SOF, encode_frame
from fcsoft.wire.fcoe import (
    ALL_FCF_MACS,
    ETH_P_FIP,
    encode_fcoe,
    ethernet_header,
    fpma,
)
from fcsoft.wire.fip import (
    ControlSub,
    DescriptorType,
    DiscoverySub,
    Encapsulated,
    FipFlags,
    FipFrame,
    FipOp,
    LinkServiceSub,
    MacAddress,
    MaxFcoeSize,
    NameIdentifier,
    VlanSub,
    VxPortId,
)
from fcsoft.wire.header import F_CTL_REQUEST, FcType, RCtl, WellKnownAddress, make_header
from fcsoft.wire.wwn import WWN

F_PORT = int(WellKnownAddress.FABRIC_F_PORT)
FCF_MAC = bytes.fromhex("0efc00fffffe")
FC_MAP = 0x0EFC00


class ScriptedEnode:
    """One ENode with MAC `mac`: WWNN 10:00 + MAC and WWPN 20:00 + MAC, as libfcoe
    derives them."""

    def __init__(self, mac: bytes, fcf_mac: bytes = FCF_MAC, max_fcoe_size: int = 2158,
                 receive_size: int = 2048) -> None:
        self.mac = mac
        self.fcf_mac = fcf_mac
        self.max_fcoe_size = max_fcoe_size
        self.receive_size = receive_size
        self.wwnn = WWN(0x1000 << 48 | int.from_bytes(mac, "big"))
        self.wwpn = WWN(0x2000 << 48 | int.from_bytes(mac, "big"))

    def fip(self, frame: FipFrame, dst: bytes | None = None) -> bytes:
        return ethernet_header(dst or self.fcf_mac, self.mac, ETH_P_FIP) + frame.encode()

    def solicitation(self) -> bytes:
        return self.fip(FipFrame(FipOp.DISCOVERY, DiscoverySub.SOLICITATION, FipFlags.FP, (
            MacAddress(self.mac), NameIdentifier(self.wwnn),
            MaxFcoeSize(self.max_fcoe_size))), ALL_FCF_MACS)

    def _els(self, kind: DescriptorType, s_id: int, payload: bytes, ox_id: int) -> bytes:
        header = make_header(RCtl.ELS_REQUEST, F_PORT, s_id, FcType.ELS, F_CTL_REQUEST,
                             ox_id=ox_id)
        mac = self.mac if kind == DescriptorType.LOGO else bytes(6)
        return self.fip(FipFrame(FipOp.LINK_SERVICE, LinkServiceSub.REQUEST, FipFlags.FP, (
            Encapsulated(kind, header.encode() + payload), MacAddress(mac))))

    def flogi(self, ox_id: int = 1, wwpn: WWN | None = None) -> bytes:
        sp = ServiceParameters.flogi(wwpn or self.wwpn, self.wwnn,
                                     receive_data_field_size=self.receive_size)
        return self._els(DescriptorType.FLOGI, 0, sp.encode(), ox_id)

    def fdisc(self, wwpn: WWN, ox_id: int = 2) -> bytes:
        sp = ServiceParameters.fdisc(wwpn, self.wwnn, receive_data_field_size=self.receive_size)
        return self._els(DescriptorType.FDISC, 0, sp.encode(), ox_id)

    def logo(self, fcid: int, wwpn: WWN, ox_id: int = 3) -> bytes:
        return self._els(DescriptorType.LOGO, fcid, Logo(fcid, wwpn).encode(), ox_id)

    def keep_alive(self, vn_ports: tuple[tuple[int, WWN], ...] = ()) -> bytes:
        descs = [MacAddress(self.mac)] + [VxPortId(fpma(FC_MAP, fcid), fcid, wwpn)
                                          for fcid, wwpn in vn_ports]
        return self.fip(FipFrame(FipOp.CONTROL, ControlSub.KEEP_ALIVE, FipFlags.FP,
                                 tuple(descs)))

    def vlan_request(self) -> bytes:
        return self.fip(FipFrame(FipOp.VLAN, VlanSub.REQUEST, FipFlags.FP,
                                 (MacAddress(self.mac),)), ALL_FCF_MACS)

    def fcoe(self, fcid: int, header_args: dict, payload: bytes, *, sof: int = SOF.SOFi3,
             eof: int = EOF.EOFt) -> bytes:
        """An FCoE frame from VN_Port `fcid` (its FPMA MAC) to the FCF."""
        h = make_header(s_id=fcid, **header_args)
        return encode_fcoe(self.fcf_mac, fpma(FC_MAP, fcid), encode_frame(h, payload, sof, eof))
