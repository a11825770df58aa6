"""Turn a TCP capture of fcsoft links (as tshark or tcpdump writes it) into a pcap of FC
frames, link type 225, that Wireshark decodes without an FCIP dissector: the TCP payload of
each direction of each connection is cut into frames by the encapsulation length words
(fcsoft's FrameDecoder), and each frame written as one record at the time of the segment
that completed it.

    python -m tests.interop.reframe CAPTURE OUT.pcap PORT

prints "<n> frames, <m> errors" on stderr; errors are frames with a bad CRC or delimiter
and streams whose encapsulation broke.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from fcsoft.wire import pcap
from fcsoft.wire.encap import DroppedFrame, Frame, FrameDecoder, trace_record
from fcsoft.wire.errors import FramingError


def reframe(capture: Path, out: Path, port: int) -> tuple[int, int]:
    """Write the frames of every TCP connection to or from `port` in `capture` to `out`;
    returns (frames, errors)."""
    tshark = shutil.which("tshark")
    if tshark is None:
        raise RuntimeError("tshark is not installed")
    rows = subprocess.run(
        [tshark, "-n", "-r", str(capture), "-o", "tcp.desegment_tcp_streams:FALSE",
         "-Y", f"tcp.port == {port} && tcp.len > 0", "-T", "fields", "-E", "separator=\t",
         "-e", "frame.time_epoch", "-e", "tcp.stream", "-e", "tcp.srcport", "-e",
         "tcp.payload"], capture_output=True, text=True, check=True).stdout
    decoders: dict[tuple[str, str], FrameDecoder | None] = {}
    frames = errors = 0
    with open(out, "wb") as f:
        f.write(pcap.file_header())
        for line in rows.splitlines():
            when, stream, sport, payload = line.split("\t")
            key = (stream, sport)
            decoder = decoders.setdefault(key, FrameDecoder())
            if decoder is None:
                continue  # this direction's framing broke earlier
            try:
                events = decoder.feed(bytes.fromhex(payload.replace(":", "")))
            except FramingError:
                decoders[key] = None
                errors += 1
                continue
            for ev in events:
                if isinstance(ev, Frame):
                    f.write(pcap.record(float(when), trace_record(ev.raw)))
                    frames += 1
                elif isinstance(ev, DroppedFrame):
                    errors += 1
    return frames, errors


if __name__ == "__main__":
    n, bad = reframe(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]))
    print(f"{n} frames, {bad} errors", file=sys.stderr)
    sys.exit(0)
