"""Live migration's pieces that need no QEMU: the destination's command line, the agent
stream spliced from the source QEMU's socket to the destination's, the verified-I/O log."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from fcsoft.guest.errors import GuestError
from fcsoft.guest.migration import MigrationResult
from fcsoft.guest.protocol import encode_request
from fcsoft.guest.qemu import FcoeNic, QemuConfig
from fcsoft.guest.session import Guest
from fcsoft.guest.verified_io import IoRecord, VerifiedIo, parse_log


def test_destination_command_line_waits_for_the_migration_and_appends_the_console(tmp_path):
    cfg = QemuConfig(kernel=tmp_path / "k", initrd=tmp_path / "i",
                     console_log=tmp_path / "console.log", agent_socket=tmp_path / "a",
                     control_socket=tmp_path / "c", qmp_socket=tmp_path / "q",
                     nics=[FcoeNic("127.0.0.1", 3226, "52:54:00:fc:20:01")],
                     incoming=f"unix:{tmp_path / 'm.sock'}", console_append=True)
    argv = cfg.argv("qemu")
    assert argv[argv.index("-incoming") + 1] == f"unix:{tmp_path / 'm.sock'}"
    assert f"file,id=console,path={tmp_path / 'console.log'},append=on" in argv
    # the same NIC and MAC as the source: a new connection to the same FCF
    assert "virtio-net-pci,netdev=fcoe0,mac=52:54:00:fc:20:01" in argv
    plain = QemuConfig(kernel=Path("k"), initrd=Path("i"), console_log=Path("c.log"),
                       agent_socket=Path("a"), control_socket=Path("c"), qmp_socket=Path("q"))
    assert "-incoming" not in plain.argv("qemu")
    assert "file,id=console,path=c.log" in plain.argv("qemu")


def reply(rid: int, out: bytes) -> bytes:
    return f"FCSOFT-RESULT {rid} 0 ok {len(out)} 0\n".encode() + out


def fake_guest() -> tuple[Guest, trio.abc.Stream, trio.abc.Stream]:
    """A Guest on memory streams; (guest, the source's agent end, its control end)."""
    host_agent, vm_agent = trio.testing.memory_stream_pair()
    host_control, vm_control = trio.testing.memory_stream_pair()
    g = Guest(host_agent, host_control, None, None, Path("console.log"), "6.1",  # type: ignore[arg-type]
              ["52:54:00:fc:20:01"])
    return g, vm_agent, vm_control


async def read_request(stream: trio.abc.Stream) -> bytes:
    data = b""
    while b"\n" not in data:
        data += await stream.receive_some(4096)
    return data


async def test_a_command_running_across_a_migration_gets_its_whole_output(nursery):
    g, source, _ = fake_guest()
    dst_host, dest = trio.testing.memory_stream_pair()
    output = b"line\n" * 1000
    got: list = []

    async def run() -> None:
        got.append(await g.run("long command", timeout=None))

    nursery.start_soon(run)
    assert (await read_request(source)).startswith(b"RUN 1 - 12 0\n")
    # the guest wrote the head of the reply before the source stopped ...
    whole = reply(1, output)
    await source.send_all(whole[:2000])
    # ... the migration completes: the host switches over, then the source dies
    g._agent_next.append(dst_host)
    g._agent_out = dst_host
    await trio.testing.wait_all_tasks_blocked()
    assert got == []
    await source.aclose()
    # and the destination sends the rest
    await dest.send_all(whole[2000:])
    await trio.testing.wait_all_tasks_blocked()
    assert got and got[0].stdout == output and got[0].status == 0
    # the next request goes to the destination, and its reply is read from there
    nursery.start_soon(run)
    assert (await read_request(dest)) == encode_request(2, b"long command")
    await dest.send_all(reply(2, b"again"))
    await trio.testing.wait_all_tasks_blocked()
    assert got[1].stdout == b"again"


async def test_the_agent_ending_without_a_migration_is_still_an_error():
    g, source, _ = fake_guest()
    g._gone = _gone  # type: ignore[method-assign]
    async with trio.open_nursery() as nursery:
        async def run() -> None:
            with pytest.raises(GuestError, match="gone"):
                await g.run("x")

        nursery.start_soon(run)
        await read_request(source)
        await source.aclose()


async def _gone() -> str:
    return "the guest is gone"


async def test_a_guest_not_started_by_open_guest_cannot_migrate():
    g, _, _ = fake_guest()
    with pytest.raises(GuestError, match="cannot be migrated"):
        await g.migrate()


def test_migration_summary():
    m = MigrationResult(1, "completed", 974, 84, 2, 101_291_212, 269_877_248, 3, 0.18, 0.98,
                        0.003, 1.24, 10, 11, {})
    assert m.summary() == ("migration 1: downtime 84 ms, total 974 ms (setup 2 ms), 96.6 MiB "
                           "of 257 MiB RAM sent in 3 passes; destination ready in 0.18 s, "
                           "switch-over 3 ms, 1.24 s in all")


def test_verified_io_log():
    log = ("W 0 0 10.01\nW 1 0 10.05\nR 0 0 ok 10.07\nP 10.08\nC 10.90\nW 2 0 10.95\n"
           "R 1 0 bad 11.00\nW 3 1 12.50\nR 2 1 - 12.60\ngarbage\nW x 0 1\n")
    report = parse_log(log, "write 3: dd: I/O error\n")
    assert report.writes == 4 and report.reads == 3
    assert report.written == [0, 1, 2]
    assert report.miscompared == [IoRecord("R", 1, 0, "bad", 11.0)]
    assert [r.index for r in report.failed] == [3, 2]
    assert report.pauses == [(10.08, 10.9)]
    assert report.longest_gap() == (1.5, 12.5)
    assert report.longest_gap(10.0, 11.0) == (0.88, 10.95)


def test_verified_io_pattern_is_known_to_the_host():
    io = VerifiedIo(None, "/dev/sdb", pattern_blocks=4, block_size=512)  # type: ignore[arg-type]
    assert len(io.pattern) == 2048
    assert io.expected_block(5) == io.expected_block(1) != io.expected_block(2)
    assert io.expected(3) == io.pattern[:1536]
    assert VerifiedIo(None, "/dev/sdc", pattern_blocks=4,  # type: ignore[arg-type]
                      block_size=512).pattern == io.pattern  # seeded
    with pytest.raises(ValueError):
        VerifiedIo(None, "/dev/sdb", pattern_blocks=1)  # type: ignore[arg-type]
