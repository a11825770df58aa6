"""FC frames over TCP: RFC 3643 encapsulation with the FCIP protocol number (RFC 3821).

Layout of one encapsulated frame (docs/wire.md, RFC 3643 section 5):

    0   01 01 FE FE          protocol 1 (FCIP), version 1, and their complements
    4   01 01 FE FE          word 1 repeats word 0 for FCIP
    8   pFlags 00 ~pFlags FF  pFlags 0x01 = FCIP Special Frame (RFC 3821 5.6.2)
    12  flags|length ~(flags|length)   length in 32-bit words of the whole frame
    16  timestamp seconds, fraction (0 allowed)
    24  CRC field (sent as 0, ignored on receipt)
    28  SOF word  s s ~s ~s
    32  FC header (24) + payload + fill to 4 bytes
    ..  FC CRC (IEEE CRC-32 of header and payload, little-endian) and EOF word e e ~e ~e

Theory of operation: `FrameDecoder.feed` takes bytes in any chunking and returns events.
A broken encapsulation header means the stream can no longer be delimited: `FramingError`
is raised and the link must be reset. A bad FC CRC or delimiter spoils only one frame: it
comes out as a `DroppedFrame` event and decoding goes on. Frames keep their raw bytes, so
a switch can forward them unchanged. Whole frames inside one received `bytes` chunk are
returned as memoryview slices of it, with no copy.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum
from typing import NamedTuple

from .errors import FrameError, FramingError
from .header import HEADER_LEN, MAX_PAYLOAD, FcHeader, FCtl, RCtl, decode_header
from .types import BytesLike as Buffer


class SOF(IntEnum):
    """Start-of-frame delimiter codes as carried in RFC 3643 / FCoE (Linux fc_encaps.h)."""

    SOFf = 0x28
    SOFi4 = 0x29
    SOFi2 = 0x2D
    SOFi3 = 0x2E
    SOFn4 = 0x31
    SOFn2 = 0x35
    SOFn3 = 0x36
    SOFc4 = 0x39


class EOF(IntEnum):
    """End-of-frame delimiter codes (Linux fc_encaps.h)."""

    EOFn = 0x41
    EOFt = 0x42
    EOFrt = 0x44
    EOFdt = 0x46
    EOFni = 0x49
    EOFdti = 0x4E
    EOFrti = 0x4F
    EOFa = 0x50


# 10b ordered sets (running disparity negative) for pcap LINKTYPE_FC_2_WITH_FRAME_DELIMS,
# FC-FS-4 table 5 / Wireshark packet-fcsof.c.
SOF_ORDERED_SET = {
    SOF.SOFf: 0xBCB55858, SOF.SOFi4: 0xBCB55959, SOF.SOFi2: 0xBCB55555, SOF.SOFi3: 0xBCB55656,
    SOF.SOFn4: 0xBCB53939, SOF.SOFn2: 0xBCB53535, SOF.SOFn3: 0xBCB53636, SOF.SOFc4: 0xBCB51919,
}
EOF_ORDERED_SET = {
    EOF.EOFn: 0xBC95D5D5, EOF.EOFt: 0xBC957575, EOF.EOFrt: 0xBC959999, EOF.EOFdt: 0xBC959595,
    EOF.EOFni: 0xBC8AD5D5, EOF.EOFdti: 0xBC8A9595, EOF.EOFrti: 0xBC8A9999, EOF.EOFa: 0xBC95F5F5,
}


def _delimiter_word(code: int) -> int:
    inv = ~code & 0xFF
    return (code << 24) | (code << 16) | (inv << 8) | inv


_SOF_BY_WORD = {_delimiter_word(s): s for s in SOF}
_EOF_BY_WORD = {_delimiter_word(e): e for e in EOF}
_SOF_WORD = {s: struct.pack(">I", _delimiter_word(s)) for s in SOF}
_EOF_WORD: dict[int, bytes] = {e: struct.pack(">I", _delimiter_word(e)) for e in EOF}
_EOF_N_WORD = _EOF_WORD[EOF.EOFn]
_EOF_T_WORD = _EOF_WORD[EOF.EOFt]

ENCAP_HEADER_LEN = 28
PROTOCOL_WORDS = 0x0101FEFE0101FEFE  # FCIP protocol 1, version 1, complements, twice
PFLAGS_SF = 0x01  # FCIP Special Frame
PFLAGS_CH = 0x80  # Changed (RFC 3821 5.6.1)
# encapsulation header + SOF + FC header + CRC + EOF, the smallest legal FC frame
MIN_FRAME_LEN = ENCAP_HEADER_LEN + 4 + HEADER_LEN + 4 + 4
MAX_FRAME_LEN = MIN_FRAME_LEN + MAX_PAYLOAD
MIN_SPECIAL_FRAME_LEN = ENCAP_HEADER_LEN  # RFC 3821's FSF is 76 bytes; accept any tail

_ENCAP = struct.Struct(">QBBBBHHIII")  # 28 bytes
_ENCAP_SOF = struct.Struct(">QBBBBHHIIII")  # 28 + SOF word
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_CRC = struct.Struct("<I")
_FILL = (b"", b"\0", b"\0\0", b"\0\0\0")


def fc_crc(data: Buffer, crc: int = 0) -> int:
    """The FC CRC (FC-FS-4 10.2): IEEE 802.3 CRC-32, as zlib computes it."""
    return zlib.crc32(data, crc)


class Frame(NamedTuple):
    """One received FC frame. `payload` excludes fill bytes; `raw` is the whole
    encapsulated frame exactly as received (for forwarding and tracing)."""

    sof: int
    eof: int
    header: FcHeader
    payload: memoryview | bytes
    raw: memoryview | bytes


class SpecialFrame(NamedTuple):
    """An FCIP Special Frame (RFC 3821 5.6.2): echo `raw` back unchanged."""

    raw: bytes


class DroppedFrame(NamedTuple):
    """A frame that was delimited correctly but is unusable; the stream goes on."""

    error: FrameError
    raw: memoryview | bytes


class FrameRun:
    """Frames of one sequence that arrived back to back in one read, decoded without a
    header object per frame (`FrameDecoder(runs=True)`): solicited data (R_CTL 01), the
    first frame whole, every later one SOFn3/EOFn with no fill bytes and the first frame's
    header but for SEQ_CNT (one more each) and, when F_CTL sets relative offset, the
    parameter (the previous frame's plus its payload). Every frame was delimited and
    CRC-checked like any other; `frames()` gives them as `Frame`s for code that wants one
    at a time."""

    __slots__ = ("first", "payloads", "_view", "_start", "_end")

    def __init__(self, first: Frame, view: memoryview, end: int) -> None:
        self.first = first
        self.payloads: list[memoryview | bytes] = [first.payload]  # every frame's, in order
        self._view = view  # the read the frames came in
        self._start = end - len(first.raw)
        self._end = end  # where the last frame ends in `_view`

    @property
    def header(self) -> FcHeader:
        """The first frame's header (S_ID, D_ID, OX_ID, R_CTL and TYPE hold for all)."""
        return self.first.header

    @property
    def raw(self) -> memoryview:
        """The encapsulated frames, back to back, exactly as received."""
        return self._view[self._start:self._end]

    def __len__(self) -> int:
        return len(self.payloads)

    def __repr__(self) -> str:
        h = self.first.header
        return (f"<FrameRun {len(self.payloads)} frames s_id={h.s_id:06x} d_id={h.d_id:06x} "
                f"ox_id={h.ox_id:#06x}>")

    def frames(self) -> list[Frame]:
        """The run as one `Frame` per frame."""
        first = self.first
        h = first.header
        out = [first]
        view = self._view
        end = self._start + len(first.raw)
        rel = h.f_ctl & _F_CTL_REL_OFF
        param = h.parameter
        payloads = self.payloads
        for k in range(1, len(payloads)):
            if rel:
                param += len(payloads[k - 1])
            start, end = end, end + MIN_FRAME_LEN + len(payloads[k])  # (no fill bytes)
            out.append(Frame(_SOF_N3, _EOF_N, h._replace(seq_cnt=(h.seq_cnt + k) & 0xFFFF,
                                                          parameter=param & 0xFFFFFFFF),
                             payloads[k], view[start:end]))
        return out


def each_frame(items: list[Frame | FrameRun]) -> list[Frame]:
    """Frames and runs of frames as plain frames, in order."""
    out: list[Frame] = []
    for item in items:
        if type(item) is FrameRun:
            out.extend(item.frames())
        else:
            out.append(item)  # type: ignore[arg-type]
    return out


def frame_count(items: list[Frame | FrameRun]) -> int:
    """How many frames `items` hold (a run counts each of its frames)."""
    n = len(items)
    for item in items:
        if type(item) is FrameRun:
            n += len(item.payloads) - 1
    return n


Event = Frame | FrameRun | SpecialFrame | DroppedFrame

_prefix_cache: dict[int, bytes] = {}


def _prefix(words: int, sof: int) -> bytes:
    """Encapsulation header (timestamp 0) + SOF word, cached per (length, SOF)."""
    key = (words << 8) | sof
    p = _prefix_cache.get(key)
    if p is None:
        p = _ENCAP_SOF.pack(PROTOCOL_WORDS, 0, 0, 0xFF, 0xFF, words, ~words & 0xFFFF, 0, 0, 0,
                            _delimiter_word(sof))
        _prefix_cache[key] = p
    return p


_HEADER_PACK = struct.Struct(">IIIIHHI").pack
_crc32 = zlib.crc32
# plain ints: an enum member costs an attribute lookup through its class on every use
_SOF_N3 = int(SOF.SOFn3)
_EOF_N = int(EOF.EOFn)
_F_CTL_REL_OFF = int(FCtl.RELATIVE_OFFSET)
_F_CTL_END_SEQ = int(FCtl.END_SEQUENCE)
_R_CTL_SOLICITED_DATA = int(RCtl.SOLICITED_DATA)
_crc_pack = _CRC.pack


def encode_frame(header: FcHeader, payload: Buffer = b"", sof: int = SOF.SOFi3,
                 eof: int = EOF.EOFt, timestamp: tuple[int, int] | None = None) -> bytes:
    """One encapsulated frame. The payload is padded to 4 bytes and F_CTL's fill-byte
    count set to match. `timestamp` is (seconds, fraction) in NTP form, or None for 0."""
    r_ctl, d_id, cs_ctl, s_id, type_, f_ctl, seq_id, df_ctl, seq_cnt, ox, rx, param = header
    return encode_frame_of(r_ctl, d_id, s_id, type_, f_ctl, seq_id, seq_cnt, ox, rx, param,
                           payload, sof, eof, cs_ctl=cs_ctl, df_ctl=df_ctl, timestamp=timestamp)


def encode_frame_of(r_ctl: int, d_id: int, s_id: int, type_: int, f_ctl: int, seq_id: int,
                    seq_cnt: int, ox_id: int, rx_id: int, param: int, payload: Buffer = b"",
                    sof: int = SOF.SOFi3, eof: int = EOF.EOFt, *, cs_ctl: int = 0,
                    df_ctl: int = 0, timestamp: tuple[int, int] | None = None) -> bytes:
    """One encapsulated frame from its header's fields, without a header object (the data
    path's single frames: FCP_RSP, FCP_XFER_RDY); `encode_frame` for a header."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"FC payload of {n} bytes exceeds {MAX_PAYLOAD}")
    fill = -n & 3
    hdr = _HEADER_PACK((r_ctl << 24) | d_id, (cs_ctl << 24) | s_id,
                       (type_ << 24) | (f_ctl & 0xFFFFFC) | fill,
                       (seq_id << 24) | (df_ctl << 16) | seq_cnt, ox_id, rx_id, param)
    crc = _crc32(payload, _crc32(hdr))
    words = (MIN_FRAME_LEN + n + fill) >> 2
    if timestamp is None:
        prefix = _prefix(words, sof)
    else:
        prefix = _ENCAP_SOF.pack(PROTOCOL_WORDS, 0, 0, 0xFF, 0xFF, words, ~words & 0xFFFF,
                                 timestamp[0], timestamp[1], 0, _delimiter_word(sof))
    if fill:
        return b"".join((prefix, hdr, payload, _FILL[fill], _crc_pack(_crc32(_FILL[fill], crc)),
                         _EOF_WORD[eof]))
    return b"".join((prefix, hdr, payload, _crc_pack(crc), _EOF_WORD[eof]))


def encode_sequence(r_ctl: int, d_id: int, s_id: int, type_: int, f_ctl: int, seq_id: int,
                    ox_id: int, rx_id: int, data: Buffer, size: int, offset: int = 0,
                    last_f_ctl: int | None = None, first_sof: int = SOF.SOFi3,
                    trailer: Buffer | None = None) -> bytes:
    """One sequence of frames carrying `data` cut into pieces of at most `size` bytes
    (a multiple of 4 but for the last), back to back: SEQ_CNT counting from 0, PARAMETER
    the relative offset (`offset` plus the piece's place), SOFi3 (or `first_sof`) then
    SOFn3, EOFn then EOFt; the last frame gets `last_f_ctl` (default: `f_ctl`). The data
    path's builder: one join for the whole sequence, no header objects (FCP_DATA).
    `trailer`, encoded frames that follow the sequence (an FCP_RSP), goes into the same
    join."""
    mv = memoryview(data)
    n = len(mv)
    if last_f_ctl is None:
        last_f_ctl = f_ctl
    w0 = (r_ctl << 24) | d_id
    w1 = s_id  # CS_CTL 0
    tf = type_ << 24
    sq = seq_id << 24
    pack = _HEADER_PACK
    crc32 = _crc32
    crc_pack = _crc_pack
    parts: list[Buffer] = []
    extend = parts.extend
    # every frame but the last carries `size` bytes (a multiple of 4: no fill): their
    # prefix, F_CTL and EOF are the same for all of them
    mid_f_ctl = tf | (f_ctl & 0xFFFFFC)
    full = (MIN_FRAME_LEN + size) >> 2
    prefix_n = _prefix(full, _SOF_N3)
    prefix = _prefix(full, first_sof)  # the first frame's
    eof_n = _EOF_N_WORD
    cnt = 0
    pos = 0
    last_pos = n - size
    while pos < last_pos:
        chunk = mv[pos:pos + size]
        hdr = pack(w0, w1, mid_f_ctl, sq | cnt, ox_id, rx_id, offset + pos)
        extend((prefix, hdr, chunk, crc_pack(crc32(chunk, crc32(hdr))), eof_n))
        prefix = prefix_n
        pos += size
        cnt += 1
    # the last frame (the only one when the data fit in one): its own length and fill
    chunk = mv[pos:]
    ln = n - pos
    fill = -ln & 3
    hdr = pack(w0, w1, tf | (last_f_ctl & 0xFFFFFC) | fill, sq | cnt, ox_id, rx_id,
               offset + pos)
    crc = crc32(chunk, crc32(hdr))
    sof = first_sof if cnt == 0 else _SOF_N3
    if fill:
        crc = crc32(_FILL[fill], crc)
        extend((_prefix((MIN_FRAME_LEN + ln + fill) >> 2, sof), hdr, chunk, _FILL[fill],
                crc_pack(crc), _EOF_T_WORD))
    else:
        extend((_prefix((MIN_FRAME_LEN + ln) >> 2, sof), hdr, chunk, crc_pack(crc),
                _EOF_T_WORD))
    if trailer is not None:
        parts.append(trailer)
    return b"".join(parts)


def encapsulate(sof: int, body: Buffer, crc: Buffer, eof: int) -> bytes:
    """An encapsulated frame from its parts as another transport carried them (FCoE): the
    FC header with payload and fill (`body`, a whole number of words), and the four CRC
    bytes as received (not recomputed)."""
    return b"".join((_prefix((MIN_FRAME_LEN + len(body) - HEADER_LEN) >> 2, sof), body, crc,
                     _EOF_WORD[eof]))


def frame_of(raw: Buffer) -> Frame:
    """A `Frame` for one encapsulated frame fcsoft built itself (an in-process port's):
    delimiters and header read, the CRC not checked."""
    mv = memoryview(raw)
    n = len(mv)
    header = decode_header(mv, 32)
    return Frame(mv[28], mv[n - 4], header, mv[32 + HEADER_LEN:n - 8 - (header.f_ctl & 3)], mv)


def crc_ok(raw: Buffer) -> bool:
    """True when an encapsulated frame's FC CRC matches its header and payload."""
    mv = memoryview(raw)
    n = len(mv)
    return bool(_crc32(mv[32:n - 8]) == _CRC.unpack_from(mv, n - 8)[0])


def split_frames(raw: Buffer) -> list[memoryview]:
    """The encapsulated frames laid back to back in `raw` (which fcsoft built itself:
    lengths are trusted, not checked)."""
    mv = memoryview(raw)
    out = []
    off, end = 0, len(mv)
    while off < end:
        n = (_U16.unpack_from(mv, off + 12)[0] & 0x3FF) << 2
        out.append(mv[off:off + n])
        off += n
    return out


def encode_special_frame(body: bytes, pflags: int = PFLAGS_SF) -> bytes:
    """An FCIP Special Frame carrying `body` after the 28-byte header (used by tests and
    by peers that want to open with one; fcsoft only echoes them)."""
    total = ENCAP_HEADER_LEN + len(body) + (-len(body) & 3)
    words = total >> 2
    return _ENCAP.pack(PROTOCOL_WORDS, pflags, 0, ~pflags & 0xFF, 0xFF, words, ~words & 0xFFFF,
                       0, 0, 0) + body + _FILL[-len(body) & 3]


def trace_record(frame_raw: Buffer) -> bytes:
    """The LINKTYPE_FC_2_WITH_FRAME_DELIMS (225) record for one encapsulated FC frame:
    SOF ordered set, header, payload, CRC, EOF ordered set."""
    mv = memoryview(frame_raw)
    sof = _SOF_BY_WORD.get(_U32.unpack_from(mv, ENCAP_HEADER_LEN)[0])
    eof = _EOF_BY_WORD.get(_U32.unpack_from(mv, len(mv) - 4)[0])
    sof_os = SOF_ORDERED_SET.get(sof, SOF_ORDERED_SET[SOF.SOFi3]) if sof else 0
    eof_os = EOF_ORDERED_SET.get(eof, EOF_ORDERED_SET[EOF.EOFt]) if eof else 0
    return b"".join((_U32.pack(sof_os), mv[ENCAP_HEADER_LEN + 4:len(mv) - 4], _U32.pack(eof_os)))


# protocol words, pFlags word, flags/length and its complement, SOF word, then the FC
# header's seven words (R_CTL|D_ID, CS_CTL|S_ID, TYPE|F_CTL, SEQ_ID|DF_CTL|SEQ_CNT, OX_ID,
# RX_ID, PARAMETER): all of an ordinary frame's fixed fields in one unpack
_FAST_HEAD = struct.Struct(">QIHH12xIIIIIHHI").unpack_from
_FAST_TAIL = struct.Struct("<II").unpack_from  # FC CRC (little-endian) and the EOF word
# the EOF word read little-endian, to get it from the same unpack as the CRC
_EOF_BY_WORD_LE = {int.from_bytes(w.to_bytes(4, "big"), "little"): e
                   for w, e in _EOF_BY_WORD.items()}
_new = tuple.__new__
# the delimiter words a continuation frame of a run must carry (FrameRun), as the fast
# path reads them
_SOF_N3_WORD = _delimiter_word(SOF.SOFn3)
_EOF_N_LE = int.from_bytes(_EOF_N_WORD, "little")


class FrameDecoder:
    """Incremental decoder for one link's byte stream. Feed bytes; get events back.

    After a `FramingError` the decoder is dead and raises it again on every feed: the
    byte stream cannot be trusted past a broken header.
    """

    __slots__ = ("_buf", "_dead", "frames_seen", "max_payload", "only_frames", "runs")

    def __init__(self, max_payload: int = MAX_PAYLOAD, *, runs: bool = False) -> None:
        self._buf = bytearray()
        self._dead: FramingError | None = None
        self.frames_seen = 0  # frames delimited so far (special frames included)
        self.max_payload = max_payload
        #: the last feed's events are all ordinary frames (Frame or FrameRun), none dropped
        #: or special
        self.only_frames = True
        #: solicited data frames of one sequence, back to back in one read, come out as
        #: one FrameRun (for a consumer that takes them: the fabric, the data path)
        self.runs = runs

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back (for the partial-frame timer)."""
        return len(self._buf)

    def feed(self, data: Buffer) -> list[Event]:
        """Decode what `data` completes; keep any partial frame for the next call."""
        if self._dead is not None:
            raise self._dead
        if not data:
            return []
        view: memoryview = memoryview(data if isinstance(data, bytes) else bytes(data))
        events: list[Event] = []
        append = events.append
        if self._buf:
            # finish the frame held back from the last call with just the bytes it lacks,
            # then go on with the rest of `data` without copying it
            used = self._complete_partial(view, events)
            if used is None:
                self.only_frames = False  # (an event, if any, came the checked way)
                return events
            view = view[used:]
        end = len(view)
        off = 0
        maxlen = MIN_FRAME_LEN + self.max_payload + 3
        fast = 0  # frames the fast path took (all events came from it: only_frames)
        head, tail, crc32, new = _FAST_HEAD, _FAST_TAIL, _crc32, _new
        sofs, eofs = _SOF_BY_WORD, _EOF_BY_WORD_LE
        runs = self.runs
        # the open run (runs=True): header words the next frame must carry to join it
        # (ra == -1: none open); run is its FrameRun once a second frame joined
        ra = rb = rc = rd = rox = rrx = rp = -1
        rel = False
        run: FrameRun | None = None
        sof_n3, eof_n = _SOF_N3_WORD, _EOF_N_LE
        joined = 0
        try:
            while end - off >= ENCAP_HEADER_LEN:
                # Fast path: an ordinary FC frame (pFlags 0, sane length, good delimiters
                # and CRC) decoded with three unpacks; anything else takes the checked path
                # below, which produces the same events and errors.
                if end - off >= 56:
                    proto, pfw, flen, nflen, sofw, a, b, c, d, ox, rx, p = head(view, off)
                    length = (flen & 0x3FF) << 2
                    if proto == PROTOCOL_WORDS and pfw == 0x0000FFFF and \
                            flen ^ nflen == 0xFFFF and MIN_FRAME_LEN <= length <= maxlen:
                        stop = off + length
                        if stop > end:
                            break
                        if a == ra and d == rd and p == rp and b == rb and c == rc and \
                                ox == rox and rx == rrx and sofw == sof_n3:
                            # the next frame of the open run: checked, but no header object
                            want, eofw = tail(view, stop - 8)
                            if eofw == eof_n and crc32(view[off + 32:stop - 8]) == want:
                                if run is None:
                                    run = FrameRun(events[-1], view, off)  # type: ignore[arg-type]
                                    events[-1] = run
                                    join = run.payloads.append
                                join(view[off + 56:stop - 8])
                                run._end = stop
                                joined += 1
                                rd = (d & 0xFFFF0000) | ((d + 1) & 0xFFFF)
                                if rel:
                                    rp = (p + length - 64) & 0xFFFFFFFF  # 64: MIN_FRAME_LEN
                                off = stop
                                continue
                        ra = -1  # whatever this frame is, the open run ends before it
                        run = None
                        sof = sofs.get(sofw)
                        want, eofw = tail(view, stop - 8)
                        eof = eofs.get(eofw)
                        body = view[off + 32:stop - 8]
                        if sof is not None and eof is not None and crc32(body) == want:
                            fill = c & 3
                            if fill <= length - MIN_FRAME_LEN:
                                fast += 1
                                self.frames_seen += 1
                                append(new(Frame, (sof, eof, new(FcHeader, (
                                    a >> 24, a & 0xFFFFFF, b >> 24, b & 0xFFFFFF, c >> 24,
                                    c & 0xFFFFFF, d >> 24, (d >> 16) & 0xFF, d & 0xFFFF, ox, rx,
                                    p)), body[HEADER_LEN:length - 40 - fill],
                                    view[off:stop])))
                                off = stop
                                if runs and a >> 24 == _R_CTL_SOLICITED_DATA and not fill and \
                                        eof == _EOF_N and not c & _F_CTL_END_SEQ:
                                    # solicited data that the sequence goes on after: the
                                    # next frames may join it as a run
                                    ra, rb, rc, rox, rrx = a, b, c, ox, rx
                                    rd = (d & 0xFFFF0000) | ((d + 1) & 0xFFFF)
                                    rel = bool(c & _F_CTL_REL_OFF)
                                    rp = (p + length - MIN_FRAME_LEN) & 0xFFFFFFFF if rel else p
                                continue
                        append(self._frame(view[off:stop]))
                        off = stop
                        continue
                ra = -1
                run = None
                length = self._check_header(view, off)
                if end - off < length:
                    break
                append(self._frame(view[off:off + length]))
                off += length
        except FramingError as exc:
            self._dead = exc
            self.frames_seen += joined
            raise
        self.frames_seen += joined
        self.only_frames = fast == len(events)
        if off < end:
            self._buf += view[off:]
        return events

    def _complete_partial(self, view: memoryview, events: list[Event]) -> int | None:
        """Extend the held-back partial frame from `view`; returns how many bytes of `view`
        it took once the frame is complete (the frame is appended to `events`), or None when
        all of `view` went into it and it is still incomplete."""
        buf = self._buf
        used = 0
        if len(buf) < ENCAP_HEADER_LEN:
            used = min(ENCAP_HEADER_LEN - len(buf), len(view))
            buf += view[:used]
            if len(buf) < ENCAP_HEADER_LEN:
                return None
        try:
            length = self._check_header(memoryview(buf), 0)
        except FramingError as exc:
            self._dead = exc
            raise
        missing = length - len(buf)
        if len(view) - used < missing:
            buf += view[used:]
            return None
        buf += view[used:used + missing]
        events.append(self._frame(memoryview(bytes(buf))))
        buf.clear()
        return used + missing

    def _check_header(self, view: memoryview, off: int) -> int:
        proto, pflags, rsvd, npflags, rsvd2, flen, nflen, _s, _f, _c = _ENCAP.unpack_from(view, off)
        if proto != PROTOCOL_WORDS:
            raise FramingError("encapsulation header",
                               f"protocol words {bytes(view[off:off + 8]).hex()} are not FCIP "
                               "01 01 fe fe 01 01 fe fe")
        if rsvd != 0 or rsvd2 != 0xFF or npflags != (~pflags & 0xFF):
            raise FramingError("encapsulation header",
                               f"pFlags word {bytes(view[off + 8:off + 12]).hex()} is not "
                               "pFlags 00 ~pFlags ff")
        if nflen != (~flen & 0xFFFF):
            raise FramingError("encapsulation header",
                               f"flags/length {flen:#06x} and its complement {nflen:#06x} differ")
        length: int = (flen & 0x3FF) * 4
        if pflags & PFLAGS_SF:
            if length < MIN_SPECIAL_FRAME_LEN:
                raise FramingError("encapsulation header",
                                   f"special frame length {length} below {MIN_SPECIAL_FRAME_LEN}")
        elif length < MIN_FRAME_LEN or length > MIN_FRAME_LEN + self.max_payload + 3:
            raise FramingError("encapsulation header",
                               f"frame length {length} outside {MIN_FRAME_LEN}.."
                               f"{MIN_FRAME_LEN + self.max_payload}")
        return length

    def _frame(self, raw: memoryview) -> Event:
        self.frames_seen += 1
        if raw[8] & PFLAGS_SF:
            if self.frames_seen != 1:
                return DroppedFrame(FrameError("special frame", "only allowed as the first frame"),
                                    raw)
            return SpecialFrame(bytes(raw))
        n = len(raw)
        sof = _SOF_BY_WORD.get(_U32.unpack_from(raw, ENCAP_HEADER_LEN)[0])
        if sof is None:
            return DroppedFrame(FrameError("SOF", f"bad delimiter word "
                                           f"{bytes(raw[28:32]).hex()}"), raw)
        eof = _EOF_BY_WORD.get(_U32.unpack_from(raw, n - 4)[0])
        if eof is None:
            return DroppedFrame(FrameError("EOF", f"bad delimiter word "
                                           f"{bytes(raw[n - 4:]).hex()}"), raw)
        body = raw[32:n - 8]
        (want,) = _CRC.unpack_from(raw, n - 8)
        got = zlib.crc32(body)
        if got != want:
            return DroppedFrame(FrameError("FC CRC", f"computed {got:08x}, frame has {want:08x}"),
                                raw)
        header = decode_header(body)
        fill = header.f_ctl & 3
        if fill > len(body) - HEADER_LEN:
            return DroppedFrame(FrameError("F_CTL", f"{fill} fill bytes but payload is "
                                           f"{len(body) - HEADER_LEN} bytes"), raw)
        return Frame(sof, eof, header, body[HEADER_LEN:len(body) - fill], raw)
