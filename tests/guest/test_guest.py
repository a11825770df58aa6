"""Booting real guests (QEMU, TCG): the command channel, FCoE start-up as far as it goes
without an FCF (the FIP solicitation), boot failures, and the image cache.

Guests are expensive (about 10 s each here), so each test groups many checks into one boot.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import trio

from fcsoft.guest import BootError, GuestError, GuestTimeout, image, open_guest
from fcsoft.guest.protocol import RESULT
from fcsoft.wire.wwn import WWN

from .helpers import FrameSink, read_cpio

pytestmark = pytest.mark.tools

MAC_A = "52:54:00:aa:00:01"
MAC_B = "52:54:00:aa:00:02"
VPORT = "20:00:52:54:00:aa:10:01"

# FIP descriptor types (FC-BB-5 table 45)
FIP_MAC, FIP_NAME, FIP_MAX_SIZE = 2, 4, 6


def pids_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_guests_solicit_an_fcf_and_run_commands(guest_tools, nursery):
    sink = FrameSink()
    await nursery.start(sink.serve)
    fcf = ("127.0.0.1", sink.port)
    async with open_guest(fcf, mac=MAC_A, wait_online=False) as a, \
            open_guest(fcf, wwpn="20:00:" + MAC_B, wait_online=False, mtu=1500) as b:
        # each ENode solicits FCFs from its own MAC, naming its WWNN 10:00:MAC (libfcoe)
        for guest, mac, max_size in ((a, MAC_A, 2158), (b, MAC_B, 1498)):
            with trio.fail_after(60):
                descs = await sink.wait_for_solicitation(mac)
            assert descs[FIP_MAC] == bytes.fromhex(mac.replace(":", ""))
            assert descs[FIP_NAME][2:] == WWN("10:00:" + mac).to_bytes8()
            assert int.from_bytes(descs[FIP_MAX_SIZE], "big") == max_size
            assert guest.wwpn == WWN("20:00:" + mac)
        assert sink.connections == 2

        # the fc_host carries the names libfcoe derived from the MAC; no FCF: not Online
        with pytest.raises(GuestTimeout, match=r"the fabric login did not complete within "
                                               r"1 s \(host0 (Linkdown|Offline); console log"):
            await a.wait_online(timeout=1)
        with pytest.raises(GuestTimeout, match="'test -e /nope': still not so after 0.5 s"):
            await a.wait_until("test -e /nope", timeout=0.5)
        await a.wait_until("test -e /sys/class/fc_host/host0", timeout=60)

        hosts = await a.fc_hosts()
        assert [(h.port_name, h.node_name) for h in hosts] == [(a.wwpn, a.wwnn)]
        assert hosts[0].port_state != "Online"
        assert "over eth0" in hosts[0].symbolic_name

        # status, stdout and stderr come back apart
        res = await a.run("echo out; echo err >&2; exit 3")
        assert (res.status, res.stdout, res.stderr) == (3, b"out\n", b"err\n")
        assert not res.ok

        # any bytes survive, both ways, including what looks like the protocol's own lines
        blob = bytes(range(256)) * 64 + b"\n" + RESULT + b" 1 0 ok 0 0\n"
        res = await a.run("cat; printf '\\0tail'", input=blob)
        assert res.stdout == blob + b"\0tail" and res.status == 0
        await a.put_file("/tmp/blob", blob)
        assert (await a.run("md5sum < /tmp/blob", check=True)).output.split()[0] == \
            hashlib.md5(blob).hexdigest()

        # a command past its timeout is killed with everything it started; the guest goes on
        with pytest.raises(GuestTimeout) as exc:
            await a.run("echo started; sleep 300 & sleep 200; echo never", timeout=1.5)
        assert exc.value.stdout == b"started\n"
        res = await a.run("ps -o pid,args | grep -c '[s]leep [23]00'")
        assert res.output.strip() == "0"

        # sg3_utils from the host run in the guest with their libraries
        res = await a.run("sg_luns -V 2>&1; sg_inq -V 2>&1; sg_persist -V 2>&1", check=True)
        assert "version" in res.output.lower()

        # NPIV: a vport is created through sysfs (it stays offline without an FCF)
        await a.create_vport(VPORT)
        names = {h.port_name for h in await a.fc_hosts()}
        assert names == {a.wwpn, WWN(VPORT)}
        assert "vport-" in (await a.run("ls /sys/class/fc_vports")).output

        # sg3_utils against a local SCSI disk (scsi_debug): the sg nodes and tools work
        await b.run("modprobe scsi_debug dev_size_mb=8", check=True)
        await b.settle(1.0)
        [disk] = [d for d in await b.scsi_devices() if d.model == "scsi_debug"]
        assert disk.sg.startswith("/dev/sg") and disk.block.startswith("/dev/sd")
        assert disk.target is None and disk.lun == 0 and disk.vendor == "Linux"
        res = await b.run(f"sg_inq {disk.sg} && sg_luns {disk.sg} && sg_readcap {disk.sg}",
                          check=True)
        assert "scsi_debug" in res.output and "Lun list length" in res.output
        assert "Last LBA=16383" in res.output  # 8 MiB of 512-byte blocks
        res = await b.run(f"dd if=/dev/urandom of=/tmp/in bs=4k count=16 2>/dev/null && "
                          f"sg_dd if=/tmp/in of={disk.sg} bs=512 count=128 && "
                          f"dd if={disk.block} bs=512 count=128 2>/dev/null | cmp - /tmp/in && "
                          f"echo same")
        assert res.output.endswith("same\n"), res.errors

        assert "fcoe" in (await a.dmesg()).lower()
        assert (await a.qmp.execute("query-status"))["status"] == "running"
        assert (await b.run("cat /sys/class/net/eth0/address")).output.strip() == MAC_B

        # a cancelled command is killed in the guest; its late reply is dropped and the
        # next command gets its own
        with trio.move_on_after(1):
            await b.run("sleep 300", timeout=600)
        res = await b.run("echo next; ps -o args | grep -c '[s]leep 300'")
        assert res.output == "next\n0\n"
        qemu_pids = [a.process.pid, b.process.pid]
        logs = [a.console_log, b.console_log]
        assert all(log.exists() for log in logs)
    # QEMU is gone and so are the (successful) guests' console logs
    assert not any(pids_alive(pid) for pid in qemu_pids)
    assert not any(log.exists() for log in logs)


async def test_failures_kill_qemu_and_keep_the_console_log(guest_tools, tmp_path):
    # a kernel panic (no init) is reported in one line that names the kept console log
    with pytest.raises(BootError) as exc:
        async with open_guest(kernel_args=["rdinit=/no-such-init"]):
            pass
    message = str(exc.value)
    assert "\n" not in message and "Kernel panic" in message
    log = message.rsplit("console log: ", 1)[1].rstrip(")")
    assert os.path.exists(log)
    assert "Kernel panic" in Path(log).read_text(errors="replace")
    os.unlink(log)

    # nothing listening where the FCF should be: one line naming it, QEMU killed
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(BootError, match=f"cannot connect to the FCF at 127.0.0.1:{port}"):
        async with open_guest(("127.0.0.1", port), console_log=tmp_path / "console.log"):
            pass

    # an error inside the block: QEMU is killed, the log kept; the agent's end is closed
    pid = None
    with pytest.raises(RuntimeError):
        async with open_guest() as g:
            pid = g.process.pid
            assert (await g.run("echo up")).output == "up\n"
            log = str(g.console_log)
            raise RuntimeError("test")
    assert pid is not None and not pids_alive(pid)
    assert os.path.exists(log)
    os.unlink(log)
    with pytest.raises(GuestError):  # the guest is gone
        await g.run("true")


def test_image_cache_is_reused(guest_tools):
    first = image.build()
    inode = first.initrd.stat().st_ino
    second = image.build()
    assert not second.built
    assert (second.kernel, second.initrd) == (first.kernel, first.initrd)
    assert second.initrd.stat().st_ino == inode  # the same file, not rebuilt
    assert first.initrd.parent.name == first.version  # keyed by kernel version
    entries = read_cpio(first.initrd.read_bytes())
    base = f"lib/modules/{first.version}"
    for name in ("init", "etc/fcsoft/agent", "bin/busybox", "usr/bin/sg_inq",
                 "usr/bin/sg_persist", "usr/bin/sg_dd", f"{base}/modules.dep"):
        assert name in entries, name
    modules = {n.rsplit("/", 1)[1] for n in entries if n.startswith(base)}
    for m in ("fcoe.ko", "libfcoe.ko", "libfc.ko", "scsi_transport_fc.ko", "virtio_net.ko",
              "sd_mod.ko", "sg.ko", "virtio_console.ko"):
        assert m in modules, m
    assert any("libsgutils2" in n for n in entries)  # sg3_utils' shared library came along
