"""-v and -vv on the SCSI tools, as sg3_utils show them: -v prints each CDB sent and, on a
failure, the decoded sense data (key, ASC/ASCQ with its name, sense-key specific field, the
bytes in hex) instead of the "try again with '-v'" line; -vv adds the data lengths moved and
the residual. The decoding is held to sg3_utils' own (sg_decode_sense) for every code named."""

from __future__ import annotations

import subprocess

import pytest

from fcsoft.hosttools.verbose import ASC_NAMES, sense_lines
from fcsoft.scsi.sense import Sense, SenseKey, SenseKeySpecific, Asc
from tests.conftest import require_tool
from tests.hosttools.test_tools import H2, tool

TRY_AGAIN = "try again with '-v' or '-vv'"


def decoded(sense: bytes) -> list[str]:
    """sense_lines without the raw bytes (which sg_decode_sense shows only with -v)."""
    lines = sense_lines(sense)
    return lines[:lines.index(" Raw sense data (in hex):")]


@pytest.mark.parametrize("code", sorted(ASC_NAMES), ids=lambda c: f"{c[0]:02x}{c[1]:02x}")
def test_sense_decoding_matches_sg_decode_sense(code):
    sg_decode_sense = require_tool("sg_decode_sense")
    cases = [Sense(SenseKey.ILLEGAL_REQUEST, Asc(*code)).encode(),
             Sense(SenseKey.ILLEGAL_REQUEST, Asc(*code),
                   specific=SenseKeySpecific(8, c_d=False)).encode(),
             Sense(SenseKey.ILLEGAL_REQUEST, Asc(*code),
                   specific=SenseKeySpecific(2, c_d=True, bit_pointer=4)).encode(),
             Sense(SenseKey.UNIT_ATTENTION, Asc(*code)).encode(),
             bytes((0x72, 0x05, *code, 0, 0, 0, 0)),
             bytes((0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x99, *code[1:], 0, 0, 0, 0))]
    for sense in cases:
        out = subprocess.run([sg_decode_sense, *(f"{b:02x}" for b in sense)],
                             capture_output=True, text=True, check=True).stdout
        assert decoded(sense) == out.strip("\n").splitlines(), sense.hex(" ")


def test_sense_lines_end_with_the_bytes():
    sense = Sense(SenseKey.ILLEGAL_REQUEST, Asc(0x26, 0),
                  specific=SenseKeySpecific(8, c_d=False)).encode()
    assert sense_lines(sense)[-3:] == [" Raw sense data (in hex):",
                                      "        70 00 05 00 00 00 00 0a  00 00 00 00 26 00 00 80",
                                      "        00 08"]


async def test_v_shows_the_cdbs(fcsoft_lab):
    r = await tool(fcsoft_lab, "inq", "-v")
    assert r.rc == 0 and r.err.splitlines()[0] == "    inquiry cdb: 12 00 00 00 24 00"
    assert "    inquiry cdb: 12 00 00 00 60 00" in r.err.splitlines()  # the second, whole one
    r = await tool(fcsoft_lab, "inq", "-v", "-p", "0x83")
    assert "    inquiry cdb: 12 01 83 00 ff 00" in r.err.splitlines()
    r = await tool(fcsoft_lab, "luns", "-v")
    assert r.rc == 0
    assert "    report luns cdb: a0 00 00 00 00 00 00 00 20 00 00 00" in r.err.splitlines()
    r = await tool(fcsoft_lab, "readcap", "-v")
    assert r.rc == 0
    assert "    read capacity (10) cdb: 25 00 00 00 00 00 00 00 00 00" in r.err.splitlines()
    r = await tool(fcsoft_lab, "readcap", "-v", "--16")
    assert "    read capacity (16) cdb: 9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00" \
        in r.err.splitlines()
    r = await tool(fcsoft_lab, "persist", "-v", "-n", "-k")
    assert r.rc == 0
    lines = r.err.splitlines()
    assert "    test unit ready cdb: 00 00 00 00 00 00" in lines  # the login's UA, consumed
    assert "    Persistent reservation in cdb: 5e 00 00 00 00 00 00 20 00 00" in lines
    quiet = await tool(fcsoft_lab, "inq")
    assert quiet.err == ""


async def test_v_decodes_the_sense_of_a_failure(fcsoft_lab):
    # PREEMPT with SERVICE ACTION RESERVATION KEY 0 and nothing reserved: 26/00, byte 8
    assert (await tool(fcsoft_lab, "persist", "-n", "-o", "-G", "-S", "abc")).rc == 0
    r = await tool(fcsoft_lab, "persist", "-n", "-v", "-o", "-P", "-K", "abc", "-T", "1")
    assert r.rc == 5
    lines = r.err.splitlines()
    at = lines.index("Persistent reservation out:")
    assert lines[at + 1:at + 6] == [
        "Fixed format, current; Sense key: Illegal Request",
        "Additional sense: Invalid field in parameter list",
        "  Sense Key Specific: Error in Data parameters: byte 8",
        " Raw sense data (in hex):",
        "        70 00 05 00 00 00 00 0a  00 00 00 00 26 00 00 80"]
    assert "    Persistent reservation out cdb: 5f 04 01 00 00 00 00 00 18 00" in lines
    assert TRY_AGAIN not in r.err and "Some error occurred" not in r.err
    # without -v: the short closing line, as sg_persist
    r = await tool(fcsoft_lab, "persist", "-n", "-o", "-P", "-K", "abc", "-T", "1")
    assert r.rc == 5 and "Some error occurred [5]" in r.err and "Sense key" not in r.err
    # a VPD page the array does not have
    r = await tool(fcsoft_lab, "inq", "-v", "-p", "0x86")
    assert r.rc == 5
    assert "Additional sense: Invalid field in cdb" in r.err.splitlines()
    assert "  Sense Key Specific: Error in Command: byte 2" in r.err.splitlines()
    assert TRY_AGAIN not in r.err
    assert TRY_AGAIN in (await tool(fcsoft_lab, "inq", "-p", "0x86")).err
    # a status without sense data is named (RESERVE from an unregistered nexus: conflict)
    r = await tool(fcsoft_lab, "persist", "-n", "-v", "-o", "-R", "-K", "abc", "-T", "3",
                   "--initiator", H2)
    assert r.rc == 24
    assert "Persistent reservation out: scsi status: Reservation Conflict" in r.err.splitlines()
    assert "fcsoft persist failed" not in r.err


async def test_vv_adds_lengths_and_residuals(fcsoft_lab):
    r = await tool(fcsoft_lab, "inq", "-vv")
    assert ("    inquiry: pass-through requested 36 bytes (data-in), got 36 bytes, "
            "residual 0") in r.err.splitlines()
    r = await tool(fcsoft_lab, "luns", "-vv")
    assert ("    report luns: pass-through requested 8192 bytes (data-in), got 32 bytes, "
            "residual 8160") in r.err.splitlines()
    r = await tool(fcsoft_lab, "persist", "-n", "-vv", "-o", "-G", "-S", "abc")
    lines = r.err.splitlines()
    assert r.rc == 0
    assert "    Persistent reservation out parameter list:" in lines
    assert ("    Persistent reservation out: pass-through requested 24 bytes (data-out), "
            "24 bytes sent, residual 0") in lines
    assert "-vv" not in (await tool(fcsoft_lab, "inq", "-v")).err and \
        "pass-through requested" not in (await tool(fcsoft_lab, "inq", "-v")).err
