"""FrameDecoder(runs=True): a sequence's data frames that arrive together come out as one
FrameRun, and that must never change what was received. Held to the plain decoder: the
same stream in the same chunks gives the same frames, drops and errors, frame for frame,
whatever is corrupted, interleaved or cut."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcsoft.wire.encap import (
    EOF,
    SOF,
    DroppedFrame,
    Frame,
    FrameDecoder,
    FrameRun,
    each_frame,
    encode_frame,
    encode_sequence,
    frame_count,
)
from fcsoft.wire.errors import FramingError
from fcsoft.wire.header import FcHeader, FCtl

REL = int(FCtl.RELATIVE_OFFSET)
LAST = int(FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE) | REL


def write_data(ox: int, data: bytes, *, seq_id: int = 1, size: int = 2048, offset: int = 0,
               f_ctl: int = REL, last: int = LAST) -> bytes:
    """An initiator's FCP_DATA sequence (R_CTL 01) to 010200 from 010100."""
    return encode_sequence(0x01, 0x010200, 0x010100, 0x08, f_ctl, seq_id, ox, 0x100, data,
                           size, offset, last)


def key(ev: object) -> tuple[object, ...]:
    if isinstance(ev, Frame):
        return ("frame", ev.sof, ev.eof, ev.header, bytes(ev.payload), bytes(ev.raw))
    if isinstance(ev, DroppedFrame):
        return ("dropped", str(ev.error), bytes(ev.raw))
    return (type(ev).__name__, bytes(ev.raw))  # type: ignore[attr-defined]


def decode(stream: bytes, cuts: list[int], runs: bool) -> tuple[list[object], FrameDecoder,
                                                                 str | None]:
    dec = FrameDecoder(runs=runs)
    events: list[object] = []
    pos = 0
    error = None
    try:
        for c in [*cuts, len(stream)]:
            events += dec.feed(stream[pos:pos + c])
            pos += c
            if pos >= len(stream):
                break
    except FramingError as exc:
        error = str(exc)
    return events, dec, error


def test_a_write_burst_in_one_read_is_one_run_and_its_last_frame():
    data = bytes(range(256)) * 512  # 128 KiB: 64 frames of 2 KiB
    stream = write_data(0x1234, data)
    dec = FrameDecoder(runs=True)
    run, last = dec.feed(stream)
    assert isinstance(run, FrameRun) and isinstance(last, Frame)
    assert len(run) == 63 and frame_count([run, last]) == 64 == dec.frames_seen
    assert dec.only_frames
    assert run.header.ox_id == 0x1234 and run.header.seq_cnt == 0 and run.header.parameter == 0
    assert run.first.sof == SOF.SOFi3
    assert bytes(run.raw) == stream[:len(stream) - len(last.raw)]
    assert b"".join(run.payloads) + bytes(last.payload) == data
    frames = run.frames()
    assert [f.header.seq_cnt for f in frames] == list(range(63))
    assert [f.header.parameter for f in frames] == [2048 * k for k in range(63)]
    assert all((f.sof, f.eof) == (SOF.SOFn3, EOF.EOFn) for f in frames[1:])
    assert last.header.f_ctl & FCtl.END_SEQUENCE and last.eof == EOF.EOFt
    # the plain decoder, frame for frame
    assert [key(f) for f in each_frame([run, last])] == \
        [key(f) for f in FrameDecoder().feed(stream)]


def test_the_plain_decoder_never_makes_runs():
    events = FrameDecoder().feed(write_data(1, bytes(16384)))
    assert all(type(e) is Frame for e in events) and len(events) == 8


@pytest.mark.parametrize("spoil", ["seq_cnt", "parameter", "ox_id", "s_id", "crc", "sof",
                                   "eof", "f_ctl"])
def test_a_frame_that_does_not_continue_the_run_ends_it(spoil):
    data = bytes(range(256)) * 64  # 8 frames
    frames = FrameDecoder().feed(write_data(7, data))
    h = frames[4].header
    sof, eof, payload = frames[4].sof, frames[4].eof, bytes(frames[4].payload)
    changed = {"seq_cnt": {"seq_cnt": 9}, "parameter": {"parameter": h.parameter + 4},
               "ox_id": {"ox_id": 8}, "s_id": {"s_id": 0x010101},
               "f_ctl": {"f_ctl": h.f_ctl | FCtl.LAST_SEQUENCE}}.get(spoil)
    odd = bytearray(encode_frame(h._replace(**changed) if changed else h, payload,
                                 SOF.SOFi3 if spoil == "sof" else sof,
                                 EOF.EOFt if spoil == "eof" else eof))
    if spoil == "crc":
        odd[-6] ^= 1
    stream = b"".join([bytes(f.raw) for f in frames[:4]] + [bytes(odd)] +
                      [bytes(f.raw) for f in frames[5:]])
    events = FrameDecoder(runs=True).feed(stream)
    assert isinstance(events[0], FrameRun) and len(events[0]) == 4
    # the odd frame comes on its own, or (a SOFi3 only starts a sequence) opens a new run
    after = events[1].first if isinstance(events[1], FrameRun) else events[1]
    assert type(after) is (DroppedFrame if spoil == "crc" else Frame)
    assert bytes(after.raw) == bytes(odd)
    assert [key(e) for e in each_frame(events)] == \
        [key(e) for e in FrameDecoder().feed(stream)]


def test_other_kinds_of_frame_are_not_runs():
    # a read's data as the target sends it (R_CTL 01 too, but the runs are only made on
    # request, and any R_CTL but 01 never joins: here FCP_RSP-like 07 frames)
    other = encode_sequence(0x07, 0x010200, 0x010100, 0x08, REL, 1, 5, 6, bytes(8192), 2048,
                            0, LAST)
    assert all(type(e) is Frame for e in FrameDecoder(runs=True).feed(other))
    # a run starts only after a frame that the sequence goes on after (EOFn, no END_SEQ)
    single = write_data(3, bytes(100)) + write_data(3, bytes(100), seq_id=2)
    assert all(type(e) is Frame for e in FrameDecoder(runs=True).feed(single))


# a stream of sequences of several exchanges, some interleaved, with or without relative
# offset, some frames spoiled; cut anywhere
sequences = st.lists(st.tuples(
    st.sampled_from([1, 2, 3]),  # OX_ID
    st.integers(1, 9000),  # data length
    st.sampled_from([256, 1024, 2048]),  # frame size
    st.booleans(),  # relative offset
    st.sampled_from([0x01, 0x01, 0x06])),  # R_CTL (06: unsolicited data)
    min_size=1, max_size=5)


@given(sequences, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6),
                                     st.integers(1, 255)), max_size=3),
       st.lists(st.integers(1, 5000), max_size=12), st.booleans())
@settings(max_examples=300, deadline=None)
def test_runs_never_change_what_was_received(seqs, spoils, cuts, interleave):
    parts = []
    for n, (ox, length, size, rel, r_ctl) in enumerate(seqs):
        data = bytes((n * 7 + i) & 0xFF for i in range(length))
        f_ctl = REL if rel else 0
        parts.append(encode_sequence(r_ctl, 0x010200, 0x010100, 0x08, f_ctl, n + 1, ox, 0x100,
                                     data, size, 4096 * n, f_ctl | LAST))
    if interleave and len(parts) > 1:
        # frames of two sequences taking turns
        a, b = FrameDecoder().feed(parts[0]), FrameDecoder().feed(parts[1])
        mixed = [bytes(f.raw) for pair in zip(a, b, strict=False) for f in pair]
        mixed += [bytes(f.raw) for f in (a[len(b):] if len(a) > len(b) else b[len(a):])]
        parts[:2] = [b"".join(mixed)]
    stream = bytearray(b"".join(parts))
    for where, _, xor in spoils:
        stream[where % len(stream)] ^= xor
    stream = bytes(stream)
    plain, plain_dec, plain_error = decode(stream, cuts, runs=False)
    ran, run_dec, run_error = decode(stream, cuts, runs=True)
    assert run_error == plain_error
    assert [key(e) for e in each_frame(ran)] == [key(e) for e in plain]  # type: ignore[arg-type]
    assert run_dec.frames_seen == plain_dec.frames_seen
    assert run_dec.only_frames == plain_dec.only_frames
    for e in ran:
        if isinstance(e, FrameRun):
            assert len(e) >= 2 and e.header.r_ctl == 0x01
            assert bytes(e.raw) == b"".join(bytes(f.raw) for f in e.frames())


def test_frame_run_header_speaks_for_all_its_frames():
    events = FrameDecoder(runs=True).feed(write_data(9, bytes(6000), offset=8192))
    run = events[0]
    assert isinstance(run, FrameRun)
    assert all(f.header._replace(seq_cnt=0, parameter=0) ==
               run.header._replace(seq_cnt=0, parameter=0) for f in run.frames())
    assert "FrameRun 2 frames" in repr(run)
    assert isinstance(run.header, FcHeader)
