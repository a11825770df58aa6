"""Per-frame codec throughput: how many encode+decode round trips per second fcsoft manages.

Run from the repository root:  .venv/bin/python bench/bench_codecs.py [seconds-per-case]

Each case is timed with time.perf_counter over about one second (five rounds of batched
iterations; the best round counts) and printed as one line: operations per second and
microseconds each, where an operation is one encode+decode round trip unless the line says
otherwise.
The goal for the per-frame path is more than 200,000 round trips per second.

Sections: `bench_pure()` measures the codecs alone (no sockets); a later section (e.g. a
loopback TCP link) can be added as another `bench_*()` function called from `main()`.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fcsoft.wire.encap import Frame, FrameDecoder, encode_frame
from fcsoft.wire.fcp import (
    FCP_RSP_GOOD,
    FcpCmnd,
    FcpRsp,
    decode_fcp_cmnd,
    decode_fcp_rsp,
    int_to_lun,
)
from fcsoft.wire.header import (
    F_CTL_REPLY,
    FcHeader,
    FCtl,
    FcType,
    RCtl,
    make_header,
)

INITIATOR = 0x010100
TARGET = 0x010200


def measure(name: str, round_trip: Callable[[], object], seconds: float = 1.0,
            per_call: int = 1, rounds: int = 5) -> float:
    """Run `round_trip` for about `seconds` and print one line; returns operations/s, where
    one call does `per_call` operations. The time is split into `rounds` and the best round
    is reported, as timeit does: on a shared machine the slower rounds measure the
    neighbours, not the code."""
    round_trip()  # warm up, and let it fail loudly before timing
    batch = 200
    best = 0.0
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            for _ in range(batch):
                round_trip()
            done += batch
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, done * per_call / (now - start))
    print(f"{name:<52} {best:>10,.0f} ops/s {1e6 / best:>8.2f} us/op")
    return best


def plain(header: FcHeader) -> FcHeader:
    """`header` with every field a plain int. make_header keeps the IntEnum/IntFlag members it
    is given, and encode_frame's `f_ctl & ...` on an IntFlag runs enum.py's Python-level
    __and__/__or__ (about 3 us a frame here); decoded headers are plain ints already."""
    return FcHeader(*map(int, header))


def bench_pure(seconds: float = 1.0) -> dict[str, float]:
    """Codec-only figures: FCP_DATA frame, FCP_CMND and FCP_RSP GOOD, bare and framed."""
    results: dict[str, float] = {}
    decoder = FrameDecoder()
    feed = decoder.feed

    # (a) FCP_DATA, 2048 bytes, relative offset in PARAMETER (FCP-4: no IU header)
    data = bytes(range(256)) * 8
    enum_header = make_header(RCtl.SOLICITED_DATA, INITIATOR, TARGET, FcType.FCP,
                              F_CTL_REPLY & ~FCtl.END_SEQUENCE | FCtl.RELATIVE_OFFSET,
                              ox_id=0x1234, rx_id=0x0042, parameter=4096)
    data_header = plain(enum_header)

    def fcp_data() -> object:
        (frame,) = feed(encode_frame(data_header, data))
        assert type(frame) is Frame
        return frame.payload

    def fcp_data_enum_header() -> object:
        (frame,) = feed(encode_frame(enum_header, data))
        return frame.payload  # type: ignore[union-attr]

    batch = encode_frame(data_header, data) * 16

    def fcp_data_batched() -> object:
        # 16 frames per feed(), as a busy TCP link delivers them; counted per frame below
        return feed(batch)

    results["fcp_data_2048_framed"] = measure("FCP_DATA 2048 B, encap frame", fcp_data, seconds)
    results["fcp_data_2048_enum_header"] = measure("  same, header from make_header(enums)",
                                                   fcp_data_enum_header, seconds)
    results["fcp_data_2048_decode_batched"] = measure(
        "  decode only, 16 frames per feed() call", fcp_data_batched, seconds, per_call=16)

    # (b) FCP_CMND: READ(10) of 8 blocks on LUN 1
    cmnd = FcpCmnd(lun=int_to_lun(1), cdb=bytes.fromhex("28000000100000000800"), rddata=True,
                   fcp_dl=4096)
    cmnd_header = plain(make_header(RCtl.UNSOLICITED_COMMAND, TARGET, INITIATOR, FcType.FCP,
                                    ox_id=0x1234))

    def cmnd_iu() -> object:
        return decode_fcp_cmnd(cmnd.encode())

    def cmnd_framed() -> object:
        (frame,) = feed(encode_frame(cmnd_header, cmnd.encode()))
        return decode_fcp_cmnd(frame.payload)  # type: ignore[union-attr]

    results["fcp_cmnd_iu"] = measure("FCP_CMND IU encode+decode", cmnd_iu, seconds)
    results["fcp_cmnd_framed"] = measure("FCP_CMND IU in encap frame", cmnd_framed, seconds)

    # (c) FCP_RSP, GOOD status, nothing else
    rsp = FcpRsp()
    rsp_header = plain(make_header(RCtl.COMMAND_STATUS, INITIATOR, TARGET, FcType.FCP,
                                   F_CTL_REPLY, ox_id=0x1234, rx_id=0x0042))
    assert rsp.encode() is FCP_RSP_GOOD

    def rsp_iu() -> object:
        return decode_fcp_rsp(rsp.encode())

    def rsp_framed() -> object:
        (frame,) = feed(encode_frame(rsp_header, rsp.encode()))
        return decode_fcp_rsp(frame.payload)  # type: ignore[union-attr]

    results["fcp_rsp_good_iu"] = measure("FCP_RSP GOOD IU encode+decode", rsp_iu, seconds)
    results["fcp_rsp_good_framed"] = measure("FCP_RSP GOOD IU in encap frame", rsp_framed,
                                             seconds)
    return results


class _Echo:
    """Server side of the loopback bench: answers each frame (LinkHandler)."""

    def __init__(self, answer: Callable[[Frame], bytes]) -> None:
        self.answer = answer

    def frame_received(self, link, frame: Frame) -> None:  # type: ignore[no-untyped-def]
        link.send(self.answer(frame))

    def link_closed(self, link, reason: str) -> None:  # type: ignore[no-untyped-def]
        pass


class _Counter:
    """Client side: counts answers and wakes the sender."""

    def __init__(self) -> None:
        import trio

        self.received = 0
        self.event = trio.Event()

    def frame_received(self, link, frame: Frame) -> None:  # type: ignore[no-untyped-def]
        self.received += 1
        self.event.set()

    def link_closed(self, link, reason: str) -> None:  # type: ignore[no-untyped-def]
        self.event.set()


def bench_link(seconds: float = 1.0, window: int = 64) -> dict[str, float]:
    """Through one loopback TCP link, both ends being fcsoft's trio Link (reader task +
    FrameDecoder, writer task coalescing frames): frames answered per second with `window`
    frames in flight. The server answers FCP_DATA by echoing it and FCP_CMND with FCP_RSP."""
    import trio

    from fcsoft.server.link import Link

    data_header = plain(make_header(RCtl.SOLICITED_DATA, 0x010200, 0x010100, FcType.FCP,
                                    F_CTL_REPLY | FCtl.RELATIVE_OFFSET, ox_id=1, rx_id=2))
    data_frame = encode_frame(data_header, bytes(2048))
    cmnd_header = plain(make_header(RCtl.UNSOLICITED_COMMAND, 0x010200, 0x010100, FcType.FCP,
                                    ox_id=1))
    cmnd_frame = encode_frame(cmnd_header, FcpCmnd(int_to_lun(1), cdb=bytes.fromhex(
        "28000000100000000800"), fcp_dl=4096, rddata=True).encode())

    def echo(frame: Frame) -> bytes:
        return bytes(frame.raw)

    def respond(frame: Frame) -> bytes:
        decode_fcp_cmnd(frame.payload)
        h = frame.header
        return encode_frame(h.reply(RCtl.COMMAND_STATUS, rx_id=h.ox_id), FCP_RSP_GOOD)

    results: dict[str, float] = {}

    async def case(name: str, frame: bytes, answer: Callable[[Frame], bytes]) -> None:
        async with trio.open_nursery() as nursery:
            async def serve(stream: trio.SocketStream) -> None:
                await Link(stream, _Echo(answer), peer="bench").run()

            listeners = await nursery.start(
                functools.partial(trio.serve_tcp, serve, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            counter = _Counter()
            link = Link(stream, counter, peer="bench-client")
            nursery.start_soon(link.run)
            sent = 0
            start = time.perf_counter()
            deadline = start + seconds
            while time.perf_counter() < deadline:
                while sent - counter.received < window:
                    link.send(frame)
                    sent += 1
                counter.event = trio.Event()
                await counter.event.wait()
            while counter.received < sent:
                counter.event = trio.Event()
                await counter.event.wait()
            elapsed = time.perf_counter() - start
            rate = counter.received / elapsed
            results[name] = rate
            print(f"{name:<52}{rate:>12,.0f} frames/s")
            nursery.cancel_scope.cancel()

    async def run() -> None:
        await case("FCP_DATA 2048 B echoed over loopback TCP", data_frame, echo)
        await case("FCP_CMND -> FCP_RSP over loopback TCP", cmnd_frame, respond)

    trio.run(run)
    return results


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    seconds = float(args[0]) if args else 1.0
    import logging

    from fcsoft import logs

    logs.configure("console", level=logging.WARNING)  # link up/down lines would clutter
    print(f"Python {sys.version.split()[0]}, {seconds:g} s per case")
    print("-- pure codecs (no I/O)")
    bench_pure(seconds)
    print("-- one loopback TCP link (client and server in this process, 64 frames in flight)")
    bench_link(max(seconds, 2.0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
