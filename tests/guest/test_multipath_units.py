"""Multipath's and NPIV per VM's pieces that need no QEMU: multipath.conf, the kernel's
multipath status, a map's state as the guest prints it, the FC remote ports, and what
VerifiedIo grew for them (going round the blocks, reading the log as it grows, an event's
window and stall). The guest output below is what a Debian 6.1 guest printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fcsoft.guest.multipath import (
    DmPath,
    MultipathSettings,
    multipath_conf,
    parse_map_state,
    parse_multipath_status,
    parse_path_info,
)
from fcsoft.guest.npiv import parse_remote_ports
from fcsoft.guest.session import CommandResult
from fcsoft.guest.verified_io import IoReport, VerifiedIo, parse_log
from fcsoft.wire.wwn import WWN

P1 = WWN("50:01:43:80:00:00:00:01")
P2 = WWN("50:01:43:80:00:00:00:02")

# P1 (sdb, 8:16) failed after `port disable`, P2 (sda) non-optimized in use
STATE = """28.10
0 131072 multipath 2 1 0 0 2 2 E 0 1 2 8:16 F 1 0 1 E 0 1 2 8:0 A 0 0 1
stat sda 4 0
stat sdb 4 0
mpd 8:0 ready 10
mpd 8:16 faulty 50
"""
INFO = """info 8:16 sdb 0:0:1:0 0x5001438000000001
info 8:0 sda 0:0:0:0 0x5001438000000002
"""


def test_multipath_status_is_decoded():
    st = parse_multipath_status("0 131072 multipath 2 1 0 0 2 2 E 0 1 2 8:16 F 1 0 1 "
                                "E 0 1 2 8:0 A 0 0 1")
    assert st.queue_io and st.pg_init_count == 0 and st.next_group == 2
    assert [g.state for g in st.groups] == ["enabled", "enabled"]
    assert st.groups[0].paths == (DmPath("8:16", False, 1),)
    assert st.groups[1].paths == (DmPath("8:0", True, 0),)
    assert st.group_of("8:0") == 2 and st.group_of("8:32") == 0
    # one group, both paths, round-robin's single path argument
    st = parse_multipath_status("0 8 multipath 2 0 0 0 1 1 A 0 2 1 8:0 A 0 0 8:16 A 0 0")
    assert st.next_group == 1 and len(st.groups[0].paths) == 2


@pytest.mark.parametrize("line", [
    "", "0 8 multipath", "0 8 multipath 0 0 1 1 X 0 0 0",
    "0 8 multipath 0 0 1 1 A 0 1 0 8:0 Q 0", "0 8 multipath x", "0 8 multipath 0 0 2 1 A 0 0 0",
])
def test_a_status_that_is_not_multipath_is_a_value_error(line):
    with pytest.raises(ValueError):
        parse_multipath_status(line)


def test_map_state_names_each_path_by_its_array_port():
    info = parse_path_info(INFO + "info 8:32 sdc 1:0:0:0 -\nnoise\n")
    assert info["8:16"].target == P1 and info["8:0"].dev == "sda"
    assert info["8:32"].target is None
    st = parse_map_state("mpatha", STATE, info)
    assert st.uptime == 28.1
    p1, p2 = st.path(P1), st.path(P2)
    assert (p1.dev, p1.active, p1.fail_count, p1.group, p1.checker) == \
        ("sdb", False, 1, 1, "faulty")
    assert (p2.dev, p2.active, p2.group, p2.checker, p2.priority, p2.ios) == \
        ("sda", True, 2, "ready", 10, 4)
    assert st.using == [p2]
    with pytest.raises(KeyError):
        st.path(WWN("50:01:43:80:00:00:00:09"))
    with pytest.raises(ValueError):
        parse_map_state("mpatha", "28.1\n", info)


def test_multipath_conf_and_its_checks():
    conf = multipath_conf(MultipathSettings(fast_io_fail_tmo=3, dev_loss_tmo=60))
    assert "fast_io_fail_tmo 3\n" in conf and "dev_loss_tmo 60\n" in conf
    assert 'vendor "FCSOFT"' in conf and "prio alua" in conf and "failback immediate" in conf
    for bad in ({"fast_io_fail_tmo": 10, "dev_loss_tmo": 10}, {"polling_interval": 0},
                {"no_path_retry": "never"}, {"vendor": 'FC"SOFT'}):
        with pytest.raises(ValueError):
            MultipathSettings(**bad)  # type: ignore[arg-type]


def test_remote_ports_by_fc_host():
    text = ("host=host0\trport=rport-0:0-0\tport_name=0x2ffc00051e000001\tnode_name=0x10000005"
            "1e000001\tport_id=0xfffffc\tport_state=Online\troles=Directory Server\n"
            "host=host2\trport=rport-2:0-1\tport_name=0x5001438000000002\tnode_name=0x500143"
            "8000000000\tport_id=0x010200\tport_state=Blocked\troles=FCP Target\n"
            "garbage line\n")
    ns, p2 = parse_remote_ports(text)
    assert ns.well_known and not p2.well_known
    assert (p2.host, p2.wwpn, p2.port_id, p2.state) == ("host2", P2, "0x010200", "Blocked")


# -- VerifiedIo -----------------------------------------------------------------------


def test_going_round_the_blocks_changes_each_blocks_data_per_round():
    io = VerifiedIo(None, "/dev/mapper/mpatha", blocks=3, pattern_blocks=4,  # type: ignore[arg-type]
                    block_size=512, writes=100, read_lag=2)
    # first round as before; the next rounds shift the pattern, so a stale block shows
    assert [io.expected_block(i) for i in range(3)] == [io.pattern[i * 512:(i + 1) * 512]
                                                       for i in range(3)]
    # write 3, block 0's second round: pattern block 1; write 7, block 1's third: 3
    assert io.expected_block(3) == io.expected_block(1) != io.expected_block(0)
    assert io.expected_block(7) == io.pattern[3 * 512:]
    with pytest.raises(ValueError):
        io.expected(4)
    with pytest.raises(ValueError):
        VerifiedIo(None, "/dev/sdb", blocks=3, writes=10, read_lag=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        VerifiedIo(None, "/dev/sdb", writes=0)  # type: ignore[arg-type]
    report = parse_log("W 0 0 1.0\nW 1 0 1.1\nW 2 0 1.2\nW 3 0 1.3\nW 4 1 1.4\nW 5 0 1.5\n")
    # block first_block + i % 3: 3 overwrote 0; 4 failed after 1 succeeded
    assert io.last_writes(report) == {0: [3], 1: [1, 4], 2: [5]}


def test_an_events_window_and_stall():
    report = parse_log("W 0 0 10.0\nR 0 0 ok 10.1\nW 1 0 15.3\nR 1 0 ok 15.4\nW 2 1 15.5\n"
                       "R 2 0 bad 15.6\n")
    assert [r.index for r in report.window(10.05, 15.45)] == [0, 1, 1]
    # from the last completion before the window (10.1) to the first in it (15.3)
    assert report.stall(12.0, 16.0) == 5.2
    # nothing completed in the window: a stall still going on, to its end
    assert report.stall(16.0, 18.0) == 2.4
    assert report.stall(5.0, 6.0) == 1.0  # before the first I/O: from the window's start
    assert IoReport().stall(1.0, 2.0) == 1.0


class FakeGuest:
    """Answers VerifiedIo.poll's command from a growing log."""

    def __init__(self) -> None:
        self.log = b""
        self.errors = b""
        self.commands: list[str] = []

    async def run(self, command: str, **_: object) -> CommandResult:
        self.commands.append(command)
        if command.startswith("tail -c +"):
            offset = int(command.split()[2][1:]) - 1
            return CommandResult(command, 0, self.log[offset:],
                                 b"errors\n" if self.errors else b"")
        if command.startswith("tail -c 4000"):
            return CommandResult(command, 0, self.errors, b"")
        raise AssertionError(command)


async def test_poll_reads_only_what_the_log_gained():
    g = FakeGuest()
    io = VerifiedIo(g, "/dev/sdb")  # type: ignore[arg-type]
    g.log = b"W 0 0 1.00\nR 0 0 ok 1.0"  # the loop is writing the line now
    report = await io.poll()
    assert [r.op for r in report.records] == ["W"]
    g.log += b"5\nP 1.10\n"
    assert await io.poll() is report
    assert [r.uptime for r in report.records] == [1.0, 1.05] and report.pauses == []
    g.log += b"C 2.00\nW 1 1 2.10\n"
    g.errors = b"write 1: dd: error writing '/dev/sdb': Input/output error\n"
    await io.poll()
    assert report.pauses == [(1.1, 2.0)]
    assert [r.index for r in report.failed] == [1]
    assert "Input/output error" in report.errors
    assert g.commands[0] == ("tail -c +1 /run/fcsoft-io/log; [ -s /run/fcsoft-io/errors ] "
                             "&& echo >&2 errors")
    assert g.commands[1].startswith(f"tail -c +{len(b'W 0 0 1.00 R 0 0 ok 1.0') + 1} ")


def test_examples_exist():
    root = Path(__file__).resolve().parents[2] / "examples"
    assert (root / "multipath.py").is_file() and (root / "npiv_per_vm.py").is_file()
