"""The guest lab's pieces that need no QEMU: the agent protocol parser, the cpio writer,
ENode addresses, the QEMU command line, module dependency closure."""

from __future__ import annotations

import io

import pytest

from fcsoft.guest import fcoe as fc
from fcsoft.guest import image as img
from fcsoft.guest.cpio import CpioWriter
from fcsoft.guest.errors import GuestError, MissingTool, package_for
from fcsoft.guest.protocol import AgentParser, ProtocolError, Ready, Reply, encode_request
from fcsoft.guest.qemu import FcoeNic, QemuConfig
from fcsoft.wire.wwn import WWN

from .helpers import read_cpio

# -- protocol ---------------------------------------------------------------------------


def test_request_bytes():
    assert encode_request(7, b"echo hi", b"in", 2.5) == b"RUN 7 2.500 7 2\necho hiin"
    assert encode_request(8, b"true") == b"RUN 8 - 4 0\ntrue"


def reply_bytes(rid: int, status: int, how: str, out: bytes, err: bytes) -> bytes:
    head = f"FCSOFT-RESULT {rid} {status} {how} {len(out)} {len(err)}\n".encode()
    return head + out + err


def test_parser_reads_ready_and_replies_fed_one_byte_at_a_time():
    tricky = bytes(range(256)) + b"\nFCSOFT-RESULT 9 0 ok 0 0\n" + b"\0" * 10
    stream = (b"FCSOFT-READY 6.1.0-57-amd64\n" + reply_bytes(1, 0, "ok", tricky, b"")
              + reply_bytes(2, 137, "timeout", b"part", b"err\n"))
    parser = AgentParser()
    events = []
    for i in range(len(stream)):
        events += parser.feed(stream[i: i + 1])
    assert events == [Ready("6.1.0-57-amd64"), Reply(1, 0, False, tricky, b""),
                      Reply(2, 137, True, b"part", b"err\n")]


def test_parser_returns_nothing_until_a_payload_is_complete():
    parser = AgentParser()
    data = reply_bytes(3, 1, "ok", b"x" * 100, b"y" * 50)
    assert parser.feed(data[:-1]) == []
    assert parser.feed(data[-1:]) == [Reply(3, 1, False, b"x" * 100, b"y" * 50)]


@pytest.mark.parametrize("garbage", [b"hello\n", b"FCSOFT-RESULT 1 x ok 0 0\n",
                                     b"FCSOFT-RESULT 1 0 maybe 0 0\n", b"z" * 5000])
def test_parser_rejects_garbage(garbage):
    with pytest.raises(ProtocolError):
        AgentParser().feed(garbage)


# -- cpio -------------------------------------------------------------------------------


def test_cpio_round_trip():
    buf = io.BytesIO()
    w = CpioWriter(buf)
    w.file("a/b/c.txt", b"hello", 0o600)
    w.file("a/odd", b"12345")  # lengths that need padding
    w.symlink("bin/sh", "busybox")
    w.directory("a")  # again: written once
    w.close()
    entries = read_cpio(buf.getvalue())
    assert list(entries) == ["a", "a/b", "a/b/c.txt", "a/odd", "bin", "bin/sh"]
    assert entries["a/b/c.txt"] == (0o100600, b"hello")
    assert entries["a/odd"][1] == b"12345"
    assert entries["bin/sh"] == (0o120777, b"busybox")
    assert entries["a"][0] == 0o40755


# -- ENode addresses --------------------------------------------------------------------


def test_wwpn_sets_the_mac_and_names_follow_libfcoe():
    mac = fc.mac_from_wwpn("20:00:52:54:00:aa:00:01")
    assert mac == "52:54:00:aa:00:01"
    assert fc.wwpn_for_mac(mac) == WWN("20:00:52:54:00:aa:00:01")
    assert fc.wwnn_for_mac(mac) == WWN("10:00:52:54:00:aa:00:01")
    assert fc.mac_from_wwpn("2000525400AA0001") == mac


@pytest.mark.parametrize("wwpn", ["21:00:52:54:00:aa:00:01", "10:00:52:54:00:aa:00:01",
                                  "50:01:43:80:00:00:00:01"])
def test_other_wwpns_are_refused_with_the_reason(wwpn):
    with pytest.raises(ValueError, match="20:00 followed by the NIC's MAC"):
        fc.mac_from_wwpn(wwpn)


@pytest.mark.parametrize("text,why", [("01:00:5e:00:00:01", "multicast"),
                                      ("00:00:00:00:00:00", "all zeros"),
                                      ("52:54:00:aa:00", "six colon-separated")])
def test_bad_macs(text, why):
    with pytest.raises(ValueError, match=why):
        fc.parse_mac(text)


def test_default_macs_count_up_past_those_taken():
    assert fc.default_macs(2, set()) == ["52:54:00:fc:00:01", "52:54:00:fc:00:02"]
    assert fc.default_macs(2, {"52:54:00:fc:00:01", "52:54:00:fc:00:03"}) == [
        "52:54:00:fc:00:02", "52:54:00:fc:00:04"]


def test_vport_names():
    wwpn, wwnn = fc.parse_vport("20:00:52:54:00:aa:00:01")
    assert wwnn == WWN("10:00:52:54:00:aa:00:01")
    assert fc.vport_create_arg(wwpn, wwnn) == "2000525400aa0001:1000525400aa0001"
    _, node = fc.parse_vport("21:00:00:00:00:00:00:07,20:00:00:00:00:00:00:99")
    assert node == WWN("20:00:00:00:00:00:00:99")


# -- QEMU command line -------------------------------------------------------------------


def test_qemu_command_line(tmp_path):
    cfg = QemuConfig(kernel=tmp_path / "k", initrd=tmp_path / "i",
                     console_log=tmp_path / "c.log", agent_socket=tmp_path / "a.sock",
                     control_socket=tmp_path / "k.sock", qmp_socket=tmp_path / "q.sock",
                     nics=[FcoeNic("127.0.0.1", 3260, "52:54:00:aa:00:01", 2500)],
                     incoming="defer", extra_args=["-device", "virtio-rng-pci"])
    argv = cfg.argv("qemu")
    line = " ".join(argv)
    assert argv[0] == "qemu"
    assert ("stream,id=fcoe0,server=off,addr.type=inet,addr.host=127.0.0.1,addr.port=3260"
            in argv)
    assert "virtio-net-pci,netdev=fcoe0,mac=52:54:00:aa:00:01,host_mtu=2500" in argv
    assert "-accel tcg" in line and "kvm" not in line
    assert f"path={tmp_path / 'q.sock'},server=off" in line
    assert "name=fcsoft.agent" in line and "name=fcsoft.control" in line
    assert argv[-4:] == ["-incoming", "defer", "-device", "virtio-rng-pci"]
    cfg.kvm = True
    assert "-accel kvm -accel tcg" in " ".join(cfg.argv("qemu"))


# -- modules and tools ----------------------------------------------------------------------


def test_module_closure_follows_modules_dep(tmp_path):
    (tmp_path / "modules.dep").write_text(
        "kernel/drivers/scsi/fcoe/fcoe.ko.xz: kernel/drivers/scsi/libfc/libfc.ko.xz "
        "kernel/drivers/scsi/scsi_mod.ko.xz\n"
        "kernel/drivers/scsi/libfc/libfc.ko.xz: kernel/drivers/scsi/scsi_mod.ko.xz\n"
        "kernel/drivers/scsi/scsi_mod.ko.xz:\n"
        "kernel/drivers/md/dm-multipath.ko.xz: kernel/drivers/md/dm-mod.ko.xz\n"
        "kernel/drivers/md/dm-mod.ko.xz:\n")
    (tmp_path / "modules.builtin").write_text("kernel/fs/configfs/configfs.ko\n")
    assert img.module_closure(tmp_path, ["fcoe", "configfs", "dm_multipath"]) == [
        "kernel/drivers/scsi/libfc/libfc.ko.xz", "kernel/drivers/scsi/scsi_mod.ko.xz",
        "kernel/drivers/scsi/fcoe/fcoe.ko.xz", "kernel/drivers/md/dm-mod.ko.xz",
        "kernel/drivers/md/dm-multipath.ko.xz"]
    with pytest.raises(GuestError, match="kernel module nope is not in"):
        img.module_closure(tmp_path, ["nope"])


def test_missing_tools_name_their_package():
    assert str(MissingTool("qemu-system-x86_64")) == \
        "qemu-system-x86_64 not found (install qemu-system-x86)"
    assert package_for("busybox") == "busybox-static"
    assert package_for("depmod") == "kmod"
    assert package_for("sg_persist") == "sg3-utils"


def test_orphaned_work_directories_are_removed(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    from fcsoft.guest import session

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    orphan = tmp_path / f"fcsoft-guest-{child.pid}-abc"
    mine = tmp_path / f"fcsoft-guest-{os.getpid()}-def"
    other = tmp_path / "fcsoft-guest-notapid"
    for d in (orphan, mine, other):
        d.mkdir()
    session._remove_orphaned_workdirs()
    assert not orphan.exists() and mine.exists() and other.exists()
