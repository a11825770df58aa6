"""CPU per command of an array port alone: FCP frames in, FCP frames out, no sockets.

Run from the repository root:  .venv/bin/python bench/bench_target.py [--count N]

A target port (fcsoft.target.TargetPort) with a real SCSI array (fcsoft.scsi.ScsiArray,
one memory-backed LU) and a logged-in initiator session is fed encapsulated frames through
the same calls the fabric uses for an in-process port (FrameDecoder(runs=True).feed, then
TargetPort.fcp_frames); what it transmits is collected and dropped. Per case it prints the
process CPU time per command over the run (best of three), which is the server's cost of a
command without the event loop, the sockets and the fabric's routing. The frames the
initiator would send are built before the clock starts.

Cases: 4 KiB READ(10) (decode of the FCP_CMND, SCSI checks, the data-in sequence and the
FCP_RSP), 128 KiB WRITE(10) (FCP_CMND, XFER_RDY, 64 FCP_DATA frames decoded and stored,
FCP_RSP). Use it to see what a change to the target, SCSI or codec code costs before
running bench_io.py.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fcsoft.config import parse_config
from fcsoft.scsi.array import ScsiArray
from fcsoft.scsi.types import Nexus
from fcsoft.target.port import Session, TargetPort
from fcsoft.wire.encap import FrameDecoder, encode_frame, encode_sequence
from fcsoft.wire.fcp import FcpCmnd, int_to_lun
from fcsoft.wire.header import FCtl, FcType, RCtl, make_header
from fcsoft.wire.wwn import WWN

HOST = "10:00:00:00:c9:00:00:01"
PORT = "50:01:43:80:00:00:00:01"
S_ID, D_ID = 0x010100, 0x010200
CONFIG = f"""
[[array]]
name = "bench"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{PORT}"]
[[array.lun]]
name = "disk"
size = "256MiB"
[[array.host]]
name = "bench"
initiators = ["{HOST}"]
luns = {{ 0 = "disk" }}
"""
DATA_F_CTL = FCtl.FIRST_SEQUENCE | FCtl.RELATIVE_OFFSET
LAST_F_CTL = DATA_F_CTL | FCtl.END_SEQUENCE | FCtl.SEQUENCE_INITIATIVE


class Bench:
    def __init__(self) -> None:
        conf = parse_config(CONFIG).arrays[0]
        self.out: list[bytes] = []
        self.port = TargetPort(WWN(PORT), conf.node_wwn, ScsiArray(conf), relative_port=1,
                               transmit=self._transmit)
        self.port.fabric.fcid = D_ID  # as if logged in to the fabric
        nexus = Nexus(WWN(HOST), WWN(PORT), 1)
        self.port.sessions[S_ID] = Session(S_ID, WWN(HOST), WWN(HOST), nexus,
                                           receive_size=2048, image_pair=True)
        self.decoder = FrameDecoder(runs=True)  # as the fabric's links decode
        self.command(1, bytes(16), rd=False, wr=False, dl=0)  # the power-on unit attention
        self.out.clear()

    def _transmit(self, data: bytes) -> bool:
        self.out.append(data)
        return True

    @staticmethod
    def cmnd_frame(ox: int, cdb: bytes, *, rd: bool, wr: bool, dl: int) -> bytes:
        payload = FcpCmnd(lun=int_to_lun(0), cdb=cdb, rddata=rd, wrdata=wr, fcp_dl=dl).encode()
        return encode_frame(make_header(RCtl.UNSOLICITED_COMMAND, D_ID, S_ID, FcType.FCP,
                                        ox_id=ox), payload)

    def command(self, ox: int, cdb: bytes, *, rd: bool, wr: bool, dl: int) -> None:
        self.feed(self.cmnd_frame(ox, cdb, rd=rd, wr=wr, dl=dl))

    def feed(self, raw: bytes) -> None:
        self.port.fcp_frames(self.decoder.feed(raw))  # type: ignore[arg-type]

    def read4k(self, count: int) -> float:
        frames = [self.cmnd_frame(i % 60000 + 2,
                                  struct.pack(">BBIBHB", 0x28, 0, i * 8 % 65536, 0, 8, 0),
                                  rd=True, wr=False, dl=4096) for i in range(count)]
        out = self.out
        t = time.process_time()
        for raw in frames:
            self.feed(raw)
            out.clear()
        return time.process_time() - t

    def write128k(self, count: int) -> float:
        data = b"\x5a" * 131072
        # the LU's memory is allocated on first write: write the range once, untimed, so
        # the figure is the steady state's
        self._writes(data, min(count, 256))
        return self._writes(data, count)

    def _writes(self, data: bytes, count: int) -> float:
        spent = 0.0
        for i in range(count):
            ox = i % 60000 + 2
            cdb = struct.pack(">BBIBHB", 0x2A, 0, i * 256 % 65536, 0, 256, 0)
            cmnd = self.cmnd_frame(ox, cdb, rd=False, wr=True, dl=len(data))
            t = time.process_time()
            self.feed(cmnd)
            spent += time.process_time() - t
            (xfer_rdy,) = FrameDecoder().feed(self.out.pop())
            seq = encode_sequence(RCtl.SOLICITED_DATA, D_ID, S_ID, FcType.FCP, DATA_F_CTL, 1,
                                  ox, xfer_rdy.header.rx_id, data, 2048, 0, LAST_F_CTL)
            t = time.process_time()
            self.feed(seq)
            spent += time.process_time() - t
            if not self.out:
                raise SystemExit("no FCP_RSP to a WRITE: the bench is broken")
            self.out.clear()
        stored = self.port.scsi.units["disk"].backing.read(0, len(data))
        if bytes(stored) != data:
            raise SystemExit("the written data is not in the LU: the bench is broken")
        return spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20000, help="4 KiB reads per round "
                    "(128 KiB writes: a tenth of it)")
    args = ap.parse_args()
    cases = [("4K READ(10), one command", "read4k", args.count),
             ("128K WRITE(10), one command", "write128k", max(1, args.count // 10))]
    for label, name, n in cases:
        best = min(getattr(Bench(), name)(n) for _ in range(3))
        print(f"{label:32} {1e6 * best / n:8.1f} us CPU per command  ({n} commands)")


if __name__ == "__main__":
    main()
