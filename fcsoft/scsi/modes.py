"""Mode parameters of a disk LU: MODE SENSE(6)/(10) and MODE SELECT(6)/(10) (SPC-4 6.11-6.14,
7.5), with three pages:

- Caching (08h, SBC-3 6.5.5): WCE is changeable. WCE=1 (default) is a write-back cache:
  writes complete once in the backing store's cache and SYNCHRONIZE CACHE or FUA makes them
  durable; WCE=0 makes every write durable (fsync) before GOOD.
- Control (0Ah, SPC-4 7.5.8): fixed values, nothing changeable (descriptor sense, software
  write protect and the rest are not offered). TAS=1: the transport completes commands
  aborted by another nexus (PREEMPT AND ABORT, LU reset) with TASK ABORTED status.
- Informational Exceptions Control (1Ch, SPC-4 7.5.11): PERF, DEXCPT, MRIE (0h-6h), INTERVAL
  TIMER and REPORT COUNT are changeable; fcsoft never has an exception to report.

Page control: current (00b), changeable (01b) and default (10b) values; saved values (11b) are
not supported: ILLEGAL REQUEST, SAVING PARAMETERS NOT SUPPORTED (39/00). MODE SELECT with SP=1
is INVALID FIELD IN CDB (SPC-4 6.11: a device server without saved pages). Parameters are one
set per LU, shared by every I_T nexus; a LU reset brings back the defaults (SAM-5 6.3.3).
"""

from __future__ import annotations

import struct

from .sense import (
    PARAMETER_LIST_LENGTH_ERROR,
    SAVING_PARAMETERS_NOT_SUPPORTED,
    illegal_request,
    invalid_field_in_cdb,
    invalid_field_in_parameter_list,
)

__all__ = ["CACHING", "CONTROL", "INFORMATIONAL_EXCEPTIONS", "ModePages"]

CACHING = 0x08
CONTROL = 0x0A
INFORMATIONAL_EXCEPTIONS = 0x1C
ALL_PAGES = 0x3F
ALL_SUBPAGES = 0xFF

_WCE = 0x04

# (default values, changeable mask) per page, whole page including the 2-byte page header
_PAGES: dict[int, tuple[bytes, bytes]] = {
    CACHING: (bytes((CACHING, 0x12, _WCE)) + bytes(17),
              bytes((0, 0, _WCE)) + bytes(17)),
    # GLTSD=1 (no log parameters are saved); QUEUE ALGORITHM MODIFIER 1h (unrestricted);
    # TAS=1: commands aborted by another I_T nexus's action end with TASK ABORTED status
    CONTROL: (bytes((CONTROL, 0x0A, 0x02, 0x10, 0x00, 0x40)) + bytes(6),
              bytes(12)),
    # DEXCPT=1: informational exception operations disabled
    INFORMATIONAL_EXCEPTIONS: (bytes((INFORMATIONAL_EXCEPTIONS, 0x0A, 0x08, 0x00)) + bytes(8),
                               bytes((0, 0, 0x88, 0x0F)) + b"\xff" * 8),
}


class ModePages:
    """The mode parameters of one LU (current values) and the MODE SENSE/SELECT logic."""

    def __init__(self) -> None:
        self._current = {code: bytearray(default) for code, (default, _) in _PAGES.items()}

    @property
    def write_cache(self) -> bool:
        """WCE of the caching page."""
        return bool(self._current[CACHING][2] & _WCE)

    def reset(self) -> None:
        """Back to the default values (LU reset, power on)."""
        for code, (default, _) in _PAGES.items():
            self._current[code][:] = default

    def page(self, code: int, control: int = 0) -> bytes:
        """Page `code` with page control 0 (current), 1 (changeable) or 2 (default)."""
        default, changeable = _PAGES[code]
        if control == 1:
            return bytes((code, default[1])) + changeable[2:]
        return default if control == 2 else bytes(self._current[code])

    # --- MODE SENSE -----------------------------------------------------------------------

    def sense(self, cdb: bytes, blocks: int, block_size: int) -> bytes:
        """The MODE SENSE(6) or (10) parameter data for `cdb` (untruncated)."""
        ten = cdb[0] == 0x5A
        dbd = bool(cdb[1] & 0x08)
        llbaa = ten and bool(cdb[1] & 0x10)
        control, code, subpage = cdb[2] >> 6, cdb[2] & 0x3F, cdb[3]
        if control == 3:
            raise illegal_request(SAVING_PARAMETERS_NOT_SUPPORTED, 2, 7)
        if code == ALL_PAGES:
            codes = sorted(_PAGES)
        elif code in _PAGES:
            codes = [code]
        else:
            raise invalid_field_in_cdb(2, 5)
        if subpage not in (0, ALL_SUBPAGES):
            raise invalid_field_in_cdb(3, 7)
        pages = b"".join(self.page(c, control) for c in codes)
        if dbd:
            descriptor = b""
        elif llbaa:
            descriptor = (struct.pack(">Q4xI", blocks, block_size) if control != 1
                          else bytes(16))
        else:
            descriptor = (struct.pack(">II", min(blocks, 0xFFFFFFFF), block_size & 0xFFFFFF)
                          if control != 1 else bytes(8))
        device_specific = 0x10  # DPOFUA: DPO and FUA are supported (SBC-3 6.5.1)
        if ten:
            length = 8 + len(descriptor) + len(pages)
            header = struct.pack(">HBBBxH", length - 2, 0, device_specific,
                                 0x01 if llbaa and descriptor else 0, len(descriptor))
        else:
            length = 4 + len(descriptor) + len(pages)
            header = bytes((min(length - 1, 0xFF), 0, device_specific, len(descriptor)))
        return header + descriptor + pages

    # --- MODE SELECT ----------------------------------------------------------------------

    def select(self, cdb: bytes, data: bytes | bytearray | memoryview, blocks: int,
               block_size: int) -> bool:
        """Apply a MODE SELECT(6)/(10) parameter list (`data`, exactly PARAMETER LIST LENGTH
        bytes). All or nothing: every page is checked before any is applied. Returns True
        when a current value changed (the caller raises MODE PARAMETERS CHANGED)."""
        ten = cdb[0] == 0x55
        if cdb[1] & 0x01:
            raise invalid_field_in_cdb(1, 0)  # SP: no saved pages
        if not data:
            return False
        if not cdb[1] & 0x10:
            raise invalid_field_in_cdb(1, 4)  # PF=0: vendor-specific page format
        data = bytes(data)
        header = 8 if ten else 4
        if len(data) < header:
            raise illegal_request(PARAMETER_LIST_LENGTH_ERROR)
        if ten:
            long_lba = bool(data[4] & 0x01)
            bd_length = struct.unpack_from(">H", data, 6)[0]
            bd_field = 6
        else:
            long_lba, bd_length, bd_field = False, data[3], 3
        if bd_length not in (0, 16 if long_lba else 8):
            raise invalid_field_in_parameter_list(bd_field)
        if len(data) < header + bd_length:
            raise illegal_request(PARAMETER_LIST_LENGTH_ERROR)
        if bd_length:
            self._check_block_descriptor(data, header, long_lba, blocks, block_size)
        updates: list[tuple[int, bytes]] = []
        pos = header + bd_length
        while pos < len(data):
            updates.append(self._check_page(data, pos))
            pos += 2 + data[pos + 1]
        changed = False
        for code, new in updates:
            if self._current[code] != new:
                self._current[code][:] = new
                changed = True
        return changed

    @staticmethod
    def _check_block_descriptor(data: bytes, at: int, long_lba: bool, blocks: int,
                                block_size: int) -> None:
        """A block descriptor may restate the capacity and block size, not change them."""
        if long_lba:
            count, size = struct.unpack_from(">Q4xI", data, at)
            count_ok = count in (0, blocks)
            size_at = at + 12
        else:
            count, size = struct.unpack_from(">I", data, at)[0], int.from_bytes(
                data[at + 5:at + 8], "big")
            count_ok = count in (0, min(blocks, 0xFFFFFFFF))
            size_at = at + 5
        if not count_ok:
            raise invalid_field_in_parameter_list(at, 7)
        if size != block_size:
            raise invalid_field_in_parameter_list(size_at, 7)

    def _check_page(self, data: bytes, pos: int) -> tuple[int, bytes]:
        if pos + 2 > len(data):
            raise illegal_request(PARAMETER_LIST_LENGTH_ERROR)
        code = data[pos] & 0x3F
        if data[pos] & 0x40 or code not in _PAGES:  # SPF: no subpages here
            raise invalid_field_in_parameter_list(pos, 6 if data[pos] & 0x40 else 5)
        default, changeable = _PAGES[code]
        if data[pos + 1] != default[1]:
            raise invalid_field_in_parameter_list(pos + 1, 7)
        end = pos + len(default)
        if end > len(data):
            raise illegal_request(PARAMETER_LIST_LENGTH_ERROR)
        current = self._current[code]
        new = bytearray(data[pos:end])
        new[0] = code  # the PS bit is reserved in MODE SELECT: ignored
        for i in range(2, len(new)):
            fixed = (new[i] ^ current[i]) & ~changeable[i]
            if fixed:
                raise invalid_field_in_parameter_list(pos + i, fixed.bit_length() - 1)
        if code == INFORMATIONAL_EXCEPTIONS and 0x7 <= new[3] & 0x0F <= 0xB:
            raise invalid_field_in_parameter_list(pos + 3, 3)  # MRIE reserved values
        return code, bytes(new)
