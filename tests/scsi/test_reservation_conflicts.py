"""The whole command conflict table, row by row: each reservation type x each command x
holder / registered non-holder / unregistered nexus.

Expectations are written here independently of fcsoft/scsi/pr_conflicts.py, as the five
columns of SPC-4 5.14.1 table 42 (A = allowed, C = conflict):

    WE  EA  Reg(5-8)  Unreg WE-RO/AR (5/7)  Unreg EA-RO/AR (6/8)

plus 7.3 for PERSISTENT RESERVE OUT service actions.
"""

from __future__ import annotations

import pytest

from fcsoft.scsi.pr_conflicts import ACCESS_TABLE, Access, access_class

from .test_reservations import (
    A1,
    A2,
    ALL_TYPES,
    B1,
    C1,
    CLEAR,
    EX_AC_AR,
    I3,
    PREEMPT,
    PREEMPT_AND_ABORT,
    R_AND_M,
    R_IEK,
    REGISTER,
    RELEASE,
    RESERVE,
    WR_EX_AR,
    Lu,
    assert_conflict,
    assert_good,
    prin_cdb,
    prout_cdb,
    rm_params,
)


def c(op: int, length: int = 10, **at: int) -> bytes:
    """A CDB of `length` bytes with opcode `op` and bytes set by position (b1=.., b4=..)."""
    b = bytearray(length)
    b[0] = op
    for name, value in at.items():
        pos = int(name[1:])
        b[pos:pos + (2 if value > 0xFF else 1)] = value.to_bytes(2 if value > 0xFF else 1,
                                                                 "big")
    return bytes(b)


def sa(op: int, action: int, length: int = 12) -> bytes:
    return c(op, length, b1=action)


def var(action: int) -> bytes:
    """A variable-length (7Fh) CDB of 32 bytes with a 16-bit service action at bytes 8-9."""
    b = bytearray(32)
    b[0], b[7] = 0x7F, 0x18
    b[8:10] = action.to_bytes(2, "big")
    return bytes(b)


ALWAYS, READ, WRITE = "AAAAA", "ACAAC", "CCACC"

ROWS: list[tuple[str, bytes, str]] = [
    ("INQUIRY", c(0x12, 6), ALWAYS),
    ("REPORT LUNS", c(0xA0, 12), ALWAYS),
    ("REQUEST SENSE", c(0x03, 6), ALWAYS),
    ("LOG SENSE", c(0x4D), ALWAYS),
    ("REPORT TARGET PORT GROUPS", sa(0xA3, 0x0A), ALWAYS),
    ("REPORT ALIASES", sa(0xA3, 0x0B), ALWAYS),
    ("REPORT IDENTIFYING INFORMATION", sa(0xA3, 0x05), ALWAYS),
    ("REPORT PRIORITY", sa(0xA3, 0x0E), ALWAYS),
    ("REPORT TIMESTAMP", sa(0xA3, 0x0F), ALWAYS),
    ("READ MEDIA SERIAL NUMBER", sa(0xAB, 0x01), ALWAYS),
    ("ACCESS CONTROL IN", sa(0x86, 0x00, 16), ALWAYS),
    ("ACCESS CONTROL OUT", sa(0x87, 0x00, 16), ALWAYS),
    ("TEST UNIT READY", c(0x00, 6), ALWAYS),
    ("MODE SENSE(6)", c(0x1A, 6), READ),
    ("MODE SENSE(10)", c(0x5A), READ),
    ("READ BUFFER(10)", c(0x3C), READ),
    ("READ BUFFER(16)", c(0x9B, 16), READ),
    ("RECEIVE DIAGNOSTIC RESULTS", c(0x1C, 6), READ),
    ("READ ATTRIBUTE", c(0x8C, 16), READ),
    ("REPORT SUPPORTED OPERATION CODES", sa(0xA3, 0x0C), READ),
    ("REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS", sa(0xA3, 0x0D), READ),
    ("SECURITY PROTOCOL IN", c(0xA2, 12), READ),
    ("MANAGEMENT PROTOCOL IN", sa(0xA3, 0x10), READ),
    ("MODE SELECT(6)", c(0x15, 6), WRITE),
    ("MODE SELECT(10)", c(0x55), WRITE),
    ("LOG SELECT", c(0x4C), WRITE),
    ("WRITE BUFFER", c(0x3B), WRITE),
    ("SEND DIAGNOSTIC", c(0x1D, 6), WRITE),
    ("WRITE ATTRIBUTE", c(0x8D, 16), WRITE),
    ("SECURITY PROTOCOL OUT", c(0xB5, 12), WRITE),
    ("SET TARGET PORT GROUPS", sa(0xA4, 0x0A), WRITE),
    ("SET IDENTIFYING INFORMATION", sa(0xA4, 0x06), WRITE),
    ("EXTENDED COPY", c(0x83, 16), WRITE),
    ("RECEIVE COPY RESULTS", c(0x84, 16), WRITE),
    ("READ(6)", c(0x08, 6), READ),
    ("READ(10)", c(0x28), READ),
    ("READ(12)", c(0xA8, 12), READ),
    ("READ(16)", c(0x88, 16), READ),
    ("READ(32)", var(0x0009), READ),
    ("VERIFY(10)", c(0x2F), READ),
    ("VERIFY(12)", c(0xAF, 12), READ),
    ("VERIFY(16)", c(0x8F, 16), READ),
    ("VERIFY(32)", var(0x000A), READ),
    ("PRE-FETCH(10)", c(0x34), READ),
    ("PRE-FETCH(16)", c(0x90, 16), READ),
    ("GET LBA STATUS", sa(0x9E, 0x12, 16), READ),
    ("REPORT REFERRALS", sa(0x9E, 0x13, 16), READ),
    ("READ DEFECT DATA(10)", c(0x37), READ),
    ("READ DEFECT DATA(12)", c(0xB7, 12), READ),
    ("READ CAPACITY(10)", c(0x25), ALWAYS),
    ("READ CAPACITY(16)", sa(0x9E, 0x10, 16), ALWAYS),
    ("WRITE(6)", c(0x0A, 6), WRITE),
    ("WRITE(10)", c(0x2A), WRITE),
    ("WRITE(12)", c(0xAA, 12), WRITE),
    ("WRITE(16)", c(0x8A, 16), WRITE),
    ("WRITE(32)", var(0x000B), WRITE),
    ("WRITE AND VERIFY(10)", c(0x2E), WRITE),
    ("WRITE AND VERIFY(12)", c(0xAE, 12), WRITE),
    ("WRITE AND VERIFY(16)", c(0x8E, 16), WRITE),
    ("WRITE AND VERIFY(32)", var(0x000C), WRITE),
    ("WRITE SAME(10)", c(0x41), WRITE),
    ("WRITE SAME(16)", c(0x93, 16), WRITE),
    ("WRITE SAME(32)", var(0x000D), WRITE),
    ("UNMAP", c(0x42), WRITE),
    ("COMPARE AND WRITE", c(0x89, 16), WRITE),
    ("ORWRITE(16)", c(0x8B, 16), WRITE),
    ("ORWRITE(32)", var(0x000E), WRITE),
    ("WRITE ATOMIC(16)", c(0x9C, 16), WRITE),
    ("WRITE LONG(10)", c(0x3F), WRITE),
    ("WRITE LONG(16)", sa(0x9F, 0x11, 16), WRITE),
    ("XDWRITE(10)", c(0x50), WRITE),
    ("XPWRITE(10)", c(0x51), WRITE),
    ("XDWRITEREAD(10)", c(0x53), WRITE),
    ("FORMAT UNIT", c(0x04, 6), WRITE),
    ("REASSIGN BLOCKS", c(0x07, 6), WRITE),
    ("SANITIZE", c(0x48), WRITE),
    ("SYNCHRONIZE CACHE(10)", c(0x35), WRITE),        # docs/behaviour.md 3
    ("SYNCHRONIZE CACHE(16)", c(0x91, 16), WRITE),
    ("ATA PASS-THROUGH(12)", c(0xA1, 12), WRITE),
    ("ATA PASS-THROUGH(16)", c(0x85, 16), WRITE),
    # START STOP UNIT by its fields
    ("START STOP UNIT START=1", c(0x1B, 6, b4=0x01), ALWAYS),
    ("START STOP UNIT START=1 LOEJ=1", c(0x1B, 6, b4=0x03), ALWAYS),
    ("START STOP UNIT START=0", c(0x1B, 6, b4=0x00), WRITE),
    ("START STOP UNIT LOEJ=1 START=0", c(0x1B, 6, b4=0x02), WRITE),
    ("START STOP UNIT START=1 POWER CONDITION=1", c(0x1B, 6, b4=0x11), WRITE),
    ("START STOP UNIT POWER CONDITION=3", c(0x1B, 6, b4=0x30), WRITE),
    # PREVENT ALLOW MEDIUM REMOVAL by PREVENT
    ("PREVENT ALLOW PREVENT=0", c(0x1E, 6, b4=0x00), ALWAYS),
    ("PREVENT ALLOW PREVENT=1", c(0x1E, 6, b4=0x01), WRITE),
    ("PREVENT ALLOW PREVENT=2", c(0x1E, 6, b4=0x02), WRITE),
    ("PREVENT ALLOW PREVENT=3", c(0x1E, 6, b4=0x03), WRITE),
    # not in the table: treated as write-class (pr_conflicts.py docstring)
    ("vendor specific C0h", c(0xC0), WRITE),
    ("SERVICE ACTION IN(16) 1Fh", sa(0x9E, 0x1F, 16), WRITE),
    ("MAINTENANCE IN 1Fh", sa(0xA3, 0x1F), WRITE),
    ("MAINTENANCE OUT 1Fh", sa(0xA4, 0x1F), WRITE),
    ("variable length 0xFFFF", var(0xFFFF), WRITE),
]


def expected(row: str, t: int, role: str) -> bool:
    """Allowed? Column by type and role (SPC-4 5.14.1, SBC-3 4.17 column definitions)."""
    if role == "holder":
        return True
    we, ea, reg, unreg_we, unreg_ea = (ch == "A" for ch in row)
    if t == 1:
        return we
    if t == 3:
        return ea
    if role == "registered":
        return reg
    return unreg_we if t in (5, 7) else unreg_ea


def reserved(t: int) -> Lu:
    """A1 (key 1) holds a type `t` reservation, B1 (key 2) is registered, C1 is not."""
    lu = Lu()
    lu.register(A1, 1)
    lu.register(B1, 2)
    assert_good(lu.reserve(A1, 1, t))
    return lu


@pytest.mark.parametrize("t", ALL_TYPES)
@pytest.mark.parametrize("name,cdb,row", ROWS, ids=[r[0] for r in ROWS])
def test_conflict_table(name: str, cdb: bytes, row: str, t: int) -> None:
    lu = reserved(t)
    for role, nexus in (("holder", A1), ("registered", B1), ("unregistered", C1),
                        ("unregistered", A2)):
        result = lu.check(nexus, cdb)
        if expected(row, t, role):
            assert result is None, (name, t, role)
        else:
            assert result is not None, (name, t, role)
            assert_conflict(result)


@pytest.mark.parametrize("name,cdb,row", ROWS, ids=[r[0] for r in ROWS])
def test_no_reservation_no_conflict(name: str, cdb: bytes, row: str) -> None:
    lu = Lu()
    lu.register(B1, 2)
    assert lu.check(C1, cdb) is None and lu.check(B1, cdb) is None


def test_every_table_entry_is_exercised() -> None:
    keys: set[int | tuple[int, int]] = set()
    for _, cdb, _ in ROWS:
        op = cdb[0]
        if op in (0x9E, 0x9F, 0xA3, 0xA4, 0xAB):
            keys.add((op, cdb[1] & 0x1F))
        elif op == 0x7F:
            keys.add((op, int.from_bytes(cdb[8:10], "big")))
        else:
            keys.add(op)
    delegated = {k for k, v in ACCESS_TABLE.items() if v is Access.DELEGATED}
    assert set(ACCESS_TABLE) - delegated - keys == set()


@pytest.mark.parametrize("op", [0x5E, 0x5F, 0x16, 0x56, 0x17, 0x57])
@pytest.mark.parametrize("t", ALL_TYPES)
def test_pr_and_spc2_commands_are_left_to_their_handlers(op: int, t: int) -> None:
    lu = reserved(t)
    assert access_class(c(op)) is Access.DELEGATED
    assert lu.check(C1, c(op)) is None


def test_pr_in_allowed_for_everyone_under_every_type() -> None:
    for t in ALL_TYPES:
        lu = reserved(t)
        for n in (A1, B1, C1):
            assert_good(lu.prin(n, 0))


# --- 7.3: PERSISTENT RESERVE OUT service actions in the presence of a reservation ---------


def prout_outcome(t: int, sa_: int, role: str) -> str:
    """"A" allowed (GOOD) or "C" conflict, from SPC-4 5.14.3 (with docs/behaviour.md 3)."""
    if sa_ in (REGISTER, R_IEK):
        return "A"
    if role == "unregistered":
        return "C"
    holder = role == "holder" or t in (WR_EX_AR, EX_AC_AR)
    if sa_ == RESERVE:
        return "A" if holder else "C"  # same type and scope
    if sa_ == R_AND_M:
        return "A" if holder and t not in (WR_EX_AR, EX_AC_AR) else "C"
    return "A"  # RELEASE (non-holder: GOOD, no-op), CLEAR, PREEMPT, PREEMPT AND ABORT


@pytest.mark.parametrize("t", ALL_TYPES)
@pytest.mark.parametrize("sa_", [REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_AND_ABORT,
                                 R_IEK, R_AND_M])
@pytest.mark.parametrize("role", ["holder", "registered", "unregistered"])
def test_prout_service_actions_under_reservation(t: int, sa_: int, role: str) -> None:
    lu = reserved(t)
    nexus, key = {"holder": (A1, 1), "registered": (B1, 2), "unregistered": (C1, 0)}[role]
    if sa_ == R_AND_M:
        r = lu.prout(nexus, R_AND_M, data=rm_params(key, 9, 2, I3))
    elif sa_ == REGISTER:
        r = lu.prout(nexus, REGISTER, key, 5)
    else:
        r = lu.prout(nexus, sa_, key, 1 if sa_ in (PREEMPT, PREEMPT_AND_ABORT) else 0, t)
    if prout_outcome(t, sa_, role) == "A":
        assert_good(r)
    else:
        assert_conflict(r)


def test_cdb_helpers() -> None:
    assert prin_cdb(1, 8) == bytes.fromhex("5e01000000000000 0800".replace(" ", ""))
    assert prout_cdb(4, 3, 0, 24) == bytes.fromhex("5f04030000000000 1800".replace(" ", ""))
    assert c(0x1B, 6, b4=0x11) == bytes.fromhex("1b0000001100")
