"""The host tools as a user runs them: `python -m fcsoft <tool> --fabric HOST:PORT ...` in a
subprocess against a live `fcsoft_lab` (the built-in lab unless a test says otherwise),
checking stdout, stderr and the exit status.

The output layouts are sg3_utils' and fcoe-utils'; where the installed sg3-utils can decode
the same bytes (sg_inq --inhex, sg_luns --test) the two outputs must be identical. Exit
statuses are sg3_utils' (man sg3_utils): 0 good, 1 syntax, 5 illegal request, 6 unit
attention, 15 cannot reach the fabric / target, 24 reservation conflict, 31 contradictory
options; fcsoft ns and fcsoft ping follow fcnsq and fcping.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.conftest import require_tool

REPO = Path(__file__).resolve().parents[2]
H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"
NOBODY = "10:00:00:00:c9:00:00:09"  # not in any host entry: logs in, sees no LUN
PORT1 = "50:01:43:80:00:00:00:01"
PORT2 = "50:01:43:80:00:00:00:02"
VPORT = "c0:50:76:00:00:00:00:01"
BOUND = 30  # seconds: a hang guard for each tool run, never a speed requirement


@dataclass
class Run:
    rc: int
    out: str
    err: str
    raw: bytes


def _env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), e.get("PYTHONPATH"))))
    e.pop("PYTHONWARNINGS", None)
    return e


async def tool(lab: Any, name: str, *args: str, fabric: str | None = None,
               stdin: bytes | None = None) -> Run:
    """Run `fcsoft <name> --fabric <lab> args...` and collect what it printed."""
    where = fabric or f"{lab.address[0]}:{lab.address[1]}"
    cmd = [sys.executable, "-m", "fcsoft", name, "--fabric", where, *args]
    with trio.fail_after(BOUND):
        p = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False,
                                   env=_env(), stdin=stdin or b"")
    return Run(p.returncode, p.stdout.decode("latin-1"), p.stderr.decode("latin-1"), p.stdout)


async def tools(lab: Any, *calls: tuple[str, ...]) -> list[Run]:
    """Several independent tool runs at once (their results in order). Runs that log in at
    the same time need distinct --initiator names: a fabric takes each WWPN once."""
    results: list[Run | None] = [None] * len(calls)
    limit = trio.CapacityLimiter(4)

    async def one(i: int, call: tuple[str, ...]) -> None:
        async with limit:
            results[i] = await tool(lab, *call)

    async with trio.open_nursery() as n:
        for i, call in enumerate(calls):
            n.start_soon(one, i, call)
    return results  # type: ignore[return-value]


def closed_port() -> str:
    """An address where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def one_line(text: str) -> str:
    lines = text.strip("\n").split("\n")
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    assert "Traceback" not in text
    return lines[0]


# ---------------------------------------------------------------------------------------------
# fcsoft ns (fcnsq)


async def test_ns_lists_the_name_server(fcsoft_lab):
    r = await tool(fcsoft_lab, "ns")
    assert (r.rc, r.err) == (0, "")
    blocks = sorted(r.out.strip().split("\n\n"), key=lambda b: b.splitlines()[1])
    assert len(blocks) == 2  # the two array ports; our own N_Port_ID is left out
    first = blocks[0].splitlines()
    assert re.fullmatch(r"Port ID: [0-9a-f]{6}", first[0])
    # the listing is fcsoft's own layout (fcnsq has none): colon WWNs, six-digit IDs
    assert first[1:5] == ["  Port Name: 50:01:43:80:00:00:00:01",
                          "  Node Name: 50:01:43:80:00:00:00:00",
                          "  FC-4 Types: FCP", "  FC-4 Features: FCP target"]
    assert first[5].startswith("  Symbolic Port Name: fcsoft array1")
    assert first[6].startswith("  Symbolic Node Name: ")
    assert "50:01:43:80:00:00:00:02" in blocks[1]
    quiet = await tool(fcsoft_lab, "ns", "-q")
    assert sorted(line.split()[1:] for line in quiet.out.splitlines()) == [
        ["50:01:43:80:00:00:00:01", "50:01:43:80:00:00:00:00"],
        ["50:01:43:80:00:00:00:02", "50:01:43:80:00:00:00:00"]]
    assert all(re.fullmatch(r"[0-9a-f]{6}", line.split()[0]) for line in quiet.out.splitlines())
    assert not fcsoft_lab.logged_in(H1)  # logged out at the end


async def test_ns_queries_like_fcnsq(fcsoft_lab):
    pid = (await tool(fcsoft_lab, "ns", "--gid_pn", PORT2, "-q")).out.strip()
    assert re.fullmatch(r"[0-9a-f]{6}", pid)
    r = await tool(fcsoft_lab, "ns", "--gpn", pid)
    assert (r.rc, r.out, r.err) == (0, "Port Name: 5001438000000002\n", "")
    r = await tool(fcsoft_lab, "ns", "-gnn", pid, "-quiet")  # fcnsq's single-dash spelling
    assert (r.rc, r.out) == (0, "5001438000000000\n")
    r = await tool(fcsoft_lab, "ns", "--gspn", pid)
    assert r.out == "Symbolic Port Name: fcsoft array1 port 2\n"
    r = await tool(fcsoft_lab, "ns", "--gsnn", "50:01:43:80:00:00:00:00")
    assert r.rc == 0 and r.out.startswith("Symbolic Node Name: fcsoft array1")
    r = await tool(fcsoft_lab, "ns", "--gid_ft")
    assert f"Port ID: {pid}\n" in r.out and r.rc == 0
    # a CT reject: fcnsq's message and status (the explanation code, 0x02 here)
    r = await tool(fcsoft_lab, "ns", "--gid_pn", "20:00:00:00:00:00:00:99")
    assert (r.rc, r.out) == (2, "")
    assert one_line(r.err) == ("gid_pn command failed: Unable to perform command request, "
                               "Port Name not registered")
    r = await tool(fcsoft_lab, "ns", "--gpn", "0xfeed01", "-q")
    assert (r.rc, r.out, r.err) == (1, "", "")  # Port Identifier not registered, quietly


# ---------------------------------------------------------------------------------------------
# fcsoft ping (fcping)

ECHO_LINE = re.compile(r"echo +(\d+) accepted +\d+\.\d{3} ms")


async def test_ping_like_fcping(fcsoft_lab):
    r = await tool(fcsoft_lab, "ping", "-c", "3", "-i", "0.01", PORT1)
    assert (r.rc, r.err) == (0, "")
    lines = r.out.splitlines()
    # fcping's own layout, not fcsoft's: "sending echo to 0x%X" (uppercase, no leading 0)
    assert lines[0] == f"sending echo to 0x{fcsoft_lab.fabric.port(PORT1).fcid:X}"
    assert re.fullmatch(r"sending echo to 0x[1-9A-F][0-9A-F]*", lines[0])
    assert [int(ECHO_LINE.fullmatch(line).group(1)) for line in lines[1:4]] == [1, 2, 3]
    assert lines[1][:41] == "echo    1 " + "accepted".ljust(30) + " "  # "echo %4d %-30s %s"
    assert re.fullmatch(r"3 frames sent, 3 received 0 errors, 0\.000% loss, "
                        r"avg\. rt time \d+\.\d{3} ms", lines[4])
    fcid = lines[0].split("0x")[1]
    r = await tool(fcsoft_lab, "ping", "-c", "1", "-s", "40", "-x", "-F", fcid)
    assert r.rc == 0
    assert r.out.splitlines()[2:6] == [
        "response length 40", "     0 02000000 00000001 00010203 04050607",
        "    10 08090a0b 0c0d0e0f 10111213 14151617", "    20 18191a1b 1c1d1e1f"]
    r = await tool(fcsoft_lab, "ping", "-c", "2", "-i", "0.01", "-q", "-s", "2108", fcid)
    assert r.rc == 0 and r.out.splitlines()[1].startswith("2 frames sent, 2 received 0 errors")


async def test_ping_failures(fcsoft_lab):
    r = await tool(fcsoft_lab, "ping", "-c", "1", "fffffc")  # the name server rejects ECHO
    assert r.rc == 1
    assert r.out.splitlines()[1].startswith("echo    1 REJECT received")
    r = await tool(fcsoft_lab, "ping", "-c", "1", "--timeout", "0.2", "0x0a0b0c")
    assert r.rc == 1
    assert r.out.splitlines()[1:] == [
        "echo    1 error: Connection timed out",
        "1 frames sent, 0 received 1 errors, 100.000% loss, avg. rt time 0.000 ms"]
    r = await tool(fcsoft_lab, "ping", "-c", "1", "-P", "20:00:00:00:00:00:00:99")
    assert (r.rc, r.out) == (1, "")
    # fcping's "cannot find fcid of destination @ wwpn 0x%llX"
    assert one_line(r.err).endswith("cannot find fcid of destination @ wwpn 0x2000000000000099")
    r = await tool(fcsoft_lab, "ping", "-c", "1", "-P", "50:01:43:80:00:00:0a:99")
    assert one_line(r.err).endswith("cannot find fcid of destination @ wwpn 0x5001438000000A99")
    r = await tool(fcsoft_lab, "ping", "-s", "3", PORT1)
    assert r.rc == 1 and "bad size 3 min 4" in r.err
    r = await tool(fcsoft_lab, "ping", "-c", "1")
    assert r.rc == 1 and one_line(r.err).endswith("no target specified")


# ---------------------------------------------------------------------------------------------
# fcsoft inq (sg_inq)

STD_INQUIRY = """\
standard INQUIRY:
  PQual=0  PDT=0  RMB=0  LU_CONG=0  hot_pluggable=0  version=0x06  [SPC-4]
  [AERC=0]  [TrmTsk=0]  NormACA=0  HiSUP=1  Resp_data_format=2
  SCCS=0  ACC=0  TPGS=1  3PC=0  Protect=0  [BQue=0]
  EncServ=0  MultiP=1 (VS=0)  [MChngr=0]  [ACKREQQ=0]  Addr16=0
  [RelAdr=0]  WBus16=0  Sync=0  [Linked=0]  [TranDis=0]  CmdQue=1
  [SPI: Clocking=0x0  QAS=0  IUS=0]
    length=96 (0x60)   Peripheral device type: disk
 Vendor identification: FCSOFT  
 Product identification: VDISK           
"""


async def test_inq(fcsoft_lab):
    r = await tool(fcsoft_lab, "inq")
    assert (r.rc, r.err) == (0, "")
    assert r.out.startswith(STD_INQUIRY)
    # as sg_inq, the unit serial number (VPD 0x80) follows the standard data, unless -o
    serial = fcsoft_lab.array("array1").scsi.units["boot"].serial
    assert r.out.splitlines()[-1] == f" Unit serial number: {serial}"
    r = await tool(fcsoft_lab, "inq", "-o")
    assert r.out.splitlines()[-1].startswith(" Product revision level: ")
    r = await tool(fcsoft_lab, "inq", "-p", "sn", "--target", PORT2, "--lun", "1")
    assert r.rc == 0 and r.out.startswith("VPD INQUIRY: Unit serial number page\n"
                                          "  Unit serial number: ")
    r = await tool(fcsoft_lab, "inq", "-i")
    assert "      [0x5001438000000001]\n" in r.out  # target port 1's NAA designator
    r = await tool(fcsoft_lab, "inq", "-r")
    assert r.raw[:8] == bytes.fromhex("000006125b101002") and len(r.raw) == 96
    # an unmapped LUN: peripheral qualifier 3 for INQUIRY, ILLEGAL REQUEST for a VPD page
    r = await tool(fcsoft_lab, "inq", "--lun", "7")
    assert r.rc == 0 and r.out.startswith(
        "standard INQUIRY: [PQ indicates LU not accessible via this port]\n"
        "  PQual=3  PDT=31 ")
    r = await tool(fcsoft_lab, "inq", "--lun", "7", "-p", "0x80")
    assert r.rc == 5
    assert r.err.splitlines()[0] == "    inquiry: field in cdb illegal (page not supported)"


@pytest.mark.tools
async def test_inq_output_is_sg_inqs(fcsoft_lab, tmp_path):
    """Byte for byte what sg_inq prints for the same response (sg_inq --inhex --raw)."""
    sg_inq = require_tool("sg_inq")
    cases = [("-o",), ("-p", "0"), ("-p", "sn", "-H"), ("-i",), ("-i", "-HH"), ("-p", "bl"),
             ("-p", "0xb1"), ("-p", "0xb2"), ("-HH",), ("--lun", "7"), ("-o", "-d"),
             ("-u",), ("-u", "-p", "sn"), ("-o", "-s")]
    responses: dict[int | str | None, bytes] = {}
    async with fcsoft_lab.host(H2) as host, host.connect(PORT1) as it:
        # the same responses, fetched directly
        for page in (None, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2):
            data = await it.inquiry(0, page=page, allocation=255)
            end = data[4] + 5 if page is None else 4 + int.from_bytes(data[2:4], "big")
            responses[page] = data[:end]
        r = await it.scsi(7, bytes([0x12, 0, 0, 0, 255, 0]), data_in_len=255)
        responses["lun7"] = r.data[:r.data[4] + 5]
    pages = {"0": 0x00, "sn": 0x80, "bl": 0xB0, "0xb1": 0xB1, "0xb2": 0xB2}
    for args in cases:
        run = await tool(fcsoft_lab, "inq", *args)
        given = dict(zip(args, args[1:], strict=False))
        page = ("lun7" if "--lun" in args else pages[given["-p"]] if "-p" in given else
                0x83 if "-i" in args or "-u" in args else None)
        f = tmp_path / "resp.bin"
        f.write_bytes(responses[page])
        flags = [a for a in args if a.startswith("-H") or a in ("-d", "-u", "-s")]
        theirs = await trio.run_process([sg_inq, "--raw", f"--inhex={f}", *flags],
                                        capture_stdout=True, capture_stderr=True)
        assert (run.rc, run.out) == (0, theirs.stdout.decode("latin-1")), args
        # and fcsoft inq decodes the same file itself, without logging in (--inhex)
        offline = await tool(fcsoft_lab, "inq", "--raw", f"--inhex={f}",
                             *(a for a in args if a not in ("--lun", "7")),
                             fabric="127.0.0.1:1")
        assert (offline.rc, offline.out) == (0, theirs.stdout.decode("latin-1")), args


# ---------------------------------------------------------------------------------------------
# fcsoft luns (sg_luns)


async def test_luns(fcsoft_lab):
    r = await tool(fcsoft_lab, "luns")
    assert (r.rc, r.err) == (0, "")
    assert r.out == ("Lun list length = 24 which imples 3 lun entries\n"
                     "Report luns [select_report=0x0]:\n"
                     "    0000000000000000\n    0001000000000000\n    0002000000000000\n")
    r = await tool(fcsoft_lab, "luns", "-d", "-q", "--target", PORT2)
    assert r.out.splitlines()[:2] == ["0000000000000000",
                                      "      Peripheral device addressing: lun=0"]
    r = await tool(fcsoft_lab, "luns", "-H")
    assert r.out.splitlines() == [
        " 00     00 00 00 18 00 00 00 00  00 00 00 00 00 00 00 00",
        " 10     00 01 00 00 00 00 00 00  00 02 00 00 00 00 00 00"]
    r = await tool(fcsoft_lab, "luns", "--initiator", NOBODY)  # masked: an empty list
    assert (r.rc, r.out) == (0, "Lun list length = 0 which imples 0 lun entries\n")


@pytest.mark.tools
def test_luns_decoding_is_sg_luns(capsys):
    """--test=ALUN decodes as sg_luns --test does (run in-process: no login involved)."""
    import argparse

    from fcsoft.hosttools import luns

    sg_luns = require_tool("sg_luns")
    aluns = ("0001", "4101000000000000", "c101", "d200000001230000", "8123000000000000",
             "e2123456", "ffffffffffffffff", "0105000000000000",
             # sg_luns' other spellings: 0x prefix, odd digits, separators, Linux integers
             "0x4001", "00 01", "0001-0002-0000-0000", "L1", "L0x4001", "L65536",
             "0001000000000000L", "0001000200000000")
    # an odd number of digits: the last one is a byte of its own. sg_luns reads past the end
    # of the argument there (what follows in its memory decides the next byte; usually 00)
    for alun, lun in (("0x1", "01"), ("1", "01"), ("0x100", "1000"), ("1h", "01"),
                      ("12345", "123405")):
        assert luns.parse_alun(alun) == (bytes.fromhex(lun).ljust(8, b"\0"), False, False)
    combos = ((0, 0, 0, 0), (1, 0, 0, 0), (0, 1, 0, 0), (2, 1, 0, 0), (0, 0, 1, 0),
              (0, 0, 2, 0), (0, 0, 0, 1), (1, 1, 0, 1), (0, 0, 1, 2))
    for alun in aluns:
        for hexes, verbose, decode, lu_cong in combos:
            luns._test(argparse.Namespace(test=alun, hex=hexes, verbose=verbose,
                                          decode=decode, lu_cong=lu_cong))
            ours = capsys.readouterr().out
            flags = (["-H"] * hexes + ["-v"] * verbose + ["-d"] * decode
                     + ["-L"] * lu_cong)
            theirs = subprocess.run([sg_luns, f"--test={alun}", *flags], capture_output=True,
                                    check=False)
            assert ours == theirs.stdout.decode(), (alun, flags)


# ---------------------------------------------------------------------------------------------
# fcsoft readcap (sg_readcap)


async def test_readcap(fcsoft_lab):
    r = await tool(fcsoft_lab, "readcap")
    assert (r.rc, r.err) == (0, "")
    assert r.out == ("Read Capacity results:\n"
                     "   Last LBA=131071 (0x1ffff), Number of logical blocks=131072\n"
                     "   Logical block length=512 bytes\n"
                     "Hence:\n"
                     "   Device size: 67108864 bytes, 64.0 MiB, 0.07 GB\n")
    r = await tool(fcsoft_lab, "readcap", "--long", "--lun", "2")
    assert r.out == ("Read Capacity results:\n"
                     "   Protection: prot_en=0, p_type=0, p_i_exponent=0\n"
                     "   Logical block provisioning: lbpme=1, lbprz=1\n"
                     "   Last LBA=65535 (0xffff), Number of logical blocks=65536\n"
                     "   Logical block length=4096 bytes\n"
                     "   Logical blocks per physical block exponent=0\n"
                     "   Lowest aligned LBA=0\n"
                     "Hence:\n"
                     "   Device size: 268435456 bytes, 256.0 MiB, 0.27 GB\n")
    r = await tool(fcsoft_lab, "readcap", "-b", "--lun", "1")
    assert r.out == "0x200000 0x200\n"
    r = await tool(fcsoft_lab, "readcap", "--lun", "7")
    assert (r.rc, r.out) == (5, "")
    assert r.err.splitlines()[0] == "READ CAPACITY (10) failed: Illegal request"


# ---------------------------------------------------------------------------------------------
# fcsoft persist (sg_persist)


async def test_persist_reservation_script(fcsoft_lab):
    """An sg_persist script (register, reserve, read, conflict, release, clear) with the
    command name changed; the texts are sg_persist's."""
    r = await tool(fcsoft_lab, "persist", "--in", "--read-keys", PORT1)
    assert (r.rc, r.err) == (0, "")
    lines = r.out.splitlines()
    assert lines[0].startswith("  FCSOFT    VDISK             ")
    assert lines[1:] == ["  Peripheral device type: disk",
                         "  PR generation=0x0, there are NO registered reservation keys"]
    r = await tool(fcsoft_lab, "persist", "--out", "--register", "--param-sark=123abc")
    assert (r.rc, r.err) == (0, "") and r.out.endswith("Peripheral device type: disk\n")
    r = await tool(fcsoft_lab, "persist", "-n", "--out", "-G", "-S", "0x5678",
                   "--initiator", H2)
    assert r.rc == 0 and r.out == ""
    r = await tool(fcsoft_lab, "persist", "-nk")
    assert r.out == ("  PR generation=0x2, 2 registered reservation keys follow:\n"
                     "    0x123abc\n    0x5678\n")
    r = await tool(fcsoft_lab, "persist", "-n", "--out", "--reserve", "--param-rk=123abc",
                   "--prout-type=1")
    assert r.rc == 0
    r = await tool(fcsoft_lab, "persist", "-n", "-r", "--target", PORT2)
    assert r.out == ("  PR generation=0x2, Reservation follows:\n"
                     "    Key=0x123abc\n"
                     "    scope: LU_SCOPE,  type: Write Exclusive\n")
    # another initiator's RESERVE: RESERVATION CONFLICT, sg_persist's words, status 24
    r = await tool(fcsoft_lab, "persist", "-n", "--out", "-R", "-K", "5678", "-T", "1",
                   "--initiator", H2)
    assert (r.rc, r.out) == (24, "")
    assert r.err.splitlines() == ["PR out (Reserve): Reservation conflict",
                                  "fcsoft persist failed: Reservation conflict"]
    r = await tool(fcsoft_lab, "persist", "-n", "-s")
    assert r.out.splitlines()[:9] == [
        "  PR generation=0x2",
        "    Key=0x123abc",
        "      All target ports bit clear",
        "      Relative port address: 0x1",
        "      << Reservation holder >>",
        "      scope: LU_SCOPE,  type: Write Exclusive",
        "      Transport Id of initiator:",
        "        FCP-2 World Wide Name:",
        "      10 00 00 00 c9 00 00 01"]
    r = await tool(fcsoft_lab, "persist", "-n", "-c")
    assert r.out.splitlines()[0] == "Report capabilities response:"
    assert "  Type Mask Valid(TMV): 1" in r.out.splitlines()
    r = await tool(fcsoft_lab, "persist", "-n", "--out", "--release", "--param-rk=123abc",
                   "--prout-type=1")
    assert r.rc == 0
    r = await tool(fcsoft_lab, "persist", "-nr")
    assert r.out == "  PR generation=0x2, there is NO reservation held\n"
    r = await tool(fcsoft_lab, "persist", "-n", "--out", "--clear", "--param-rk=123abc")
    assert r.rc == 0
    r = await tool(fcsoft_lab, "persist", "-nk", "-H")
    assert r.out == ("  PR generation=0x3, Additional length=0\n"
                     "Additional length=0\n")  # sg_persist prints it twice when 0
    assert not fcsoft_lab.logged_in(H1) and not fcsoft_lab.logged_in(H2)


async def test_persist_unit_attention(fcsoft_lab):
    """H1 preempts H2's registration: H2's next command reports the unit attention (6),
    the one after that is good again; the login's own 29h unit attentions never show."""
    assert (await tool(fcsoft_lab, "persist", "-n", "-o", "-G", "-S", "2",
                       "--initiator", H2)).rc == 0
    assert (await tool(fcsoft_lab, "persist", "-n", "-o", "-G", "-S", "1")).rc == 0
    assert (await tool(fcsoft_lab, "persist", "-n", "-o", "-R", "-K", "1", "-T", "5")).rc == 0
    r = await tool(fcsoft_lab, "persist", "-n", "-o", "-P", "-K", "1", "-S", "2", "-T", "5")
    assert (r.rc, r.err) == (0, "")
    r = await tool(fcsoft_lab, "persist", "-n", "-k", "--initiator", H2)
    assert (r.rc, r.out) == (6, "")
    assert r.err.splitlines() == ["PR in (Read keys): Unit attention",
                                  "fcsoft persist failed: Device reported 'Unit attention'"]
    r = await tool(fcsoft_lab, "persist", "-n", "-k", "--initiator", H2)
    assert r.rc == 0
    assert re.fullmatch(r"  PR generation=0x\d, 1 registered reservation key follows:\n"
                        r"    0x1\n", r.out)


async def test_persist_transport_ids(fcsoft_lab, tmp_path):
    """REGISTER with SPEC_I_PT (-X) and REGISTER AND MOVE (-M -X -Q), sg_persist's forms."""
    r = await tool(fcsoft_lab, "persist", "-n", "--out", "-G", "-S", "aa",
                   "-X", "fcp,10000000c9000002")
    assert r.rc == 0
    r = await tool(fcsoft_lab, "persist", "-n", "-s")
    assert "      10 00 00 00 c9 00 00 02" in r.out.splitlines()
    assert r.out.count("Key=0xaa") == 2
    assert (await tool(fcsoft_lab, "persist", "-n", "-o", "-C", "-K", "aa")).rc == 0
    # register and move: H1 reserves, hands the reservation (and a new key) to H2
    assert (await tool(fcsoft_lab, "persist", "-n", "-o", "-G", "-S", "1111")).rc == 0
    assert (await tool(fcsoft_lab, "persist", "-n", "-o", "-R", "-K", "1111", "-T", "3")).rc == 0
    tids = tmp_path / "tids.txt"
    tids.write_text("# the destination initiator\n0,0,0,0, 0,0,0,0, 10,0,0,0,c9,0,0,2\n")
    r = await tool(fcsoft_lab, "persist", "-n", "-o", "-M", "-K", "1111", "-S", "2222",
                   "-T", "3", "-Q", "1", f"--transport-id=file={tids}")
    assert (r.rc, r.err) == (0, "")
    r = await tool(fcsoft_lab, "persist", "-n", "-r", "--initiator", H2)
    assert (r.rc, r.err.splitlines()[0]) == (6, "PR in (Read reservation): Unit attention")
    # ... that was H2's unit attention from the CLEAR (2A/03, reservations preempted)
    r = await tool(fcsoft_lab, "persist", "-n", "-r", "--initiator", H2)
    assert r.out.splitlines()[1:] == ["    Key=0x2222",
                                      "    scope: LU_SCOPE,  type: Exclusive Access"]
    # sg_persist's checks between options
    r = await tool(fcsoft_lab, "persist", "-n", "-o", "-M", "-K", "1", "-S", "2", "-T", "3")
    assert r.rc == 31 and "one (and only one) --transport-id" in r.err
    r = await tool(fcsoft_lab, "persist", "-n", "-o", "-G", "-X", "fcp,10000000")
    assert r.rc == 1 and "badly formed symbolic FCP TransportID" in r.err


NPIV = f"""
[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{PORT1}", "{PORT2}"]

[[array.lun]]
name = "data"
size = "1MiB"

[[array.host]]
name = "host1"
initiators = ["{H1}", "{VPORT}"]
luns = {{ 0 = "data" }}
"""


@pytest.mark.fcsoft_config(NPIV)
async def test_persist_from_a_vport(fcsoft_lab):
    """--vport: FDISC, then the command goes out from the vport (its own I_T nexus)."""
    r = await tool(fcsoft_lab, "persist", "-n", "-o", "-G", "-S", "77", "--vport", VPORT)
    assert (r.rc, r.err) == (0, "")
    r = await tool(fcsoft_lab, "persist", "-n", "-s", "--target", PORT2)
    assert "      c0 50 76 00 00 00 00 01" in r.out.splitlines()
    assert "      Relative port address: 0x1" in r.out.splitlines()  # registered via port 1
    r = await tool(fcsoft_lab, "persist", "-n", "-k", "--vport", VPORT)
    assert r.out.endswith("    0x77\n")
    assert not fcsoft_lab.logged_in(VPORT) and not fcsoft_lab.logged_in(H1)


# ---------------------------------------------------------------------------------------------
# failures every tool shares


async def test_unreachable_fabric_is_one_line(fcsoft_lab):
    nowhere = closed_port()
    expected = {"inq": 15, "luns": 15, "readcap": 15, "persist": 15, "ns": 255, "ping": 1}
    extra = {"ping": ("-c", "1", PORT1), "persist": ("-k",)}
    runs = await tools(fcsoft_lab, *((name, "--fabric", nowhere, *extra.get(name, ()))
                                     for name in expected))
    results = dict(zip(expected, runs))
    for name, status in expected.items():
        r = results[name]
        assert (r.rc, r.out) == (status, ""), name
        assert one_line(r.err) == (f"fcsoft {name}: cannot reach the fabric at {nowhere}: "
                                   "Connection refused"), name


async def test_unknown_target_and_bad_options(fcsoft_lab):
    unknown = "50:01:43:80:00:00:00:99"
    cases = {
        ("inq", "--target", unknown, "--initiator", "10:00:00:00:c9:00:01:01"): 15,
        ("readcap", "--target", unknown, "--initiator", "10:00:00:00:c9:00:01:02"): 15,
        ("persist", "-n", "-k", unknown, "--initiator", "10:00:00:00:c9:00:01:03"): 15,
        ("luns", "--lun", "nine"): 1,  # sg3_utils' syntax error, not argparse's 2
        ("readcap", "--bogus"): 1,
        ("persist", "--in", "--out", "-G"): 31,
        ("persist", "-G"): 31,  # PR OUT service action without --out
        ("persist", "--out"): 31,
        ("persist", "-k", "-r"): 31,
        ("readcap", "-L", "5"): 31,
    }
    results = await tools(fcsoft_lab, *cases)
    for (args, status), r in zip(cases.items(), results):
        assert (r.rc, r.out) == (status, ""), (args, r)
        assert "Traceback" not in r.err
    assert one_line(results[0].err) == (f"fcsoft inq: unknown target {unknown}: target "
                                        f"{unknown} is not visible to 10:00:00:00:c9:00:01:01 "
                                        "(name server explanation 0x02)")


async def test_login_rejected(fcsoft_lab):
    """The fabric refuses a WWPN that is already logged in: one line, status 15."""
    async with fcsoft_lab.host(H1):
        r = await tool(fcsoft_lab, "luns")
        assert (r.rc, r.out) == (15, "")
        assert one_line(r.err).startswith(f"fcsoft luns: fabric login as {H1} at ")
        r = await tool(fcsoft_lab, "readcap", "--initiator", H2, "--vport", H1)
        assert r.rc == 15 and one_line(r.err).startswith(f"fcsoft readcap: FDISC as {H1} "
                                                         "rejected by the fabric")


async def test_help_lists_the_tools():
    p = await trio.run_process([sys.executable, "-m", "fcsoft", "--help"], capture_stdout=True,
                               env=_env())
    for name in ("ns", "ping", "inq", "luns", "readcap", "persist"):
        assert re.search(rf"^\s+{name}\s", p.stdout.decode(), re.MULTILINE), name


# ---------------------------------------------------------------------------------------------
# parity: --version and the usage-error status on every tool


@pytest.mark.parametrize("name", ["", "ns", "ping", "inq", "luns", "readcap", "persist",
                                  "check"])
def test_every_tool_has_version_and_exits_1_on_bad_usage(name):
    from fcsoft import __version__

    argv = [sys.executable, "-m", "fcsoft", *([name] if name else [])]
    r = subprocess.run([*argv, "--version"], capture_output=True, text=True, env=_env(),
                       timeout=BOUND)
    assert (r.returncode, r.stdout) == (0, f"fcsoft{' ' + name if name else ''} {__version__}\n")
    if name:
        r = subprocess.run([*argv, "--no-such-option"], capture_output=True, text=True,
                           env=_env(), timeout=BOUND)
        assert r.returncode == 1 and "unrecognized arguments: --no-such-option" in r.stderr


def test_sg3_utils_options_are_accepted(tmp_path):
    """Every option of the installed sg_inq/sg_luns/sg_readcap/sg_persist --help parses
    (with an argument where it takes one); --old alone is refused."""
    import argparse

    from fcsoft import hosttools

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="tool")
    hosttools.register(sub)
    for tool, prog in (("inq", "sg_inq"), ("luns", "sg_luns"), ("readcap", "sg_readcap"),
                       ("persist", "sg_persist")):
        exe = require_tool(prog)
        text = subprocess.run([exe, "--help"], capture_output=True, text=True).stdout + \
            subprocess.run([exe, "-hh"], capture_output=True, text=True).stdout
        longs = set(re.findall(r"--([a-z][a-z0-9_-]+)(=?)", text))
        for opt, takes in sorted(longs):
            if opt in ("help", "version", "old"):
                continue
            value = {"block": "0", "page": "0x80", "select": "0", "test": "0001",
                     "transport-id": "fcp,10000000c9000001", "inhex": "f",
                     "device": "50:01:43:80:00:00:00:01", "prout-type": "1"}.get(opt, "1")
            args = [f"--{opt}", value] if takes else [f"--{opt}"]
            ns = sub.choices[tool].parse_args(args)  # argparse error -> SystemExit: a failure
            assert ns is not None, (tool, opt)
