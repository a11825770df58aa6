#!/usr/bin/env python3
"""A small iSCSI initiator that keeps WRITEs outstanding against one LUN, for benchmarks.

    python bench/iscsi_write.py [--portal HOST:PORT] --target IQN [--lun N] [--bs BYTES]
                                [--qd N] [--seconds S] [--size BYTES] [--random] [--json]

Debian's `iscsi-perf` (libiscsi-bin) only reads; this tool is its counterpart for writes,
so that bench/bench_io.py can measure tgtd's CPU time per WRITE. It is written from
RFC 7143 with the standard library only, and does just what that needs:

- one TCP connection, one session; Login straight to the operational stage (no
  authentication: the target must allow that, as a tgtd target bound with `-I ALL` and no
  account does), offering HeaderDigest=None, DataDigest=None, InitialR2T=Yes,
  ImmediateData=No (so every write waits for an R2T, as FC writes wait for XFER_RDY),
  MaxOutstandingR2T=1, ErrorRecoveryLevel=0, and honouring what the target answers and
  declares (no Data-Out segment is larger than the target's MaxRecvDataSegmentLength);
- TEST UNIT READY until unit attentions are cleared, READ CAPACITY(16) for the block
  size and the LU's size;
- `--qd` WRITE(16) commands of `--bs` bytes outstanding for `--seconds`, at aligned LBAs
  one after the other (wrapping) or at random (`--random`) within the first `--size`
  bytes; each R2T answered with Data-Out PDUs (DataSN from 0, Buffer Offset, F on the last
  of the burst); CmdSN kept within the target's window (MaxCmdSN), ExpStatSN acknowledged;
- NOP-In pings answered with NOP-Out; a Reject, an Async Message, a failed login or a
  target that stops answering for --timeout seconds ends the run with a message; a
  command that does not end GOOD counts as an error (the first few are printed with their
  sense key, ASC and ASCQ);
- Logout at the end.

Every WRITE carries the same --bs bytes: the 8-byte big-endian word at byte offset k of a
command's data is PATTERN_MAGIC | k (see `pattern`), so a test can check what reached the
disk, and a Data-Out that carried the wrong part of the buffer shows.

Not supported (and not needed against tgtd on 127.0.0.1): digests, CHAP, immediate or
unsolicited data, more than one connection, error recovery (any protocol error ends the
run), reads, text/discovery sessions, a target that redirects the login.

`--json` prints one object: iops, mbps (10^6 bytes a second), p50_ms, p99_ms, ios
(commands completed, errors included, as `fcsoft perf` counts them), errors, seconds (from
the first command to the last completion), cpu_s (this process's CPU time over that
interval), pings (NOP-In pings answered), bs, qd, rw. Exit status: 0, 1 when a command
failed, 2 when the run could not be made (bad usage, connection, login, protocol).

The client is Python (25-35 us of CPU per 4 KiB WRITE, about 80 us per 128 KiB one here):
against a fast target it can be the bottleneck, so its IOPS may understate the target's;
the target's CPU time per I/O (what bench_io.py reports) hardly depends on the client's
speed (a slower client, if anything, leaves the target fewer I/Os per wake-up).
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import sys
import time

PATTERN_MAGIC = 0x6663_7377_0000_0000  # "fcsw" in the upper half of every data word
INITIATOR = "iqn.2026-12.org.fcsoft:iscsi-write"
SHOWN_ERRORS = 5
NO_TAG = 0xFFFFFFFF

# opcodes (RFC 7143 11.2.1.2): initiator to target ...
OP_NOP_OUT, OP_SCSI_CMD, OP_LOGIN, OP_DATA_OUT, OP_LOGOUT = 0x00, 0x01, 0x03, 0x05, 0x06
# ... and target to initiator
OP_NOP_IN, OP_SCSI_RSP, OP_TMF_RSP, OP_LOGIN_RSP, OP_TEXT_RSP = 0x20, 0x21, 0x22, 0x23, 0x24
OP_DATA_IN, OP_LOGOUT_RSP, OP_R2T, OP_ASYNC, OP_REJECT = 0x25, 0x26, 0x31, 0x32, 0x3F
IMMEDIATE = 0x40  # the I bit of byte 0
FINAL = 0x80  # the F bit of byte 1
WRITE_FLAGS = FINAL | 0x20 | 1  # SCSI Command: F, W (data out), task attribute SIMPLE
WRITE_16 = 0x8A

# Every PDU here is a 48-byte Basic Header Segment (no AHS, no digests) and a data segment
# padded to a multiple of 4 bytes. Incoming: opcode byte, flags, two opcode-specific
# bytes, TotalAHSLength << 24 | DataSegmentLength, LUN, ITT, then seven opcode-specific
# words (at offsets 20, 24, ..., 44).
BHS_IN = struct.Struct(">BBBBIQI7I")
# SCSI Command with its 16-byte CDB, here always WRITE(16) (opcode 0x8A): opcode, flags,
# reserved, DSL, LUN, ITT, Expected Data Transfer Length, CmdSN, ExpStatSN, then the CDB:
# operation code, flags, LBA, transfer length in blocks, group number, control
SCSI_WRITE16 = struct.Struct(">BBHIQIIII BBQIBB")
# any other 48-byte header given as words: opcode, flags, two bytes, DSL, LUN, ITT and
# seven words (Data-Out, NOP-Out, Logout, Login fit it; Login's ISID/TSIH go in the LUN)
BHS_OUT = struct.Struct(">BBBBIQI7I")
# the CDBs of the set-up phase
TEST_UNIT_READY = bytes(16)
READ_CAPACITY_16 = struct.pack(">BBQIBB", 0x9E, 0x10, 0, 32, 0, 0)

LOGIN_KEYS = {  # what this initiator offers (RFC 7143 13); answers are checked in login()
    "HeaderDigest": "None",
    "DataDigest": "None",
    "MaxConnections": "1",
    "InitialR2T": "Yes",
    "ImmediateData": "No",
    "MaxRecvDataSegmentLength": "262144",
    "MaxBurstLength": "16776192",
    "FirstBurstLength": "262144",
    "DefaultTime2Wait": "0",
    "DefaultTime2Retain": "0",
    "MaxOutstandingR2T": "1",
    "DataPDUInOrder": "Yes",
    "DataSequenceInOrder": "Yes",
    "ErrorRecoveryLevel": "0",
}

# keys a target declares without expecting an answer
DECLARATIVE = {"MaxRecvDataSegmentLength", "TargetAlias", "TargetAddress",
               "TargetPortalGroupTag", "TaskReporting"}

REJECT_REASONS = {
    0x02: "data (payload) digest error", 0x03: "SNACK reject", 0x04: "protocol error",
    0x05: "command not supported", 0x06: "immediate command reject (too many)",
    0x07: "task in progress", 0x08: "invalid data ack", 0x09: "invalid PDU field",
    0x0A: "long operation reject (out of resources)", 0x0C: "waiting for logout",
}
ASYNC_EVENTS = {
    0: "SCSI asynchronous event", 1: "target requests logout",
    2: "target will drop this connection", 3: "target will drop all connections",
    4: "target requests parameter negotiation",
}
SENSE_KEYS = ("NO SENSE", "RECOVERED ERROR", "NOT READY", "MEDIUM ERROR", "HARDWARE ERROR",
              "ILLEGAL REQUEST", "UNIT ATTENTION", "DATA PROTECT", "BLANK CHECK",
              "VENDOR SPECIFIC", "COPY ABORTED", "ABORTED COMMAND", "0xC", "VOLUME OVERFLOW",
              "MISCOMPARE", "0xF")


class TargetError(Exception):
    """The target did something this initiator cannot go on from (or refused the login)."""


def pattern(nbytes: int) -> bytes:
    """The data of every WRITE: 8-byte big-endian words, the one at offset k being
    PATTERN_MAGIC | k (nbytes a multiple of 8)."""
    return struct.pack(f">{nbytes // 8}Q", *range(PATTERN_MAGIC, PATTERN_MAGIC + nbytes, 8))


def lun_field(lun: int) -> int:
    """The 8-byte LUN field (SAM: peripheral addressing below 256, flat space above) as an
    integer."""
    if lun < 256:
        return lun << 48
    if lun < 16384:
        return (0x4000 | lun) << 48
    raise ValueError(f"LUN {lun} needs an addressing method this tool does not use")


def serial_lt(a: int, b: int) -> bool:
    """a < b in 32-bit serial number arithmetic (RFC 1982), as CmdSN and StatSN compare."""
    return a != b and ((b - a) & 0xFFFFFFFF) < 0x80000000


def sense_text(data: bytes) -> str:
    """'KEY ASC/ASCQ' of the sense data in a SCSI Response's data segment."""
    if len(data) < 2:
        return "no sense data"
    sense = data[2:2 + int.from_bytes(data[:2], "big")]
    if len(sense) < 4:
        return "no sense data"
    code = sense[0] & 0x7F
    if code in (0x72, 0x73):  # descriptor format
        key, asc, ascq = sense[1] & 0xF, sense[2], sense[3]
    elif len(sense) >= 14:  # fixed format
        key, asc, ascq = sense[2] & 0xF, sense[12], sense[13]
    else:
        return f"short sense data {sense.hex()}"
    return f"{SENSE_KEYS[key]} ASC/ASCQ {asc:02x}/{ascq:02x}"


def encode_keys(keys: dict[str, str]) -> bytes:
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in keys.items())


def decode_keys(data: bytes) -> dict[str, str]:
    out = {}
    for item in data.split(b"\0"):
        if item:
            key, _, value = item.decode("utf-8", "replace").partition("=")
            out[key] = value
    return out


class Session:
    """One iSCSI session on one connection: the sequence numbers, the receive buffer and
    the PDUs that are not the data path's (login, set-up commands, NOP, Reject, Async,
    Logout). The write loop itself is `run`."""

    def __init__(self, sock: socket.socket, lun: int, timeout: float) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.lun = lun_field(lun)
        self.cmdsn = 1  # the next CmdSN; the leading login carries the first one
        self.exp_statsn = 0
        self.max_cmdsn = 1
        self.itt = 0
        self.buf = bytearray(1 << 20)
        self.view = memoryview(self.buf)
        self.start = self.end = 0
        self.target_mrdsl = 8192  # the target's MaxRecvDataSegmentLength until declared
        self.max_burst = 262144
        self.keys: dict[str, str] = {}
        self.pings = 0  # NOP-In pings answered

    # -- sending and receiving ------------------------------------------------------

    def send(self, parts: list[bytes | memoryview]) -> None:
        """Send header and data pieces in as few system calls as the kernel allows."""
        while parts:
            batch = parts[:512]  # well under IOV_MAX
            try:
                sent = self.sock.sendmsg(batch)
            except TimeoutError:
                raise TargetError(f"the target took nothing for {self.timeout:g} s") from None
            total = sum(len(p) for p in batch)
            if sent == total:
                del parts[:512]
                continue
            # a short send: drop what went, keep the rest of the piece it stopped in
            i = 0
            while sent >= len(parts[i]):
                sent -= len(parts[i])
                i += 1
            parts[i] = memoryview(parts[i])[sent:]
            del parts[:i]

    def receive(self) -> list[tuple[tuple[int, ...], bytes]]:
        """Every complete PDU in the buffer after at least one recv: (header fields as
        BHS_IN unpacks them, data segment)."""
        pdus: list[tuple[tuple[int, ...], bytes]] = []
        buf = self.buf
        while not pdus:
            if self.start:
                left = self.end - self.start
                buf[:left] = buf[self.start:self.end]
                self.start, self.end = 0, left
            try:
                n = self.sock.recv_into(self.view[self.end:])
            except TimeoutError:
                raise TargetError(f"no answer from the target in {self.timeout:g} s") from None
            if not n:
                raise TargetError("the target closed the connection")
            self.end += n
            start, end = self.start, self.end
            while end - start >= 48:
                f = BHS_IN.unpack_from(buf, start)
                dsl = f[4] & 0xFFFFFF
                body = start + 48 + (f[4] >> 24) * 4
                size = body - start + ((dsl + 3) & ~3)
                if end - start < size:
                    if size > len(buf):  # a data segment larger than the buffer
                        self.buf = buf = buf + bytearray(size)
                        self.view = memoryview(buf)
                    break
                pdus.append((f, bytes(buf[body:body + dsl]) if dsl else b""))
                start += size
            self.start = start
        return pdus

    def next_itt(self) -> int:
        self.itt = (self.itt + 1) & 0x7FFFFFFF
        return self.itt

    def window(self, exp_cmdsn: int, max_cmdsn: int) -> None:
        """Take the target's command window from a PDU that carries one (RFC 7143 4.2.2.1:
        ignored when MaxCmdSN < ExpCmdSN - 1, and never moved back)."""
        if not serial_lt(max_cmdsn, (exp_cmdsn - 1) & 0xFFFFFFFF) and \
                serial_lt(self.max_cmdsn, max_cmdsn):
            self.max_cmdsn = max_cmdsn

    def other(self, f: tuple[int, ...], data: bytes, out: list[bytes | memoryview]) -> None:
        """A PDU that is neither R2T nor SCSI Response nor Data-In: answer a NOP-In ping,
        fail on Reject, Async Message and anything unexpected."""
        op = f[0] & 0x3F
        if op == OP_NOP_IN:
            # f: 5 LUN, 6 ITT, 7 TTT, 8 StatSN, 9 ExpCmdSN, 10 MaxCmdSN
            self.window(f[9], f[10])
            if f[6] != NO_TAG:  # an answer to a NOP-Out of ours: it carries a status
                self.exp_statsn = (f[8] + 1) & 0xFFFFFFFF
            if f[7] != NO_TAG:  # a ping: echo its data with its TTT and ITT 0xffffffff
                self.pings += 1
                out.append(BHS_OUT.pack(OP_NOP_OUT | IMMEDIATE, FINAL, 0, 0, len(data),
                                        f[5], NO_TAG, f[7], self.cmdsn, self.exp_statsn,
                                        0, 0, 0, 0))
                if data:
                    out.append(data + bytes(-len(data) & 3))
            return
        if op == OP_REJECT:
            rejected = data[0] & 0x3F if data else -1
            raise TargetError(f"target sent Reject ({REJECT_REASONS.get(f[2], hex(f[2]))}) "
                              f"of a PDU with opcode {rejected:#04x}")
        if op == OP_ASYNC:
            event = f[11] >> 24  # AsyncEvent, byte 36
            detail = f" ({sense_text(data)})" if event == 0 else ""
            raise TargetError(f"target sent Async Message: "
                              f"{ASYNC_EVENTS.get(event, f'event {event}')}{detail}")
        raise TargetError(f"unexpected PDU from the target: opcode {op:#04x}")

    # -- login, set-up, logout ----------------------------------------------------------

    def login(self, initiator: str, target: str) -> None:
        """Leading login straight into the operational stage, then Full Feature Phase."""
        isid = (0x80 << 40) | (random.getrandbits(24) << 16)  # random-qualifier ISID
        itt = self.next_itt()
        offer = {"InitiatorName": initiator, "SessionType": "Normal", "TargetName": target,
                 **LOGIN_KEYS}
        data = encode_keys(offer)
        transit = True
        got: dict[str, str] = {}
        for _ in range(16):
            # T (transit), CSG=1 (operational negotiation), NSG=3 (full feature phase);
            # the ISID and TSIH (0: a new session) take the LUN field's place
            flags = (0x80 if transit else 0) | (1 << 2) | 3
            self.send([BHS_OUT.pack(OP_LOGIN | IMMEDIATE, flags, 0, 0, len(data), isid << 16,
                                    itt, 0, self.cmdsn, self.exp_statsn, 0, 0, 0, 0),
                       data + bytes(-len(data) & 3)])
            (f, text), = self.receive_one()
            if f[0] & 0x3F != OP_LOGIN_RSP:
                raise TargetError(f"PDU with opcode {f[0] & 0x3F:#04x} during login")
            # f: 1 T/C/CSG/NSG, 8 StatSN, 9 ExpCmdSN, 10 MaxCmdSN, 11 status class/detail
            status = f[11] >> 16
            if status:
                raise TargetError(f"login refused: status class {status >> 8}, detail "
                                  f"{status & 0xFF:#04x} (class 2 is an initiator error: "
                                  f"detail 0x01 authentication failed, 0x02 not allowed, "
                                  f"0x03 target not found)")
            self.exp_statsn = (f[8] + 1) & 0xFFFFFFFF
            self.max_cmdsn = f[10]
            answers = decode_keys(text)
            got.update(answers)
            if f[1] & 0x40:  # C: more text to come; ask for it with an empty request
                data, transit = b"", False
                continue
            if f[1] & 0x80 and f[1] & 3 == 3:  # the target moves to full feature: done
                break
            # the target offered keys of its own: markers (RFC 3720) off, others unknown
            data, transit = encode_keys({
                k: "No" if k in ("OFMarker", "IFMarker") else "NotUnderstood"
                for k in answers if k not in offer and k not in DECLARATIVE}), True
        else:
            raise TargetError("the login did not reach the Full Feature Phase")
        self.keys = got
        for key in ("HeaderDigest", "DataDigest"):
            if got.get(key, "None") != "None":
                raise TargetError(f"target wants {key}={got[key]}; this tool sends no digests")
        if got.get("ImmediateData", "No") == "Yes" or got.get("InitialR2T", "Yes") != "Yes":
            raise TargetError("target did not agree to InitialR2T=Yes, ImmediateData=No")
        self.target_mrdsl = int(got.get("MaxRecvDataSegmentLength", "8192"))
        self.max_burst = int(got.get("MaxBurstLength", "262144"))

    def receive_one(self) -> list[tuple[tuple[int, ...], bytes]]:
        """Exactly one PDU (the login and set-up phases expect one at a time)."""
        pdus = self.receive()
        if len(pdus) != 1:
            raise TargetError(f"expected one PDU from the target, got {len(pdus)}")
        return pdus

    def command(self, cdb: bytes, read_len: int) -> tuple[int, bytes, bytes]:
        """One non-data or data-in command, alone: (status, data read, sense text or b"")."""
        itt = self.next_itt()
        flags = 0x80 | (0x40 if read_len else 0) | 1  # F, R, SIMPLE
        self.send([struct.pack(">BBHIQIIII", OP_SCSI_CMD, flags, 0, 0, self.lun, itt,
                               read_len, self.cmdsn, self.exp_statsn) + cdb])
        self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        data_in = bytearray()
        while True:
            for f, data in self.receive():
                op = f[0] & 0x3F
                if op == OP_DATA_IN and f[6] == itt:
                    # f: 3 status, 8 StatSN, 9 ExpCmdSN, 10 MaxCmdSN, 12 Buffer Offset
                    data_in[f[12]:f[12] + len(data)] = data
                    self.window(f[9], f[10])
                    if f[1] & 0x01:  # S: the status is in this PDU
                        self.exp_statsn = (f[8] + 1) & 0xFFFFFFFF
                        return f[3], bytes(data_in), b""
                elif op == OP_SCSI_RSP and f[6] == itt:
                    self.exp_statsn = (f[8] + 1) & 0xFFFFFFFF
                    self.window(f[9], f[10])
                    if f[2]:
                        raise TargetError(f"iSCSI response {f[2]:#04x} to CDB {cdb[0]:#04x}")
                    return f[3], bytes(data_in), data
                else:
                    out: list[bytes | memoryview] = []
                    self.other(f, data, out)
                    self.send(out)

    def capacity(self) -> tuple[int, int]:
        """(block size, LU size in bytes), after clearing unit attentions."""
        for _ in range(8):
            status, _, sense = self.command(TEST_UNIT_READY, 0)
            if status == 0:
                break
            if status != 2 or "UNIT ATTENTION" not in sense_text(sense):
                raise TargetError(f"TEST UNIT READY: status {status:#04x}, "
                                  f"{sense_text(sense)}")
        else:
            raise TargetError("the LU kept reporting unit attentions")
        status, data, sense = self.command(READ_CAPACITY_16, 32)
        if status != 0 or len(data) < 12:
            raise TargetError(f"READ CAPACITY(16): status {status:#04x}, {sense_text(sense)}")
        last_lba, block_size = struct.unpack_from(">QI", data)
        return block_size, (last_lba + 1) * block_size

    def logout(self) -> None:
        """Close the session (reason 0) and wait for the target's answer."""
        itt = self.next_itt()
        self.send([BHS_OUT.pack(OP_LOGOUT | IMMEDIATE, FINAL | 0, 0, 0, 0, 0, itt, 0,
                                self.cmdsn, self.exp_statsn, 0, 0, 0, 0)])
        while True:
            out: list[bytes | memoryview] = []
            for f, data in self.receive():
                if f[0] & 0x3F == OP_LOGOUT_RSP and f[6] == itt:
                    if f[2]:
                        raise TargetError(f"logout refused: response {f[2]}")
                    return
                self.other(f, data, out)  # a NOP-In ping can still come
            self.send(out)

    # -- the write loop -------------------------------------------------------------

    def run(self, bs: int, qd: int, seconds: float, region: int, block_size: int,
            rand: bool, errors: list[str]) -> dict[str, float]:
        """Keep `qd` WRITE(16)s of `bs` bytes (a multiple of `block_size`) outstanding for
        `seconds` within the first `region` bytes (at least `bs`); return the figures."""
        slots = region // bs
        blocks = bs // block_size
        payload = memoryview(pattern(bs))
        seg_max = max(4, self.target_mrdsl & ~3)
        rng = random.Random(0x5EED)
        pack_cmd = SCSI_WRITE16.pack
        pack_hdr = BHS_OUT.pack
        now_ns = time.perf_counter_ns
        lun = self.lun
        started: dict[int, tuple[int, int]] = {}  # ITT -> (LBA, start time in ns)
        latencies: list[int] = []
        cursor = 0
        ios = nerr = 0
        out: list[bytes | memoryview] = []
        cpu0 = time.process_time()
        t0 = now_ns()
        deadline = t0 + int(seconds * 1e9)
        stopping = False

        while True:
            # issue: as many new commands as the queue depth and the CmdSN window allow
            if not stopping:
                if now_ns() >= deadline:
                    stopping = True
                else:
                    t = now_ns()
                    while len(started) < qd and not serial_lt(self.max_cmdsn, self.cmdsn):
                        if rand:
                            lba = rng.randrange(slots) * blocks
                        else:
                            lba = cursor * blocks
                            cursor = cursor + 1 if cursor + 1 < slots else 0
                        self.itt = itt = (self.itt + 1) & 0x7FFFFFFF
                        out.append(pack_cmd(OP_SCSI_CMD, WRITE_FLAGS, 0, 0, lun, itt, bs,
                                            self.cmdsn, self.exp_statsn, WRITE_16, 0, lba,
                                            blocks, 0, 0))
                        self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
                        started[itt] = (lba, t)
            if out:
                self.send(out)
                out = []
            if stopping and not started:
                break
            for f, data in self.receive():
                op = f[0] & 0x3F
                if op == OP_R2T:
                    # f: ..., 5 LUN, 6 ITT, 7 TTT, 8 StatSN, 9 ExpCmdSN, 10 MaxCmdSN,
                    # 11 R2TSN, 12 Buffer Offset, 13 Desired Data Transfer Length
                    itt, ttt, offset, length = f[6], f[7], f[12], f[13]
                    if itt not in started:
                        raise TargetError(f"R2T for unknown task {itt:#x}")
                    if offset + length > bs or length == 0:
                        raise TargetError(f"R2T asks for bytes {offset}+{length} of a "
                                          f"{bs}-byte write")
                    self.window(f[9], f[10])
                    stop = offset + length
                    datasn = 0
                    while offset < stop:
                        n = min(seg_max, stop - offset)
                        out.append(pack_hdr(OP_DATA_OUT, FINAL if offset + n == stop else 0,
                                            0, 0, n, lun, itt, ttt, 0, self.exp_statsn, 0,
                                            datasn, offset, 0))
                        out.append(payload[offset:offset + n])
                        if n & 3:
                            out.append(bytes(-n & 3))
                        offset += n
                        datasn += 1
                elif op == OP_SCSI_RSP:
                    # f: 2 response, 3 status, 6 ITT, 8 StatSN, 9 ExpCmdSN, 10 MaxCmdSN
                    task = started.pop(f[6], None)
                    if task is None:
                        raise TargetError(f"SCSI Response for unknown task {f[6]:#x}")
                    latencies.append(now_ns() - task[1])
                    self.exp_statsn = (f[8] + 1) & 0xFFFFFFFF
                    self.window(f[9], f[10])
                    ios += 1
                    if f[2] or f[3]:
                        nerr += 1
                        if len(errors) < SHOWN_ERRORS:
                            what = (f"iSCSI response {f[2]:#04x}" if f[2] else
                                    f"status {f[3]:#04x}" + (f", {sense_text(data)}"
                                                             if f[3] == 2 else ""))
                            errors.append(f"WRITE LBA {task[0]}: {what}")
                else:
                    self.other(f, data, out)
        elapsed = (now_ns() - t0) / 1e9
        cpu = time.process_time() - cpu0
        latencies.sort()

        def pct(p: float) -> float:
            if not latencies:
                return 0.0
            i = min(len(latencies) - 1, max(0, round(p / 100 * len(latencies)) - 1))
            return round(latencies[i] / 1e6, 4)

        good = ios - nerr
        return {"iops": round(ios / elapsed, 1), "mbps": round(good * bs / elapsed / 1e6, 2),
                "p50_ms": pct(50), "p99_ms": pct(99), "ios": ios, "errors": nerr,
                "seconds": round(elapsed, 3), "cpu_s": round(cpu, 3), "pings": self.pings}


def num(text: str) -> int:
    """An integer with an optional k/m/g (binary) suffix: 4096, 4k, 128k, 256m."""
    t = text.strip().lower()
    mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}.get(t[-1:], 1)
    try:
        return int(t[:-1] if mult > 1 else t, 0) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--portal", default="127.0.0.1:3260", metavar="HOST:PORT",
                   help="the target's portal (default 127.0.0.1:3260)")
    p.add_argument("--target", required=True, metavar="IQN", help="the target's name")
    p.add_argument("--initiator", default=INITIATOR, metavar="IQN",
                   help=f"this initiator's name (default {INITIATOR})")
    p.add_argument("--lun", type=int, default=1, help="LUN to write to (default 1: tgtd's "
                   "LUN 0 is its controller)")
    p.add_argument("--bs", type=num, default=4096, help="bytes per WRITE (default 4096)")
    p.add_argument("--qd", type=int, default=32, help="WRITEs outstanding (default 32)")
    p.add_argument("--seconds", type=float, default=10.0, help="run time (default 10)")
    p.add_argument("--size", type=num, help="write only within the first BYTES of the LU "
                   "(default: all of it)")
    p.add_argument("--random", action="store_true",
                   help="random aligned LBAs (default: one after the other, wrapping)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="give up when the target says nothing for this long (default 30 s)")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = p.parse_args(argv)
    if args.qd < 1 or args.seconds <= 0:
        p.error("--qd must be at least 1 and --seconds more than 0")
    if args.bs < 8 or args.bs % 8:
        p.error("--bs must be a multiple of the LU's block size")
    host, _, port = args.portal.rpartition(":")
    if not host:
        host, port = args.portal, "3260"
    errors: list[str] = []
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=args.timeout)
    except OSError as exc:
        print(f"iscsi_write: cannot connect to {args.portal}: {exc}", file=sys.stderr)
        return 2
    with sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = Session(sock, args.lun, args.timeout)
        try:
            s.login(args.initiator, args.target)
            block_size, lu_size = s.capacity()
            region = min(lu_size, args.size or lu_size)
            problem = (f"--bs {args.bs} is not a multiple of the LU's block size {block_size}"
                       if args.bs % block_size else
                       f"--bs {args.bs} is more than the {region} bytes to write in"
                       if args.bs > region else None)
            if problem:
                s.logout()
                print(f"iscsi_write: {problem}", file=sys.stderr)
                return 2
            result = s.run(args.bs, args.qd, args.seconds, region, block_size, args.random,
                           errors)
            s.logout()
        except TargetError as exc:
            print(f"iscsi_write: {exc}", file=sys.stderr)
            return 2
    for line in errors:
        print(f"iscsi_write: {line}", file=sys.stderr)
    if result["errors"] > len(errors):
        print(f"iscsi_write: ... {result['errors'] - len(errors)} more errors", file=sys.stderr)
    result.update(bs=args.bs, qd=args.qd, rw="randwrite" if args.random else "write")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['rw']} bs={args.bs} qd={args.qd}: {result['ios']} commands in "
              f"{result['seconds']:.2f} s, {result['errors']} errors\n"
              f"  {result['iops']:,.0f} IOPS, {result['mbps']:.1f} MB/s, "
              f"p50 {result['p50_ms']:.3f} ms, p99 {result['p99_ms']:.3f} ms\n"
              f"  target: MaxRecvDataSegmentLength {s.target_mrdsl}, "
              f"MaxBurstLength {s.max_burst}")
    return 1 if result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
