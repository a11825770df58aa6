"""The directory name server at FFFFFC (FC-GS-8 5.2; docs/behaviour.md 2).

Theory of operation: `NameServer.handle` takes the requester's record and one decoded CT_IU
and returns the response CT_IU bytes plus the list of ports whose registrations changed
(the fabric turns those into RSCNs). Every query answers only with ports zoned with the
requester (`Zoning.visible`); a query that finds nothing is a CT reject "unable to
perform" with the explanation naming the key object, never an empty accept. A port may
register or deregister objects only for its own N_Port_IDs (docs/behaviour.md 2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fcsoft.wire import ns
from fcsoft.wire.ct import (
    CtIu,
    CtPreamble,
    CtRejectReason,
    GsType,
    NsCommand,
    NsRejectExplanation,
    ct_accept,
    ct_max_response_bytes,
    ct_reject,
)
from fcsoft.wire.errors import DecodeError
from fcsoft.wire.wwn import WWN

from .records import PortDatabase, PortRecord
from .zoning import Zoning

NAME_SERVER_SUBTYPE = 0x02


class NsReject(Exception):
    """Raised inside a handler to answer with a CT reject."""

    def __init__(self, reason: int, explanation: int = 0) -> None:
        super().__init__(f"CT reject {reason:#04x}/{explanation:#04x}")
        self.reason = reason
        self.explanation = explanation


@dataclass(slots=True)
class NsResult:
    """A name-server answer: the CT_IU to send back, and what changed (for RSCN)."""

    response: bytes
    changed: PortRecord | None = None
    rejected: tuple[int, int] | None = None


_UNABLE = CtRejectReason.UNABLE_TO_PERFORM


def _in_scope(recs: list[PortRecord], req: object) -> list[PortRecord]:
    """The records inside a query's domain and area scope (0 = any), FC-GS-8 GID_FT/GID_PT."""
    domain = req.domain_id_scope  # type: ignore[attr-defined]
    area = req.area_id_scope  # type: ignore[attr-defined]
    if domain:
        recs = [r for r in recs if r.fcid >> 16 == domain]
        if area:
            recs = [r for r in recs if (r.fcid >> 8) & 0xFF == area]
    return recs


class NameServer:
    """Answers CT_IUs for the directory server, over the fabric's port database."""

    def __init__(self, db: PortDatabase, zoning: Callable[[], Zoning]) -> None:
        self.db = db
        self._zoning = zoning
        self._handlers: dict[int, Callable[[PortRecord, object], bytes | None]] = {
            NsCommand.GA_NXT: self._ga_nxt,
            NsCommand.GPN_ID: self._gpn_id,
            NsCommand.GNN_ID: self._gnn_id,
            NsCommand.GFT_ID: self._gft_id,
            NsCommand.GSPN_ID: self._gspn_id,
            NsCommand.GFF_ID: self._gff_id,
            NsCommand.GID_PN: self._gid_pn,
            NsCommand.GSNN_NN: self._gsnn_nn,
            NsCommand.GID_FT: self._gid_ft,
            NsCommand.GPN_FT: self._gpn_ft,
            NsCommand.GNN_FT: self._gnn_ft,
            NsCommand.GID_PT: self._gid_pt,
            NsCommand.RNN_ID: self._rnn_id,
            NsCommand.RSNN_NN: self._rsnn_nn,
            NsCommand.RSPN_ID: self._rspn_id,
            NsCommand.RFT_ID: self._rft_id,
            NsCommand.RFF_ID: self._rff_id,
            NsCommand.DA_ID: self._da_id,
        }

    # -- entry point -----------------------------------------------------------------
    def handle(self, requester: PortRecord, iu: CtIu) -> NsResult:
        """Answer one request CT_IU from `requester`."""
        pre = iu.preamble
        if pre.gs_type != GsType.DIRECTORY or pre.gs_subtype != NAME_SERVER_SUBTYPE:
            return self._reject(pre, CtRejectReason.INVALID_COMMAND_CODE, 0)
        handler = self._handlers.get(pre.command)
        if handler is None:
            return self._reject(pre, CtRejectReason.COMMAND_NOT_SUPPORTED, 0)
        try:
            request = ns.decode_ns_request(pre.command, iu.body)
        except DecodeError:
            return self._reject(pre, CtRejectReason.INVALID_CT_IU_SIZE
                                if len(iu.body) == 0 else CtRejectReason.PROTOCOL_ERROR, 0)
        self._changed: PortRecord | None = None
        try:
            body = handler(requester, request)
        except NsReject as rej:
            return self._reject(pre, rej.reason, rej.explanation)
        return NsResult(self._accept(pre, body or b""), self._changed)

    def _reject(self, pre: CtPreamble, reason: int, explanation: int) -> NsResult:
        return NsResult(ct_reject(pre, reason, explanation), None, (reason, explanation))

    @staticmethod
    def _accept(pre: CtPreamble, body: bytes) -> bytes:
        limit = ct_max_response_bytes(pre)
        if limit is not None and len(body) > limit:
            # FC-GS-8 4.3.2.5: truncate to the requested size and report the residual
            return ct_accept(pre, body[:limit], residual=(len(body) - limit + 3) // 4)
        return ct_accept(pre, body)

    # -- helpers ---------------------------------------------------------------------
    def visible_record(self, requester: PortRecord, fcid: int) -> PortRecord:
        """The registered record of `fcid` if zoned with the requester, else reject
        'port ID not registered'."""
        rec = self.db.get(fcid)
        if rec is None or not rec.in_name_server or \
                not self._zoning().visible(requester.wwpn, rec.wwpn):
            raise NsReject(_UNABLE, NsRejectExplanation.PORT_ID_NOT_REGISTERED)
        return rec

    def _own(self, requester: PortRecord, fcid: int) -> PortRecord:
        """Registration target: must be one of the requester's own N_Port_IDs."""
        if fcid != requester.fcid:
            own = self.db.get(fcid)
            if own is None or own.link_id != requester.link_id:
                raise NsReject(_UNABLE, NsRejectExplanation.ACCESS_DENIED)
            requester = own
        if not requester.in_name_server:
            requester.in_name_server = True  # registering again after DA_ID
        self._changed = requester
        return requester

    def _visible(self, requester: PortRecord, fcids: Iterable[int]) -> list[PortRecord]:
        zoning = self._zoning()
        me = requester.wwpn
        out = []
        get = self.db.by_fcid.__getitem__
        if not zoning.zoned and zoning.default_zone == "allow":
            for f in fcids:
                r = get(f)
                if r.in_name_server:
                    out.append(r)
            return out
        for f in fcids:
            r = get(f)
            if r.in_name_server and zoning.visible(me, r.wwpn):
                out.append(r)
        return out

    def _by_type(self, requester: PortRecord, req: object) -> list[PortRecord]:
        fc4_type = req.fc4_type  # type: ignore[attr-defined]
        recs = _in_scope(self._visible(requester, self.db.with_type(fc4_type)), req)
        if not recs:
            raise NsReject(_UNABLE, NsRejectExplanation.FC4_TYPES_NOT_REGISTERED)
        return recs

    # -- queries ---------------------------------------------------------------------
    def _ga_nxt(self, me: PortRecord, req: object) -> bytes:
        zoning = self._zoning()
        for fcid in self.db.after(req.port_id):  # type: ignore[attr-defined]
            r = self.db.by_fcid[fcid]
            if r.in_name_server and zoning.visible(me.wwpn, r.wwpn):
                return ns.GaNxtAccept(
                    port_type=r.port_type, port_id=r.fcid, port_name=r.wwpn,
                    symbolic_port_name=r.symbolic_port_name, node_name=r.wwnn,
                    symbolic_node_name=self.db.symbolic_node_names.get(r.wwnn, b""),
                    class_of_service=r.class_of_service,
                    fc4_types=ns.Fc4Types(r.fc4_types)).encode()
        raise NsReject(_UNABLE, NsRejectExplanation.PORT_ID_NOT_REGISTERED)

    def _gpn_id(self, me: PortRecord, req: object) -> bytes:
        return ns.GpnIdAccept(self.visible_record(me, req.port_id).wwpn).encode()  # type: ignore[attr-defined]

    def _gnn_id(self, me: PortRecord, req: object) -> bytes:
        return ns.GnnIdAccept(self.visible_record(me, req.port_id).wwnn).encode()  # type: ignore[attr-defined]

    def _gft_id(self, me: PortRecord, req: object) -> bytes:
        rec = self.visible_record(me, req.port_id)  # type: ignore[attr-defined]
        if not rec.fc4_types:
            raise NsReject(_UNABLE, NsRejectExplanation.FC4_TYPES_NOT_REGISTERED)
        return ns.GftIdAccept(ns.Fc4Types(rec.fc4_types)).encode()

    def _gspn_id(self, me: PortRecord, req: object) -> bytes:
        rec = self.visible_record(me, req.port_id)  # type: ignore[attr-defined]
        if not rec.symbolic_port_name:
            raise NsReject(_UNABLE, NsRejectExplanation.SYMBOLIC_PORT_NAME_NOT_REGISTERED)
        return ns.GspnIdAccept(rec.symbolic_port_name).encode()

    def _gff_id(self, me: PortRecord, req: object) -> bytes:
        rec = self.visible_record(me, req.port_id)  # type: ignore[attr-defined]
        if not rec.fc4_features:
            raise NsReject(_UNABLE, NsRejectExplanation.FC4_FEATURES_NOT_REGISTERED)
        return ns.GffIdAccept(ns.Fc4Features(rec.fc4_features)).encode()

    def _gid_pn(self, me: PortRecord, req: object) -> bytes:
        rec = self.db.by_wwpn(WWN(req.port_name))  # type: ignore[attr-defined]
        if rec is None or not rec.in_name_server or not self._zoning().visible(me.wwpn, rec.wwpn):
            raise NsReject(_UNABLE, NsRejectExplanation.PORT_NAME_NOT_REGISTERED)
        return ns.GidPnAccept(rec.fcid).encode()

    def _gsnn_nn(self, me: PortRecord, req: object) -> bytes:
        wwnn = WWN(req.node_name)  # type: ignore[attr-defined]
        if not self._visible(me, self.db.with_node(wwnn)):
            raise NsReject(_UNABLE, NsRejectExplanation.NODE_NAME_NOT_REGISTERED)
        name = self.db.symbolic_node_names.get(wwnn)
        if not name:
            raise NsReject(_UNABLE, NsRejectExplanation.SYMBOLIC_NODE_NAME_NOT_REGISTERED)
        return ns.GsnnNnAccept(name).encode()

    # the list answers can hold tens of thousands of ports: encoded straight from the
    # records, without an object per entry (same bytes as the ns accept classes)
    def _gid_ft(self, me: PortRecord, req: object) -> bytes:
        return ns.encode_port_id_list([r.fcid for r in self._by_type(me, req)])

    def _gpn_ft(self, me: PortRecord, req: object) -> bytes:
        return ns.encode_name_entries([(r.fcid, r.wwpn) for r in self._by_type(me, req)])

    def _gnn_ft(self, me: PortRecord, req: object) -> bytes:
        return ns.encode_name_entries([(r.fcid, r.wwnn) for r in self._by_type(me, req)])

    def _gid_pt(self, me: PortRecord, req: object) -> bytes:
        port_type = req.port_type  # type: ignore[attr-defined]
        recs = self._visible(me, self.db.by_fcid.keys())
        if port_type != ns.PortType.NX_PORT:
            recs = [r for r in recs if r.port_type == port_type]
        recs = _in_scope(recs, req)
        if not recs:
            raise NsReject(_UNABLE, NsRejectExplanation.PORT_TYPE_NOT_REGISTERED)
        return ns.encode_port_id_list([r.fcid for r in recs])

    # -- registrations ---------------------------------------------------------------
    def _rnn_id(self, me: PortRecord, req: object) -> None:
        rec = self._own(me, req.port_id)  # type: ignore[attr-defined]
        self.db.set_node_name(rec, WWN(req.node_name))  # type: ignore[attr-defined]

    def _rsnn_nn(self, me: PortRecord, req: object) -> None:
        wwnn = WWN(req.node_name)  # type: ignore[attr-defined]
        own = [f for f in self.db.with_node(wwnn) if self.db.by_fcid[f].link_id == me.link_id]
        if not own:
            raise NsReject(_UNABLE, NsRejectExplanation.ACCESS_DENIED)
        self._own(me, own[0])
        self.db.symbolic_node_names[wwnn] = bytes(req.symbolic_name)  # type: ignore[attr-defined]

    def _rspn_id(self, me: PortRecord, req: object) -> None:
        rec = self._own(me, req.port_id)  # type: ignore[attr-defined]
        rec.symbolic_port_name = bytes(req.symbolic_name)  # type: ignore[attr-defined]

    def _rft_id(self, me: PortRecord, req: object) -> None:
        rec = self._own(me, req.port_id)  # type: ignore[attr-defined]
        self.db.set_fc4_types(rec, req.fc4_types)  # type: ignore[attr-defined]

    def _rff_id(self, me: PortRecord, req: object) -> None:
        rec = self._own(me, req.port_id)  # type: ignore[attr-defined]
        fc4_type = req.fc4_type  # type: ignore[attr-defined]
        features = dict(rec.fc4_features)
        features[fc4_type] = req.features & 0xF  # type: ignore[attr-defined]
        rec.fc4_features = features

    def _da_id(self, me: PortRecord, req: object) -> None:
        rec = self._own(me, req.port_id)  # type: ignore[attr-defined]
        self.db.deregister(rec)
