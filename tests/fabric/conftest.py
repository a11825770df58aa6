"""A sans-IO harness for the fabric core (fcsoft.fabric.core.Fabric).

No sockets, no trio, no sleeps: the harness hands `Fabric` encapsulated frames built with the
project's codecs, records what the fabric transmits as (link_id, bytes), decodes it again
with `FrameDecoder` and the ELS / CT / name-server codecs, and keeps a fake clock (a float
passed as `now`). `transmit` returns False for links listed in `queue_full`, as the trio
shell does when a link's bounded send queue is full (docs/behaviour.md 2).

Reading order for a test: `FabricHarness(toml)` builds the fabric from a config snippet;
`h.port(link, wwpn)` brings a link up and logs a port in (FLOGI, or FDISC on a link that is
already logged in), by default with PLOGI to the name server; the `Port` it returns sends
ELS and CT requests and returns the decoded replies.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

import pytest

from fcsoft.config import parse_config
from fcsoft.fabric.core import Fabric, LinkState
from fcsoft.wire import ns
from fcsoft.wire.ct import (
    CtIu,
    CtResponseCode,
    GsType,
    ct_request,
    decode_ct,
)
from fcsoft.wire.els import (
    ElsCommand,
    Logo,
    LsAcc,
    LsRjt,
    Rscn,
    Scr,
    ScrFunction,
    decode_els_reply,
    decode_els_request,
)
from fcsoft.wire.els_login import ServiceParameters
from fcsoft.wire.encap import EOF, SOF, Frame, FrameDecoder, encode_frame, split_frames
from fcsoft.wire.header import (
    F_CTL_REPLY,
    F_CTL_REQUEST,
    FcHeader,
    FcType,
    RCtl,
    WellKnownAddress,
    make_header,
)
from fcsoft.wire.wwn import WWN

F_PORT = int(WellKnownAddress.FABRIC_F_PORT)  # FFFFFE
CONTROLLER = int(WellKnownAddress.FABRIC_CONTROLLER)  # FFFFFD
DIRECTORY = int(WellKnownAddress.DIRECTORY_SERVER)  # FFFFFC
MANAGEMENT = int(WellKnownAddress.MANAGEMENT_SERVER)  # FFFFFA
NAME_SERVER = 0x02  # GS_Subtype of the directory's name server (FC-GS-8 4.3.2.4)


def wwpn(n: int) -> WWN:
    """Port name number n (NAA 1, Emulex-like OUI)."""
    return WWN(0x10_00_00_00_C9_00_00_00 | n)


def wwnn(n: int) -> WWN:
    """Node name number n."""
    return WWN(0x20_00_00_00_C9_00_00_00 | n)


def node_of(port: WWN) -> WWN:
    """The node name the harness gives a port that does not say: NAA 2, the port's low
    56 bits (so port 10:00:..:01 belongs to node 20:00:..:01)."""
    return WWN((int(port) & ((1 << 56) - 1)) | 0x20 << 56)


def zones_toml(zones: dict[str, Iterable[WWN]]) -> str:
    """`[[zone]]` tables for a config snippet."""
    out = []
    for name, members in zones.items():
        quoted = ", ".join(f'"{m}"' for m in members)
        out.append(f'[[zone]]\nname = "{name}"\nmembers = [{quoted}]\n')
    return "\n".join(out)


# ----------------------------------------------------------------------------------- frames


@dataclass
class Sent:
    """One frame the fabric transmitted, decoded again."""

    link: int
    raw: bytes
    frame: Frame

    @property
    def header(self) -> FcHeader:
        return self.frame.header

    @property
    def payload(self) -> bytes:
        return bytes(self.frame.payload)

    @property
    def is_els_request(self) -> bool:
        h = self.header
        return h.r_ctl == RCtl.ELS_REQUEST and h.type == FcType.ELS

    @property
    def is_els_reply(self) -> bool:
        h = self.header
        return h.r_ctl == RCtl.ELS_REPLY and h.type == FcType.ELS

    def els_reply(self, request_command: int) -> object:
        """The ELS reply, decoded in the context of the request it answers."""
        assert self.is_els_reply, self.header
        return decode_els_reply(self.payload, request_command)

    def els_request(self) -> object:
        assert self.is_els_request, self.header
        return decode_els_request(self.payload)

    def __repr__(self) -> str:
        h = self.header
        return (f"Sent(link={self.link}, r_ctl={h.r_ctl:#04x}, d_id={h.d_id:06x}, "
                f"s_id={h.s_id:06x}, type={h.type:#04x}, ox_id={h.ox_id:#06x}, "
                f"payload={self.payload[:8].hex()}...)")


def decode_one(raw: bytes) -> Frame:
    """Decode exactly one encapsulated FC frame (docs/wire.md)."""
    events = FrameDecoder().feed(raw)
    assert len(events) == 1 and isinstance(events[0], Frame), events
    return events[0]


@dataclass
class CtReply:
    """A CT response, reassembled from the frames of its sequence."""

    frames: list[Sent]
    iu: CtIu
    command: int  # the request's command code

    @property
    def accepted(self) -> bool:
        return self.iu.preamble.command == CtResponseCode.ACCEPT

    @property
    def rejected(self) -> bool:
        return self.iu.preamble.command == CtResponseCode.REJECT

    @property
    def reject(self) -> tuple[int, int]:
        """(reason, explanation) of a CT reject."""
        assert self.rejected, self.iu.preamble
        return self.iu.preamble.reason, self.iu.preamble.explanation

    @property
    def body(self) -> bytes:
        return bytes(self.iu.body)

    def accept(self) -> object:
        """The decoded accept payload (FC-GS-8 5.2 accept layouts)."""
        assert self.accepted, self.iu.preamble
        return ns.decode_ns_accept(self.command, self.iu.body)


def reassemble(frames: list[Sent]) -> bytes:
    """The payload of one sequence: frames ordered by SEQ_CNT, checked for contiguous
    relative offsets when they carry them (FC-FS-4 9.11 / 9.13)."""
    frames = sorted(frames, key=lambda s: s.header.seq_cnt)
    out = b""
    for s in frames:
        if len(frames) > 1:
            assert s.header.parameter == len(out), (s.header.parameter, len(out))
        out += s.payload
    return out


# --------------------------------------------------------------------------------- harness


class FabricHarness:
    """Drives one `Fabric` directly. See the module docstring."""

    def __init__(self, toml: str = "", *, now: float = 0.0) -> None:
        conf = parse_config(toml)
        self.conf = conf.fabric
        self.now = now
        self.sent: list[Sent] = []  # everything transmitted and accepted by the "link"
        self.refused: list[Sent] = []  # frames transmit() answered False for
        self.queue_full: set[int] = set()
        self.fabric = Fabric(conf.fabric, conf.zones, transmit=self._transmit)
        self._new = 0
        self._ox = itertools.count(0x100)

    # -- the fake link layer ----------------------------------------------------------------
    def _transmit(self, link_id: int, data: bytes) -> bool:
        # one frame, or several back to back (a sequence routed on its raw bytes)
        sent = [Sent(link_id, bytes(raw), decode_one(bytes(raw))) for raw in split_frames(data)]
        if link_id in self.queue_full:
            self.refused.extend(sent)
            return False
        self.sent.extend(sent)
        return True

    def take(self) -> list[Sent]:
        """Frames transmitted since the last take()."""
        out = self.sent[self._new:]
        self._new = len(self.sent)
        return out

    def ox_id(self) -> int:
        return next(self._ox)

    def link_up(self, link: int) -> None:
        self.fabric.link_up(link, self.now)

    def link_down(self, link: int) -> list[Sent]:
        self.fabric.link_down(link, self.now)
        return self.take()

    def deliver(self, link: int, header: FcHeader, payload: bytes = b"", *,
                sof: int = SOF.SOFi3, eof: int = EOF.EOFt) -> list[Sent]:
        """Hand one frame to the fabric as if `link` had received it; return what the
        fabric transmitted in response (on any link)."""
        self.take()
        self.fabric.frame_received(link, decode_one(encode_frame(header, payload, sof, eof)),
                                   self.now)
        return self.take()

    def deliver_raw(self, link: int, raw: bytes) -> list[Sent]:
        self.take()
        self.fabric.frame_received(link, decode_one(raw), self.now)
        return self.take()

    # -- clock ------------------------------------------------------------------------------
    def run_until(self, t: float) -> list[Sent]:
        """Advance the fake clock to `t`, firing every timer the fabric asks for on the way
        (as the trio shell does with next_timer / handle_timer)."""
        self.take()
        while (deadline := self.fabric.next_timer()) is not None and deadline <= t:
            self.now = max(self.now, deadline)
            self.fabric.handle_timer(self.now)
        self.now = max(self.now, t)
        return self.take()

    def flush_rscns(self) -> None:
        """Deliver everything pending and answer every RSCN, so a test starts clean."""
        for s in self.run_until(self.now + 3600):
            if s.is_els_request and s.payload[0] == ElsCommand.RSCN:
                self.ack(s)
        assert self.fabric.next_timer() is None

    def rscns_due(self) -> dict[int, list[int]]:
        """Run past the coalescing window (not as far as E_D_TOV), answer every RSCN sent
        with LS_ACC, and return the affected N_Port_IDs per recipient."""
        sent = self.run_until(self.now + min(1.0, self.conf.e_d_tov_ms / 2000))
        for s in sent:
            if s.is_els_request and s.payload[0] == ElsCommand.RSCN:
                self.ack(s)
        return rscn_ids(sent)

    # -- requests ---------------------------------------------------------------------------
    def els(self, link: int, s_id: int, d_id: int, payload: bytes,
            ox_id: int | None = None) -> list[Sent]:
        hdr = make_header(RCtl.ELS_REQUEST, d_id, s_id, FcType.ELS, F_CTL_REQUEST,
                          ox_id=self.ox_id() if ox_id is None else ox_id)
        return self.deliver(link, hdr, payload)

    def els_one(self, link: int, s_id: int, d_id: int, payload: bytes) -> Sent:
        """An ELS request that must be answered with exactly one reply and nothing else."""
        out = self.els(link, s_id, d_id, payload)
        assert len(out) == 1, out
        reply = out[0]
        assert reply.link == link and reply.is_els_reply, reply
        assert reply.header.s_id == d_id and reply.header.f_ctl & 0xFFFFFC == F_CTL_REPLY
        return reply

    def flogi(self, link: int, port: WWN, node: WWN | None = None, s_id: int = 0,
              **kw: object) -> Sent:
        sp = ServiceParameters.flogi(port, node if node is not None else node_of(port),
                                     **kw)  # type: ignore[arg-type]
        return self.els_one(link, s_id, F_PORT, sp.encode())

    def fdisc(self, link: int, port: WWN, node: WWN | None = None, s_id: int = 0) -> Sent:
        sp = ServiceParameters.fdisc(port, node if node is not None else node_of(port))
        return self.els_one(link, s_id, F_PORT, sp.encode())

    def logo(self, link: int, s_id: int, port: WWN, d_id: int = F_PORT) -> Sent:
        return self.els_one(link, s_id, d_id, Logo(s_id, port).encode())

    def plogi(self, link: int, s_id: int, port: WWN, d_id: int = DIRECTORY) -> Sent:
        sp = ServiceParameters.plogi(port, node_of(port))
        return self.els_one(link, s_id, d_id, sp.encode())

    def scr(self, link: int, s_id: int, function: int = ScrFunction.FULL) -> Sent:
        return self.els_one(link, s_id, CONTROLLER, Scr(ScrFunction(function)).encode())

    def ct(self, link: int, s_id: int, command: int, body: bytes = b"", *,
           max_size: int = 0, d_id: int = DIRECTORY, gs_type: int = GsType.DIRECTORY,
           gs_subtype: int = NAME_SERVER) -> list[Sent]:
        hdr = make_header(RCtl.UNSOLICITED_CONTROL, d_id, s_id, FcType.CT, F_CTL_REQUEST,
                          ox_id=self.ox_id())
        return self.deliver(link, hdr, ct_request(gs_type, gs_subtype, command, body,
                                                  max_size=max_size))

    def ack(self, request: Sent) -> list[Sent]:
        """Answer an ELS request the fabric sent (an RSCN or LOGO) with LS_ACC."""
        h = request.header
        rh = h.reply(RCtl.ELS_REPLY, rx_id=0x7000 + (h.ox_id & 0xFFF))
        return self.deliver(request.link, rh, LsAcc().encode())

    # -- composite --------------------------------------------------------------------------
    def port(self, link: int, port: WWN, *, ns_login: bool = True,
             scr: int | None = None) -> Port:
        """Log `port` in on `link`: FLOGI if the link is not logged in yet, else FDISC.
        With ns_login, PLOGI to the name server too; with scr, register for RSCNs."""
        if link not in self.fabric.links:
            self.link_up(link)
        if self.fabric.links[link].state is LinkState.UNLOGGED:
            reply = self.flogi(link, port)
        else:
            reply = self.fdisc(link, port)
        acc = reply.els_reply(ElsCommand.FLOGI)
        assert isinstance(acc, ServiceParameters), acc
        p = Port(self, link, reply.header.d_id, port, node_of(port))
        if ns_login:
            assert isinstance(p.plogi().els_reply(ElsCommand.PLOGI), ServiceParameters)
        if scr is not None:
            assert isinstance(p.scr(scr).els_reply(ElsCommand.SCR), LsAcc)
        return p

    def check_invariants(self) -> None:
        """The bookkeeping invariants every sequence of inputs must keep (docs/behaviour.md 2 and 6:
        IDs and WWPNs unique, a link's N_Port_IDs exactly its logged-in records, released
        IDs free at once)."""
        check_invariants(self.fabric)


def check_invariants(fabric: Fabric) -> None:
    db = fabric.db
    records = list(db)
    # every logged-in record's N_Port_ID is in its link's fcids, and vice versa
    for rec in records:
        assert rec.link_id in fabric.links, rec
        assert rec.fcid in fabric.links[rec.link_id].fcids, rec
    link_ids = [(f, link.link_id) for link in fabric.links.values() for f in link.fcids]
    assert sorted(link_ids) == sorted((r.fcid, r.link_id) for r in records)
    # no two records share an N_Port_ID or a WWPN; the indexes agree with the records
    assert len({r.fcid for r in records}) == len(records)
    assert len({r.wwpn for r in records}) == len(records)
    for rec in records:
        assert db.by_wwpn(rec.wwpn) is rec
        assert db.get(rec.fcid) is rec
    # the allocator's in-use set is the database's set of N_Port_IDs
    assert set(fabric.addresses._in_use) == {r.fcid for r in records}
    for link in fabric.links.values():
        if link.state is LinkState.UNLOGGED:
            assert not link.fcids and link.base_fcid is None, link
        else:
            assert link.base_fcid in link.fcids, link
        for f in link.fcids:
            assert f >> 16 == fabric.domain_id
    # SCR registrations only for logged-in ports
    assert set(fabric._scr) <= {r.fcid for r in records}


# ------------------------------------------------------------------------------------ ports


@dataclass
class Port:
    """One logged-in N_Port_ID on a link of the harness."""

    h: FabricHarness
    link: int
    fcid: int
    wwpn: WWN
    wwnn: WWN

    def plogi(self, d_id: int = DIRECTORY) -> Sent:
        return self.h.plogi(self.link, self.fcid, self.wwpn, d_id)

    def scr(self, function: int = ScrFunction.FULL) -> Sent:
        return self.h.scr(self.link, self.fcid, function)

    def logo(self, d_id: int = F_PORT) -> Sent:
        return self.h.logo(self.link, self.fcid, self.wwpn, d_id)

    def ct_frames(self, command: int, body: bytes = b"", **kw: object) -> list[Sent]:
        return self.h.ct(self.link, self.fcid, command, body, **kw)  # type: ignore[arg-type]

    def ct(self, command: int, request: object = None, **kw: object) -> CtReply:
        """Send a name-server request (a payload object from fcsoft.wire.ns, or bytes) and
        return the reassembled response; it must be the only thing sent."""
        body = b"" if request is None else request if isinstance(request, bytes) \
            else request.encode()  # type: ignore[attr-defined]
        frames = self.ct_frames(command, body, **kw)
        assert frames, "no CT response"
        for s in frames:
            h = s.header
            assert s.link == self.link and h.d_id == self.fcid and h.s_id == kw.get(
                "d_id", DIRECTORY), s
            assert h.r_ctl == RCtl.SOLICITED_CONTROL and h.type == FcType.CT, s
        return CtReply(frames, decode_ct(reassemble(frames)), command)

    def ns_ok(self, command: int, request: object = None, **kw: object) -> object:
        """A name-server request that must be accepted; its decoded accept payload."""
        r = self.ct(command, request, **kw)
        assert r.accepted, (hex(command), r.iu.preamble)
        return r.accept()

    def ns_reject(self, command: int, request: object = None, **kw: object) -> tuple[int, int]:
        r = self.ct(command, request, **kw)
        return r.reject

    def register_fcp(self, features: int = ns.FcpFeatures.INITIATOR) -> None:
        """RFT_ID FCP and RFF_ID, as libfc registers (FC-GS-8 5.2.5)."""
        self.ns_ok(0x0217, ns.RftIdRequest(self.fcid, ns.Fc4Types({FcType.FCP})))
        self.ns_ok(0x021F, ns.RffIdRequest(self.fcid, FcType.FCP, features))

    def send(self, d_id: int, payload: bytes = b"\0" * 32, *, s_id: int | None = None,
             r_ctl: int = RCtl.UNSOLICITED_COMMAND, type: int = FcType.FCP) -> tuple[bytes,
                                                                                    list[Sent]]:
        """An N_Port-to-N_Port frame (an FCP_CMND by default); returns (raw bytes sent,
        what the fabric transmitted)."""
        hdr = make_header(r_ctl, d_id, self.fcid if s_id is None else s_id, type,
                          F_CTL_REQUEST, ox_id=self.h.ox_id())
        raw = encode_frame(hdr, payload)
        return raw, self.h.deliver_raw(self.link, raw)


def rscns(sent: Iterable[Sent]) -> dict[int, list[Rscn]]:
    """RSCNs in `sent`, by recipient N_Port_ID (checking they come from FFFFFD)."""
    out: dict[int, list[Rscn]] = {}
    for s in sent:
        if s.is_els_request and s.payload[:1] == bytes((ElsCommand.RSCN,)):
            assert s.header.s_id == CONTROLLER
            req = s.els_request()
            assert isinstance(req, Rscn)
            out.setdefault(s.header.d_id, []).append(req)
    return out


def rscn_ids(sent: Iterable[Sent]) -> dict[int, list[int]]:
    """Affected N_Port_IDs per recipient, in page order, over all RSCNs in `sent`."""
    return {r: [p.affected_id for rs in lst for p in rs.pages]
            for r, lst in rscns(sent).items()}


def ls_rjt(reply: Sent, request_command: int = ElsCommand.FLOGI) -> tuple[int, int]:
    """(reason, explanation) of an LS_RJT reply."""
    r = reply.els_reply(request_command)
    assert isinstance(r, LsRjt), r
    return int(r.reason), int(r.explanation)


@pytest.fixture
def h() -> FabricHarness:
    """A fabric with the default config (domain 1, default zone allow, reject duplicates,
    rscn_coalesce_ms 50, E_D_TOV 2 s)."""
    return FabricHarness()


__all__ = [
    "CONTROLLER", "DIRECTORY", "F_PORT", "MANAGEMENT", "CtReply", "FabricHarness", "Port",
    "Sent", "check_invariants", "decode_one", "ls_rjt", "reassemble", "rscn_ids", "rscns",
    "node_of", "wwnn", "wwpn", "zones_toml",
]
