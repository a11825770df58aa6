"""The hex examples of docs/wire.md, built with fcsoft's own encoders (fcsoft.wire), so that
the page shows exactly the bytes fcsoft sends and reads.

    python -m tests.docs.wire_examples           # print the examples
    python -m tests.docs.wire_examples --write   # rewrite the hex blocks of docs/wire.md

tests/docs/test_docs.py holds the page to these bytes, decodes them with fcsoft's decoder and
with tshark. The frames form one conversation (a login, a READ and a WRITE), with OX_IDs and
N_Port_IDs that pair up as a decoder expects.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from fcsoft.wire import ns
from fcsoft.wire.ct import NsCommand
from fcsoft.wire.els import (
    ElsCommand,
    FcpServiceParameters,
    Prli,
    PrliResponseCode,
    ServiceParameterPage,
    ServiceParameters,
)
from fcsoft.wire.fcp import FcpCmnd, FcpRsp, int_to_lun
from fcsoft.wire.header import FcType
from fcsoft.wire.wwn import WWN
from tests.interop.frames import (
    DIRECTORY,
    F_PORT,
    F_PORT_WWN,
    FABRIC_WWN,
    HOST,
    HOST_WWNN,
    HOST_WWPN,
    TARGET,
    TARGET_WWNN,
    TARGET_WWPN,
    SampleFrame,
    _Conversation,
    _fcp_exchange,
    _read10,
    _write10,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "wire.md"
BLOCK = re.compile(r"```hex\n(.*?)```\n", re.S)

#: a recognisable 512-byte block: what the READ returns and the WRITE sends
BLOCK_DATA = bytes(range(256)) * 2


def frames() -> list[SampleFrame]:
    """Login (fabric, name server, target), a READ(10) and a WRITE(10) of one block."""
    c = _Conversation()
    c.els("FLOGI", 0, F_PORT, ServiceParameters.flogi(HOST_WWPN, HOST_WWNN).encode(),
          ServiceParameters.flogi_accept(F_PORT_WWN, FABRIC_WWN).encode(), reply_d_id=HOST)
    plogi = ServiceParameters.plogi
    c.els("PLOGI to the name server", HOST, DIRECTORY, plogi(HOST_WWPN, HOST_WWNN).encode(),
          plogi(WWN("20:fc:00:05:1e:00:00:01"), FABRIC_WWN, command=ElsCommand.LS_ACC).encode())
    c.ns(NsCommand.RFT_ID, HOST, ns.RftIdRequest(HOST, ns.Fc4Types({FcType.FCP})).encode())
    c.ns(NsCommand.GID_FT, HOST, ns.GidFtRequest(FcType.FCP).encode(),
         ns.GidFtAccept((TARGET,)).encode())
    c.els("PLOGI", HOST, TARGET, plogi(HOST_WWPN, HOST_WWNN).encode(),
          plogi(TARGET_WWPN, TARGET_WWNN, command=ElsCommand.LS_ACC).encode())
    c.els("PRLI", HOST, TARGET,
          Prli((ServiceParameterPage(establish_image_pair=True, service_parameters=(
              FcpServiceParameters.INITIATOR_FUNCTION
              | FcpServiceParameters.READ_XFER_RDY_DISABLED)),)).encode(),
          Prli((ServiceParameterPage(establish_image_pair=True,
                                     response_code=PrliResponseCode.REQUEST_EXECUTED,
                                     service_parameters=FcpServiceParameters.TARGET_FUNCTION
                                     | FcpServiceParameters.READ_XFER_RDY_DISABLED),),
               ElsCommand.LS_ACC).encode())
    lun0 = int_to_lun(0)
    _fcp_exchange(c, "READ(10)", FcpCmnd(lun=lun0, cdb=_read10(0x20, 1), rddata=True,
                                         fcp_dl=512),
                  data_in=BLOCK_DATA, rsp=FcpRsp(), scsi_opcode=0x28, frame_size=2048)
    _fcp_exchange(c, "WRITE(10)", FcpCmnd(lun=lun0, cdb=_write10(0x20, 1), wrdata=True,
                                          fcp_dl=512),
                  data_out=BLOCK_DATA, rsp=FcpRsp(), scsi_opcode=0x2A, frame_size=2048)
    return c.frames


def hex_block(frame: SampleFrame) -> str:
    """One fenced block: a title line, then offset and 16 bytes per line."""
    raw = frame.encode()
    h = frame.header
    lines = [(f"# {frame.name}: S_ID {h.s_id:06x} D_ID {h.d_id:06x} OX_ID {h.ox_id:04x} "
              f"RX_ID {h.rx_id:04x}, {len(raw)} bytes")]
    for off in range(0, len(raw), 16):
        chunk = raw[off:off + 16]
        left = " ".join(f"{b:02x}" for b in chunk[:8])
        right = " ".join(f"{b:02x}" for b in chunk[8:])
        lines.append(f"{off:04x}  {left}  {right}".rstrip())
    return "\n".join(lines) + "\n"


def parse_block(text: str) -> tuple[str, bytes]:
    """(title, bytes) of one block's text (the part between the fences)."""
    title, data = "", bytearray()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line[1:].strip()
        elif line.strip():
            data += bytes.fromhex("".join(line.split()[1:]))
    return title, bytes(data)


def doc_blocks(text: str) -> list[tuple[str, bytes]]:
    return [parse_block(m.group(1)) for m in BLOCK.finditer(text)]


def rewrite(text: str) -> str:
    """`text` with its hex blocks replaced, in order, by the current encoders' bytes."""
    blocks = iter([hex_block(f) for f in frames()])
    return BLOCK.sub(lambda m: f"```hex\n{next(blocks)}```\n", text)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        DOC.write_text(rewrite(DOC.read_text()))
    else:
        for f in frames():
            print("```hex\n" + hex_block(f) + "```\n")
