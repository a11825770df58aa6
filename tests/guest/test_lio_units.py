"""The LIO target's pieces that need no QEMU: --lun and --acl parsing, the spec's checks,
the configfs script, guest memory, and the plan open_guest makes for a target."""

from __future__ import annotations

import pytest

from fcsoft.guest import fcoe as fc
from fcsoft.guest import image as img
from fcsoft.guest.lio import (
    TARGET_MODULES,
    LioAcl,
    LioLun,
    LioSpec,
    configure_script,
    parse_acl,
    parse_lun,
)
from fcsoft.guest.session import _plan
from fcsoft.wire.wwn import WWN

MIB = 1 << 20
T1 = WWN("20:00:52:54:00:fc:10:01")
T2 = WWN("20:00:52:54:00:fc:10:02")
I1 = WWN("10:00:00:00:c9:00:00:01")


def test_lun_and_acl_options():
    assert parse_lun("0:64MiB") == LioLun(0, 64 * MIB, "memory")
    assert parse_lun(" 3:1GiB:file ") == LioLun(3, 1 << 30, "file")
    assert parse_acl("10:00:00:00:c9:00:00:01") == LioAcl(I1, None)
    assert parse_acl("10:00:00:00:c9:00:00:01=0,2") == LioAcl(I1, (0, 2))
    assert parse_acl("10:00:00:00:c9:00:00:01=") == LioAcl(I1, ())


@pytest.mark.parametrize("text,why", [
    ("0", "use N:SIZE"), ("x:1MiB", "use N:SIZE"), ("0:1MiB:disk", "use N:SIZE"),
    ("0:12XB", "bad size"), ("0:4KiB", "at least 1 MiB"), ("0:1000000B", "4096-byte pages"),
    ("20000:1MiB", "out of range"),
])
def test_bad_luns(text, why):
    with pytest.raises(ValueError, match=why):
        parse_lun(text)


def test_bad_acls_and_specs():
    with pytest.raises(ValueError, match="bad WWN"):
        parse_acl("host1")
    with pytest.raises(ValueError, match="'x' is not a LUN number"):
        parse_acl("10:00:00:00:c9:00:00:01=x")
    with pytest.raises(ValueError, match="LUN 0 is given twice"):
        LioSpec((LioLun(0, MIB), LioLun(0, 2 * MIB)))
    with pytest.raises(ValueError, match="given twice"):
        LioSpec(acls=(LioAcl(I1), LioAcl(I1)))
    with pytest.raises(ValueError, match="LUN 5 is not one of"):
        LioSpec(acls=(LioAcl(I1, (5,)),))
    with pytest.raises(ValueError, match="at least one LUN"):
        LioSpec(())


def test_configure_script_builds_backstores_ports_luns_and_acls():
    spec = LioSpec((LioLun(0, 64 * MIB), LioLun(1, 32 * MIB, "file")),
                   (LioAcl(I1), LioAcl(WWN("10:00:00:00:c9:00:00:04"), ())))
    script = configure_script(spec, [T1, T2])
    lines = script.splitlines()
    assert lines[0] == "set -e"
    assert "mount -t configfs none /sys/kernel/config" in script
    assert "echo rd_pages=16384 > /sys/kernel/config/target/core/rd_mcp_0/lun0/control" \
        in lines
    assert ("echo fd_dev_name=/var/lib/fcsoft-lio/lun1.img,fd_dev_size=33554432 > "
            "/sys/kernel/config/target/core/fileio_0/lun1/control") in lines
    for port in ("20:00:52:54:00:fc:10:01", "20:00:52:54:00:fc:10:02"):
        tpg = f"$T/fc/{port}/tpgt_1"
        assert f"mkdir -p {tpg}/lun/lun_1" in lines
        acl = f"{tpg}/acls/10:00:00:00:c9:00:00:01"
        assert f"ln -s {tpg}/lun/lun_0 {acl}/lun_0/lun_0" in lines
        assert f"ln -s {tpg}/lun/lun_1 {acl}/lun_1/lun_1" in lines
        assert f"mkdir -p {tpg}/acls/10:00:00:00:c9:00:00:04" in lines  # no LUN
    assert "acls/10:00:00:00:c9:00:00:04/lun_" not in script
    # the backstores once, before the ports that use them
    assert script.count("/enable") == 2
    assert script.index("lun0/enable") < script.index("$T/fc/")


def test_a_target_guest_plan():
    spec = LioSpec((LioLun(0, 1 << 30),))
    plan = _plan([("127.0.0.1", 9), ("127.0.0.1", 9)], None, None, (), None, 2500, None,
                 spec)
    assert [n.mac for n in plan.nics] == ["52:54:00:fc:10:01", "52:54:00:fc:10:02"]
    assert plan.modules[:len(TARGET_MODULES)] == TARGET_MODULES  # before FCoE starts
    assert plan.memory_mib == spec.min_memory_mib() == 384 + 1024
    with pytest.raises(ValueError, match="too little for the LIO target"):
        _plan([("127.0.0.1", 9)], None, None, (), None, 2500, 512, spec)
    with pytest.raises(ValueError, match="needs an FCoE port"):
        _plan(None, None, None, (), None, 2500, None, spec)
    # the target modules are in every image, so targets and initiators share one
    assert set(TARGET_MODULES) <= set(img.DEFAULT_MODULES)
    assert fc.default_macs(1, set()) == [fc.DEFAULT_MAC]
