"""The project's own documentation (docs/, README.md) is complete and cannot rot:

- every hex example of docs/wire.md is what fcsoft's encoders produce today
  (tests/docs/wire_examples.py), decodes with fcsoft's decoder into the frame its title names,
  and decodes with tshark (through a pcap of link type 225) with no complaint and the intended
  ELS, name-server or SCSI command;
- every relative link of README.md and docs/*.md points at a file of the repository, and no
  file of the repository refers to anything outside it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from fcsoft.wire.encap import Frame, FrameDecoder
from tests.conftest import require_tool
from tests.docs.wire_examples import DOC, doc_blocks, frames, hex_block, parse_block
from tests.interop.test_tshark import decode_problems, ints, tshark_fields

REPO = Path(__file__).resolve().parents[2]
TITLE = re.compile(r"(?P<name>.+): S_ID (?P<s_id>[0-9a-f]{6}) D_ID (?P<d_id>[0-9a-f]{6}) "
                   r"OX_ID (?P<ox_id>[0-9a-f]{4}) RX_ID (?P<rx_id>[0-9a-f]{4}), "
                   r"(?P<length>\d+) bytes")


def test_wire_examples_are_the_encoders_bytes():
    blocks = doc_blocks(DOC.read_text())
    expected = [parse_block(hex_block(f)) for f in frames()]
    assert len(blocks) == len(expected) > 10
    for (title, data), (want_title, want) in zip(blocks, expected, strict=True):
        assert (title, data.hex(" ")) == (want_title, want.hex(" ")), (
            "docs/wire.md is out of date: python -m tests.docs.wire_examples --write")


def test_wire_examples_decode_as_their_titles_say():
    for title, data in doc_blocks(DOC.read_text()):
        m = TITLE.fullmatch(title)
        assert m, title
        events = FrameDecoder().feed(data)
        assert len(events) == 1 and isinstance(events[0], Frame), (title, events)
        h = events[0].header
        assert (f"{h.s_id:06x}", f"{h.d_id:06x}", f"{h.ox_id:04x}", f"{h.rx_id:04x}") == (
            m["s_id"], m["d_id"], m["ox_id"], m["rx_id"]), title
        assert len(data) == int(m["length"]) == (int.from_bytes(data[12:14], "big") & 0x3FF) * 4


def test_wire_examples_decode_with_tshark(tmp_path):
    require_tool("tshark")
    from fcsoft.wire import pcap
    from fcsoft.wire.encap import trace_record

    blocks = doc_blocks(DOC.read_text())
    path = tmp_path / "wire-examples.pcap"
    with open(path, "wb") as f:
        f.write(pcap.file_header())
        for i, (_title, data) in enumerate(blocks):
            f.write(pcap.record(1_700_000_000 + i / 1000, trace_record(data)))
    assert decode_problems(path) == []
    rows = tshark_fields(path, ["fc.crc.status", "fcels.opcode", "fcdns.opcode",
                                "scsi_sbc.opcode", "fcp.dl"])
    assert len(rows) == len(blocks)
    for sample, row in zip(frames(), rows, strict=True):
        assert ints(row["fc.crc.status"]) == [1], sample.name
        if sample.els_opcode is not None:
            assert ints(row["fcels.opcode"]) == [sample.els_opcode], sample.name
        if sample.ct_opcode is not None:
            assert ints(row["fcdns.opcode"]) == [sample.ct_opcode], sample.name
        if sample.scsi_opcode is not None:
            assert ints(row["scsi_sbc.opcode"]) == [sample.scsi_opcode], sample.name
            assert ints(row["fcp.dl"]) == [512], sample.name


def _repo_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], cwd=REPO, capture_output=True, check=True)
    return [REPO / p for p in out.stdout.decode().split("\0") if p]


def test_links_point_into_the_repository():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert {p.name for p in pages} >= {"README.md", "wire.md", "behaviour.md", "config.md"}
    readme = (REPO / "README.md").read_text()
    for page in ("docs/wire.md", "docs/behaviour.md", "docs/config.md"):
        assert f"]({page})" in readme, f"README.md does not link {page}"
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).resolve().is_file(), f"{page.name}: {target}"


def test_nothing_refers_to_files_outside_the_repository():
    """No private notes: the repository stands on its own (a clone has no ../shared)."""
    bad = re.compile(r"\.\./shared|shared/(reference|tools|CONTRACT)|CONTRACT(\.md| section|"
                     r" \d)|scsi-target\.md|fc-codes\.md")
    me = Path(__file__).resolve()
    found = []
    for path in _repo_files():
        if path.resolve() == me or not path.is_file() or path.suffix in (".img", ".pcap"):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if bad.search(line):
                found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert found == []
