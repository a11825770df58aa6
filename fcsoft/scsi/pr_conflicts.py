"""Which commands a persistent reservation lets through (SPC-4 5.14.1 table 42 / 5.14.2,
SBC-3 4.17 table 13), as one table keyed by operation code.

Theory of operation. Every command an LU supports falls in one of three access classes, and
the class alone decides the answer for a nexus that is *not* the reservation holder (the
holder is always allowed; that is decided by the engine, not here):

    class     WE (1)  EA (3)  registered, 5-8  unregistered, 5/7  unregistered, 6/8
    ALWAYS      A       A           A                 A                  A
    READ        A       C           A                 A                  C
    WRITE       C       C           A                 C                  C

(SPC-4 5.14.1 table 42 and 5.14.2, the
SCST op flags of section 3 and SBC-3 table 13.) Registration does not help under types 1 and
3: a registered non-holder there is judged by the WE/EA column like anybody else.

Choices (docs/behaviour.md 3 over LIO's data-direction rule):
- SYNCHRONIZE CACHE, FORMAT UNIT, START STOP UNIT (other than START=1 with POWER CONDITION
  0h) and PREVENT ALLOW MEDIUM REMOVAL (PREVENT != 0) are WRITE even though they move no data.
- RECEIVE COPY RESULTS is WRITE, as SPC-4 table 42 lists it with EXTENDED COPY (SCST lets it
  through; SPC-4 5.14.1 notes that).
- An operation code (or service action) missing from the table is WRITE: a command we cannot
  classify might change the medium, so it conflicts wherever a write would. LIO instead lets
  non-data-out commands through under Write Exclusive; we take the safe side.
- PERSISTENT RESERVE IN/OUT and RESERVE/RELEASE(6/10) are listed as `DELEGATED`: their
  conflicts are decided by the engine's own handlers (SPC-4 5.14.3), so the
  generic check lets them pass.
"""

from __future__ import annotations

from enum import Enum


class Access(Enum):
    """Access class of a command under a persistent reservation (see the module docstring)."""

    ALWAYS = "always"
    READ = "read"
    WRITE = "write"
    DELEGATED = "delegated"  # PR IN/OUT, RESERVE/RELEASE: the engine's handlers decide


A, R, W, D = Access.ALWAYS, Access.READ, Access.WRITE, Access.DELEGATED

# Operation codes whose class depends on a service action: where the service action sits.
# 7Fh (variable length CDB) carries a 16-bit service action in bytes 8-9.
_SA_BYTE1 = frozenset({0x9E, 0x9F, 0xA3, 0xA4, 0xAB})
_VARIABLE_LENGTH = 0x7F
_START_STOP_UNIT = 0x1B
_PREVENT_ALLOW = 0x1E

# THE TABLE. Key: opcode, or (opcode, service action). Source rows are named on each line:
# Rows of SPC-4 5.14.1 table 42 and SBC-3 4.17 table 13; SPC-4 / SBC-3 names beside.
ACCESS_TABLE: dict[int | tuple[int, int], Access] = {
    # --- always allowed (SPC-4 table 42 "Allowed" in every column)
    0x12: A,            # INQUIRY
    0xA0: A,            # REPORT LUNS
    0x03: A,            # REQUEST SENSE
    0x4D: A,            # LOG SENSE
    0x86: A,            # ACCESS CONTROL IN
    0x87: A,            # ACCESS CONTROL OUT
    (0xA3, 0x0A): A,    # MAINTENANCE IN / REPORT TARGET PORT GROUPS
    (0xA3, 0x0B): A,    # MAINTENANCE IN / REPORT ALIASES
    (0xA3, 0x05): A,    # MAINTENANCE IN / REPORT IDENTIFYING INFORMATION
    (0xA3, 0x0E): A,    # MAINTENANCE IN / REPORT PRIORITY
    (0xA3, 0x0F): A,    # MAINTENANCE IN / REPORT TIMESTAMP
    (0xAB, 0x01): A,    # SERVICE ACTION IN(12) / READ MEDIA SERIAL NUMBER
    # --- TEST UNIT READY (allowed; ALLOW COMMANDS 001b says so)
    0x00: A,            # TEST UNIT READY
    # --- READ CAPACITY is allowed everywhere (SBC-3 table 13)
    0x25: A,            # READ CAPACITY(10)
    (0x9E, 0x10): A,    # SERVICE ACTION IN(16) / READ CAPACITY(16)
    # --- allowed under Write Exclusive, conflict under Exclusive Access
    0x1A: R,            # MODE SENSE(6)
    0x5A: R,            # MODE SENSE(10)
    0x3C: R,            # READ BUFFER(10)
    0x9B: R,            # READ BUFFER(16)
    0x1C: R,            # RECEIVE DIAGNOSTIC RESULTS
    0x8C: R,            # READ ATTRIBUTE
    0xA2: R,            # SECURITY PROTOCOL IN
    (0xA3, 0x0C): R,    # MAINTENANCE IN / REPORT SUPPORTED OPERATION CODES
    (0xA3, 0x0D): R,    # MAINTENANCE IN / REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS
    (0xA3, 0x10): R,    # MAINTENANCE IN / MANAGEMENT PROTOCOL IN
    # --- medium reads (SBC-3 table 13: allowed under WE, conflict under EA)
    0x08: R,            # READ(6)
    0x28: R,            # READ(10)
    0xA8: R,            # READ(12)
    0x88: R,            # READ(16)
    (0x7F, 0x0009): R,  # READ(32)
    0x2F: R,            # VERIFY(10)
    0xAF: R,            # VERIFY(12)
    0x8F: R,            # VERIFY(16)
    (0x7F, 0x000A): R,  # VERIFY(32)
    0x34: R,            # PRE-FETCH(10)
    0x90: R,            # PRE-FETCH(16)
    (0x9E, 0x12): R,    # SERVICE ACTION IN(16) / GET LBA STATUS
    (0x9E, 0x13): R,    # SERVICE ACTION IN(16) / REPORT REFERRALS
    0x37: R,            # READ DEFECT DATA(10)
    0xB7: R,            # READ DEFECT DATA(12)
    # --- SPC commands that change state: conflict for every non-holder
    0x15: W,            # MODE SELECT(6)
    0x55: W,            # MODE SELECT(10)
    0x4C: W,            # LOG SELECT
    0x3B: W,            # WRITE BUFFER
    0x1D: W,            # SEND DIAGNOSTIC
    0x8D: W,            # WRITE ATTRIBUTE
    0xB5: W,            # SECURITY PROTOCOL OUT
    (0xA4, 0x0A): W,    # MAINTENANCE OUT / SET TARGET PORT GROUPS
    (0xA4, 0x06): W,    # MAINTENANCE OUT / SET IDENTIFYING INFORMATION
    0x83: W,            # EXTENDED COPY (every service action)
    0x84: W,            # RECEIVE COPY RESULTS (SPC-4; SCST allows it)
    # --- medium writes and everything that changes the medium or cache
    0x0A: W,            # WRITE(6)
    0x2A: W,            # WRITE(10)
    0xAA: W,            # WRITE(12)
    0x8A: W,            # WRITE(16)
    (0x7F, 0x000B): W,  # WRITE(32)
    0x2E: W,            # WRITE AND VERIFY(10)
    0xAE: W,            # WRITE AND VERIFY(12)
    0x8E: W,            # WRITE AND VERIFY(16)
    (0x7F, 0x000C): W,  # WRITE AND VERIFY(32)
    0x41: W,            # WRITE SAME(10)
    0x93: W,            # WRITE SAME(16)
    (0x7F, 0x000D): W,  # WRITE SAME(32)
    0x42: W,            # UNMAP
    0x89: W,            # COMPARE AND WRITE
    0x8B: W,            # ORWRITE(16)
    (0x7F, 0x000E): W,  # ORWRITE(32)
    0x9C: W,            # WRITE ATOMIC(16)
    0x3F: W,            # WRITE LONG(10)
    (0x9F, 0x11): W,    # SERVICE ACTION OUT(16) / WRITE LONG(16)
    0x50: W,            # XDWRITE(10)
    0x51: W,            # XPWRITE(10)
    0x53: W,            # XDWRITEREAD(10)
    0x04: W,            # FORMAT UNIT
    0x07: W,            # REASSIGN BLOCKS
    0x48: W,            # SANITIZE
    0x35: W,            # SYNCHRONIZE CACHE(10)   (docs/behaviour.md 3: like WRITE)
    0x91: W,            # SYNCHRONIZE CACHE(16)
    0x85: W,            # ATA PASS-THROUGH(16)
    0xA1: W,            # ATA PASS-THROUGH(12)
    # --- decided by CDB fields, see access_class(); listed for completeness
    _START_STOP_UNIT: W,  # START STOP UNIT: ALWAYS when START=1 and POWER CONDITION=0h
    _PREVENT_ALLOW: W,    # PREVENT ALLOW MEDIUM REMOVAL: ALWAYS when PREVENT=00b
    # --- handled by the engine's own PR / SPC-2 logic
    0x5E: D,            # PERSISTENT RESERVE IN  (conflicts under SPC-2 RESERVE, SPC-2 5.5.1)
    0x5F: D,            # PERSISTENT RESERVE OUT (SPC-4 5.14.1, in the PR OUT handler)
    0x16: D,            # RESERVE(6)   (SPC-4 5.14.3, CRH=1)
    0x56: D,            # RESERVE(10)
    0x17: D,            # RELEASE(6)
    0x57: D,            # RELEASE(10)
}


def access_class(cdb: bytes | memoryview) -> Access:
    """The access class of the command in `cdb` (WRITE for anything the table lacks)."""
    if not cdb:
        return W
    op = cdb[0]
    if op == _START_STOP_UNIT:
        # SBC-3 table 13: START=1 with POWER CONDITION 0h is allowed; any other form conflicts
        b4 = cdb[4] if len(cdb) > 4 else 0
        return A if (b4 & 0x01) and (b4 >> 4) == 0 else W
    if op == _PREVENT_ALLOW:
        b4 = cdb[4] if len(cdb) > 4 else 0
        return A if (b4 & 0x03) == 0 else W
    if op in _SA_BYTE1:
        sa = cdb[1] & 0x1F if len(cdb) > 1 else -1
        return ACCESS_TABLE.get((op, sa), W)
    if op == _VARIABLE_LENGTH:
        sa = int.from_bytes(bytes(cdb[8:10]), "big") if len(cdb) >= 10 else -1
        return ACCESS_TABLE.get((op, sa), W)
    return ACCESS_TABLE.get(op, W)


def allowed_for_non_holder(access: Access, pr_type: int, registered: bool) -> bool:
    """The table in the module docstring: may a nexus that does not hold the persistent
    reservation of `pr_type` run a command of class `access`?"""
    if access is Access.ALWAYS or access is Access.DELEGATED:
        return True
    if registered and pr_type in (5, 6, 7, 8):
        return True
    if access is Access.READ:
        return pr_type in (1, 5, 7)  # Write Exclusive family
    return False
