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


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    seconds = float(args[0]) if args else 1.0
    print(f"Python {sys.version.split()[0]}, {seconds:g} s per case")
    print("-- pure codecs (no I/O)")
    bench_pure(seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
