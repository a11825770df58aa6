"""Fixtures for end-to-end tests: a fabric served on 127.0.0.1 port 0, traced to a pcap
that tshark must decode cleanly afterwards (the foundation issue's interop check)."""

from __future__ import annotations

import subprocess

import pytest

from fcsoft.config import parse_config
from fcsoft.fabric import Fabric
from fcsoft.server.fabric_server import FabricServer
from fcsoft.server.trace import Tracer
from tests.conftest import require_tool

TSHARK_BAD = "fc.crc.status==0 || _ws.malformed || _ws.expert.severity >= warning"


class Lab:
    """A running fabric: `.address`, `.fabric` (the sans-IO core), `.server`."""

    def __init__(self, server: FabricServer, address: tuple[str, int]) -> None:
        self.server = server
        self.fabric: Fabric = server.core  # type: ignore[assignment]
        self.address = address


@pytest.fixture
def traced(tmp_path):
    """The pcap path the lab writes; checked with tshark after the test."""
    path = tmp_path / "trace.pcap"
    yield path
    if path.exists() and path.stat().st_size > 24:
        problems = tshark_problems(path)
        if problems:
            raise AssertionError("tshark flagged frames in the trace:\n" + "\n".join(problems))


REUSED_SEQUENCE = "New fragment overlaps old data (retransmission?)"
#: Wireshark 4.0's SCSI dissector decodes no MAINTENANCE IN service action (REPORT TARGET
#: PORT GROUPS, sg_rtpg) and says so as an expert note on the FCP_CMND
NO_SERVICE_ACTION_DISSECTOR = "No dissection for this service action yet"


def tshark_problems(path, *, reused_sequence_ids: bool = False) -> list[str]:
    """Frames tshark flags (bad CRC, malformed, expert warnings), minus the known Wireshark
    4.0 limitations:
    - an FDISC's LS_ACC from FFFFFE reported as 'No record of Exchange' (docs/behaviour.md 4);
    - an FCP_CMND of a service action Wireshark cannot decode (MAINTENANCE IN: sg_rtpg);
    - with `reused_sequence_ids` (a trace of an initiator that reuses OX_IDs at once, as
      Linux does): Wireshark keys FC reassembly on (addresses, OX_ID, SEQ_ID, direction)
      and never forgets a finished one, so the second sequence with the same key is shown
      as overlapping the first. Such a report is excused only for a frame whose key
      started an earlier, separate sequence (SEQ_CNT 0) in the trace."""
    tshark = require_tool("tshark")
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y", TSHARK_BAD, "-T", "fields", "-E", "separator=|",
         "-e", "frame.number", "-e", "fc.s_id", "-e", "fc.r_ctl", "-e", "_ws.expert.message"],
        capture_output=True, text=True, check=True).stdout
    starts = _sequence_starts(path) if reused_sequence_ids else {}
    problems = []
    for line in out.splitlines():
        if not line.strip():
            continue
        num, s_id, r_ctl, message = (line.split("|") + ["", "", "", ""])[:4]
        if s_id == "ff.ff.fe" and r_ctl == "0x23" and \
                message == "No record of Exchange. Unable to decode ACC":
            continue
        if message == REUSED_SEQUENCE and starts.get(int(num), 0) >= 2:
            continue
        if r_ctl == "0x06" and message == NO_SERVICE_ACTION_DISSECTOR:
            continue
        problems.append(line)
    return problems


def _sequence_starts(path) -> dict[int, int]:
    """frame number -> how many sequences with that frame's (S_ID, D_ID, OX_ID, SEQ_ID,
    exchange responder) key had started (SEQ_CNT 0) up to and including it."""
    tshark = require_tool("tshark")
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y", "fc", "-T", "fields", "-E", "separator=|",
         "-e", "frame.number", "-e", "fc.s_id", "-e", "fc.d_id", "-e", "fc.ox_id",
         "-e", "fc.seq_id", "-e", "fc.fctl.exchange_responder", "-e", "fc.seq_cnt"],
        capture_output=True, text=True, check=True).stdout
    seen: dict[tuple[str, ...], int] = {}
    result: dict[int, int] = {}
    for line in out.splitlines():
        num, *key, cnt = line.split("|")
        k = tuple(key)
        if cnt == "0":
            seen[k] = seen.get(k, 0) + 1
        result[int(num)] = seen.get(k, 0)
    return result


@pytest.fixture
async def start_lab(nursery, traced):
    """start_lab(toml="") -> Lab, serving until the test ends."""
    tracers = []

    async def start(toml: str = "", **server_kw) -> Lab:
        conf = parse_config(toml)
        tracer = Tracer(traced) if not tracers else None
        if tracer is not None:
            tracer.open()
            tracers.append(tracer)
        server = FabricServer(Fabric(conf.fabric, conf.zones), max_links=conf.fabric.max_links,
                              tracer=tracer, **server_kw)
        addr = await nursery.start(server.serve, "127.0.0.1", 0)
        return Lab(server, addr)

    yield start
    for t in tracers:
        t.close()
