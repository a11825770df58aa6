"""RFC 3643 encapsulation, FC CRC, SOF/EOF, and the incremental decoder."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcsoft.wire.encap import (
    EOF,
    SOF,
    DroppedFrame,
    Frame,
    FrameDecoder,
    SpecialFrame,
    encode_frame,
    encode_special_frame,
    trace_record,
)
from fcsoft.wire.errors import DecodeError, FramingError
from fcsoft.wire.header import FCtl, FcHeader, RCtl, decode_header, make_header

# A FLOGI request frame as an N_Port sends it, laid out by hand from RFC 3643 section 5
# (encapsulation header: protocol 1 (FCIP, RFC 3821 5.6.1), version 1, complements, word 1
# = word 0 for FCIP; pFlags 0; length 0x2D words = 180 bytes), FC-FS-4 9 (header:
# R_CTL 22 ELS request, D_ID FFFFFE, S_ID 000000, TYPE 01, F_CTL 290000, OX_ID 0001,
# RX_ID FFFF), FC-LS-3 4.2.7 (FLOGI payload: command 04, then 112 bytes of service
# parameters, here all zero except the word naming the command), SOFi3 2E / EOFt 42
# (Linux fc_encaps.h). The CRC (little-endian IEEE CRC-32 over header+payload, as
# docs/wire.md states) was checked independently: tshark's fcsof dissector reports
# fc.crc.status == 1 (good) for this frame written as link type 225.
FLOGI_PAYLOAD = bytes([0x04, 0, 0, 0]) + bytes(112)
FLOGI_FRAME = bytes.fromhex(
    "0101fefe0101fefe"  # protocol words
    "0000ffff"  # pFlags 0, reserved 0, ~pFlags, reserved FF
    "002dffd2"  # length 45 words and complement
    "0000000000000000"  # timestamp
    "00000000"  # CRC field (unused)
    "2e2ed1d1"  # SOFi3
    "22fffffe000000000129000000000000" "0001ffff00000000"  # FC header
) + FLOGI_PAYLOAD + bytes.fromhex("6e11b935" "4242bdbd")

FLOGI_HEADER = make_header(RCtl.ELS_REQUEST, 0xFFFFFE, 0, 1, 0x290000, ox_id=1)


def test_flogi_vector_crc_matches_zlib():
    body = FLOGI_FRAME[32:-8]
    assert struct.unpack("<I", FLOGI_FRAME[-8:-4])[0] == zlib.crc32(body)


def test_encode_flogi_matches_vector():
    assert encode_frame(FLOGI_HEADER, FLOGI_PAYLOAD, SOF.SOFi3, EOF.EOFt) == FLOGI_FRAME


def test_decode_flogi_vector_whole():
    (frame,) = FrameDecoder().feed(FLOGI_FRAME)
    assert isinstance(frame, Frame)
    assert frame.sof == SOF.SOFi3 and frame.eof == EOF.EOFt
    assert frame.header == FLOGI_HEADER
    assert bytes(frame.payload) == FLOGI_PAYLOAD
    assert bytes(frame.raw) == FLOGI_FRAME


def test_decode_byte_by_byte():
    dec = FrameDecoder()
    events = []
    for i in range(len(FLOGI_FRAME)):
        events += dec.feed(FLOGI_FRAME[i:i + 1])
        if i < len(FLOGI_FRAME) - 1:
            assert dec.pending == i + 1
    assert len(events) == 1 and events[0].header == FLOGI_HEADER
    assert dec.pending == 0


def test_many_frames_in_one_chunk_and_trailing_partial():
    dec = FrameDecoder()
    events = dec.feed(FLOGI_FRAME * 5 + FLOGI_FRAME[:40])
    assert len(events) == 5
    assert dec.pending == 40
    events = dec.feed(FLOGI_FRAME[40:] + FLOGI_FRAME[:3])
    assert len(events) == 1 and dec.pending == 3


def test_header_roundtrip_and_reply():
    h = make_header(RCtl.UNSOLICITED_COMMAND, 0x010203, 0x0A0B0C, 8, 0x290000,
                    ox_id=0x1234, rx_id=0xFFFF, seq_id=7, seq_cnt=300, parameter=0xDEADBEEF)
    assert decode_header(h.encode()) == h
    r = h.reply(RCtl.COMMAND_STATUS, rx_id=0x55)
    assert (r.d_id, r.s_id, r.ox_id, r.rx_id) == (0x0A0B0C, 0x010203, 0x1234, 0x55)
    assert r.f_ctl & FCtl.EXCHANGE_CONTEXT and r.from_responder


def test_decode_header_short():
    with pytest.raises(DecodeError, match="FC header"):
        decode_header(b"\0" * 23)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5, 2111, 2112])
def test_fill_bytes(n):
    payload = bytes(range(256)) * 9
    payload = payload[:n]
    data = encode_frame(make_header(RCtl.SOLICITED_DATA, 1, 2, 8), payload)
    assert len(data) % 4 == 0
    (frame,) = FrameDecoder().feed(data)
    assert frame.header.fill_bytes == (-n & 3)
    assert bytes(frame.payload) == payload


def test_payload_too_big():
    with pytest.raises(ValueError):
        encode_frame(FLOGI_HEADER, bytes(2113))


def _corrupt(data: bytes, offset: int, value: int) -> bytes:
    b = bytearray(data)
    b[offset] = value
    return bytes(b)


@pytest.mark.parametrize("offset,value,what", [
    (0, 0x02, "protocol words"),  # protocol number 2 (iFCP) is not FCIP
    (5, 0x02, "protocol words"),  # word 1 differs from word 0
    (9, 0x01, "pFlags"),  # reserved byte not zero
    (10, 0x00, "pFlags"),  # ~pFlags wrong
    (11, 0x00, "pFlags"),  # reserved byte not FF
    (15, 0x00, "complement"),  # length complement wrong
])
def test_bad_encapsulation_header_is_fatal(offset, value, what):
    dec = FrameDecoder()
    with pytest.raises(FramingError, match=what):
        dec.feed(_corrupt(FLOGI_FRAME, offset, value))
    # the decoder stays dead: the stream cannot be trusted any more
    with pytest.raises(FramingError):
        dec.feed(FLOGI_FRAME)


@pytest.mark.parametrize("words", [0, 15, 545, 0x3FF])
def test_bad_length_is_fatal(words):
    data = bytearray(FLOGI_FRAME)
    struct.pack_into(">HH", data, 12, words, ~words & 0xFFFF)
    with pytest.raises(FramingError, match="length"):
        FrameDecoder().feed(bytes(data))


def test_bad_crc_drops_only_that_frame():
    bad = _corrupt(FLOGI_FRAME, 60, 0x99)  # a payload byte
    events = FrameDecoder().feed(bad + FLOGI_FRAME)
    assert isinstance(events[0], DroppedFrame) and events[0].error.what == "FC CRC"
    assert isinstance(events[1], Frame)


@pytest.mark.parametrize("offset,what", [(28, "SOF"), (30, "SOF"), (len(FLOGI_FRAME) - 4, "EOF"),
                                         (len(FLOGI_FRAME) - 1, "EOF")])
def test_bad_delimiter_drops_only_that_frame(offset, what):
    bad = _corrupt(FLOGI_FRAME, offset, 0x77)
    events = FrameDecoder().feed(bad + FLOGI_FRAME)
    assert isinstance(events[0], DroppedFrame) and events[0].error.what == what
    assert isinstance(events[1], Frame)


def test_fill_count_larger_than_payload_dropped():
    h = make_header(RCtl.SOLICITED_DATA, 1, 2, 8, 0x290003)
    # build by hand: encode_frame would correct the fill count
    raw = bytearray(encode_frame(h, b""))
    raw[32 + 11] = 0x03  # F_CTL low byte: 3 fill bytes, but the payload is empty
    struct.pack_into("<I", raw, len(raw) - 8, zlib.crc32(bytes(raw[32:-8])))
    (ev,) = FrameDecoder().feed(bytes(raw))
    assert isinstance(ev, DroppedFrame) and ev.error.what == "F_CTL"


def test_special_frame_first_then_frames():
    sf = encode_special_frame(bytes(48))  # RFC 3821 5.6.2: FSF body is 48 bytes
    assert len(sf) == 76
    events = FrameDecoder().feed(sf + FLOGI_FRAME)
    assert isinstance(events[0], SpecialFrame) and events[0].raw == sf
    assert isinstance(events[1], Frame)


def test_special_frame_later_is_dropped():
    sf = encode_special_frame(bytes(48))
    dec = FrameDecoder()
    events = dec.feed(FLOGI_FRAME + FLOGI_FRAME + sf + FLOGI_FRAME)
    assert isinstance(events[2], DroppedFrame)
    assert [type(e) for e in events] == [Frame, Frame, DroppedFrame, Frame]
    assert dec.frames_seen == 4


def test_trace_record_layout():
    rec = trace_record(FLOGI_FRAME)
    assert rec[:4] == bytes.fromhex("bcb55656")  # SOFi3 ordered set
    assert rec[-4:] == bytes.fromhex("bc957575")  # EOFt ordered set
    assert rec[4:-4] == FLOGI_FRAME[32:-4]  # header, payload, CRC


def test_timestamp_is_carried():
    data = encode_frame(FLOGI_HEADER, FLOGI_PAYLOAD, timestamp=(0xE0000000, 0x80000000))
    assert data[16:24] == bytes.fromhex("e000000080000000")
    assert FrameDecoder().feed(data)[0].header == FLOGI_HEADER


def test_header_roundtrip_all_frame_kinds():
    # the header is carried verbatim, apart from the fill-byte count the encoder owns
    h = FcHeader(0x81, 0xABCDEF, 0x12, 0x345678, 0x00, 0x910000, 0xFE, 0x40, 0xFFFF,
                 0x8001, 0x7FFF, 0x00000001)
    (frame,) = FrameDecoder().feed(encode_frame(h, b"", SOF.SOFn3, EOF.EOFn))
    assert frame.header == h
    assert (frame.sof, frame.eof) == (SOF.SOFn3, EOF.EOFn)


headers = st.builds(
    FcHeader, st.integers(0, 255), st.integers(0, 0xFFFFFF), st.integers(0, 255),
    st.integers(0, 0xFFFFFF), st.integers(0, 255), st.integers(0, 0xFFFFFF).map(lambda f: f & ~3),
    st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))


@given(st.lists(st.tuples(headers, st.binary(max_size=300)), min_size=1, max_size=6),
       st.lists(st.integers(1, 200), max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_chunking_gives_the_same_frames(frames, cuts):
    stream = b"".join(encode_frame(h, p) for h, p in frames)
    dec = FrameDecoder()
    got = []
    pos = 0
    for c in cuts:
        got += dec.feed(stream[pos:pos + c])
        pos += c
    got += dec.feed(stream[pos:])
    assert [(f.header, bytes(f.payload)) for f in got] == \
        [(h._replace(f_ctl=h.f_ctl | (-len(p) & 3)), p) for h, p in frames]


@given(st.binary(max_size=600))
@settings(max_examples=500, deadline=None)
def test_random_bytes_raise_only_decode_errors(data):
    dec = FrameDecoder()
    try:
        for ev in dec.feed(data):
            assert isinstance(ev, (Frame, SpecialFrame, DroppedFrame))
    except DecodeError:
        pass


@given(st.binary(min_size=1, max_size=200), st.integers(32, 500))
@settings(max_examples=300, deadline=None)
def test_random_corruption_of_valid_stream(noise, pos):
    # splice noise into a valid stream: only DecodeError may come out
    stream = FLOGI_FRAME * 4
    pos %= len(stream)
    data = stream[:pos] + noise + stream[pos:]
    try:
        FrameDecoder().feed(data)
    except DecodeError:
        pass


def test_only_frames_says_whether_a_feed_gave_ordinary_frames_alone():
    """Link hands a feed's events to the fabric as one run when the decoder says they are
    all ordinary frames; a dropped or special frame anywhere, or a frame completed from a
    partial one, makes it go event by event."""
    dec = FrameDecoder()
    dec.feed(FLOGI_FRAME + FLOGI_FRAME)
    assert dec.only_frames
    bad = bytearray(FLOGI_FRAME)
    bad[-9] ^= 0xFF  # CRC
    events = dec.feed(FLOGI_FRAME + bytes(bad) + FLOGI_FRAME)
    assert [type(e) for e in events] == [Frame, DroppedFrame, Frame] and not dec.only_frames
    dec.feed(FLOGI_FRAME + FLOGI_FRAME[:10])
    assert dec.only_frames
    events = dec.feed(FLOGI_FRAME[10:] + FLOGI_FRAME)
    assert [type(e) for e in events] == [Frame, Frame] and not dec.only_frames
    assert isinstance(FrameDecoder().feed(encode_special_frame(bytes(48)) + FLOGI_FRAME)[0],
                      SpecialFrame)
    dec2 = FrameDecoder()
    dec2.feed(encode_special_frame(bytes(48)) + FLOGI_FRAME)
    assert not dec2.only_frames
