"""File-backed LUs do their I/O in worker threads: a disk that stalls never stalls the
fabric or another LU, a FUA write or SYNCHRONIZE CACHE answers only once the data is
durable, and a command aborted while its I/O runs is answered once, as aborted.

The backing file's blocking calls are held on threading.Events (no sleeps, no timing):
if the I/O ran on the event loop, the other commands could not complete and the hang
guard would fail the test."""

from __future__ import annotations

import threading

import pytest
import trio

from fcsoft.scsi.backing import FileBacking

from .helpers import config, rd, running_lab, wr

H1 = "10:00:00:00:c9:00:00:01"
T1 = "50:01:43:80:00:00:00:01"
GUARD = 20  # seconds: a hang guard only


def lab_config(path) -> str:
    return f"""
[[array]]
name = "a"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{T1}"]

[[array.lun]]
name = "disk"
size = "1MiB"
backing = "{path}"

[[array.lun]]
name = "mem"
size = "1MiB"

[[array.host]]
name = "h"
initiators = ["{H1}"]
luns = {{ 0 = "disk", 1 = "mem" }}
"""


class Gate:
    """Holds calls of one FileBacking method until released; counts the calls held."""

    def __init__(self, monkeypatch, method: str) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.threads: list[str] = []
        real = getattr(FileBacking, method)

        def held(backing, *args):
            self.threads.append(threading.current_thread().name)
            self.entered.set()
            self.release.wait(GUARD)
            return real(backing, *args)

        monkeypatch.setattr(FileBacking, method, held)

    async def wait_entered(self) -> None:
        with trio.fail_after(GUARD):
            while not self.entered.is_set():
                await trio.sleep(0.01)


async def _result(box: list, coro) -> None:
    box.append(await coro)


async def test_a_stalled_disk_read_does_not_stall_another_lu(tmp_path, monkeypatch):
    path = tmp_path / "disk.img"
    async with running_lab(config(lab_config(path))) as lab, lab.host(H1) as host, \
            host.connect(T1) as it:
        await it.test_unit_ready(0)
        await it.test_unit_ready(1)
        await wr(it, b"d" * 512, lun=0, lba=3)
        gate = Gate(monkeypatch, "read")
        box: list = []
        with trio.fail_after(GUARD):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_result, box, rd(it, lun=0, lba=3))
                await gate.wait_entered()
                # the file read is held in its thread: the event loop goes on
                assert (await wr(it, b"m" * 512, lun=1, lba=0)).good
                assert (await rd(it, lun=1, lba=0)).data == b"m" * 512
                assert box == []
                gate.release.set()
        assert box[0].good and box[0].data == b"d" * 512
        assert gate.threads and all(t != threading.main_thread().name for t in gate.threads)


@pytest.mark.parametrize("how", ["fua", "synchronize cache"])
async def test_durable_only_after_the_flush(tmp_path, monkeypatch, how):
    path = tmp_path / "disk.img"
    async with running_lab(config(lab_config(path))) as lab, lab.host(H1) as host, \
            host.connect(T1) as it:
        await it.test_unit_ready(0)
        await it.test_unit_ready(1)
        gate = Gate(monkeypatch, "flush")
        box: list = []
        with trio.fail_after(GUARD):
            async with trio.open_nursery() as nursery:
                if how == "fua":
                    nursery.start_soon(_result, box, it.write(0, 5, b"f" * 512, fua=True))
                else:
                    await it.write(0, 5, b"f" * 512)
                    nursery.start_soon(_result, box, it.synchronize_cache(0))
                await gate.wait_entered()
                await trio.sleep(0.05)  # give a wrong early answer the chance to arrive
                assert box == []  # no GOOD before the data is durable
                assert (await rd(it, lun=1, lba=0)).good  # while the loop runs on
                gate.release.set()
        assert len(box) == 1
        assert path.read_bytes()[5 * 512:6 * 512] == b"f" * 512


async def test_a_command_aborted_during_its_io_is_answered_once(tmp_path, monkeypatch):
    from fcsoft.wire.fcp import TaskManagementFlags

    path = tmp_path / "disk.img"
    async with running_lab(config(lab_config(path))) as lab, lab.host(H1) as host, \
            host.connect(T1) as it:
        await it.test_unit_ready(0)
        gate = Gate(monkeypatch, "read")
        port = lab.array("a").ports[0]
        with trio.fail_after(GUARD):
            async with trio.open_nursery() as nursery:
                box: list = []
                nursery.start_soon(_result, box, it.scsi(0, bytes.fromhex("28000000000300000100"),
                                                          data_in_len=512, timeout=GUARD))
                await gate.wait_entered()
                aborted = port.counters["exchanges_aborted"]
                r = await it.task_management(0, TaskManagementFlags.ABORT_TASK_SET)
                assert r.response_code == 0
                assert port.counters["exchanges_aborted"] == aborted + 1
                gate.release.set()
                # the read's own answer never comes (the abort ended it silently for its
                # issuer, SAM-5): the initiator gives up and aborts
                nursery.cancel_scope.deadline = trio.current_time() + 1
        assert box == []
        # the port stays sane: the next command works
        assert (await rd(it, lun=0, lba=3)).good
