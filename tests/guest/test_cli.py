"""`fcsoft guest` on the command line: one-line errors for missing tools (simulated with
PATH), bad usage (status 2), and a real boot whose script's output and status come back."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from fcsoft.guest import image

from .helpers import FrameSink

FCOE = "127.0.0.1:9"


def fcsoft(*args: str, env: dict[str, str] | None = None,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fcsoft", "guest", *args], env=env,
                          input=stdin, capture_output=True, text=True, timeout=600,
                          check=False)


def fake_tool(bindir: Path, name: str, body: str = "exit 0") -> None:
    path = bindir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def env_with_path(bindir: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = str(bindir)
    env["XDG_CACHE_HOME"] = str(cache)
    return env


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fcsoft: "), proc.stderr
    return lines[0]


def test_missing_qemu_busybox_and_depmod_name_their_packages(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    env = env_with_path(bindir, tmp_path / "cache")
    proc = fcsoft("--fcoe", FCOE, "--run", "true", env=env)
    assert proc.returncode == 1
    assert one_line_error(proc) == \
        "fcsoft: qemu-system-x86_64 not found (install qemu-system-x86)"

    fake_tool(bindir, "qemu-system-x86_64")
    proc = fcsoft("--fcoe", FCOE, "--run", "true", env=env)
    assert one_line_error(proc) == "fcsoft: busybox not found (install busybox-static)"

    # everything but depmod, and nothing cached: found out before any download
    fake_tool(bindir, "busybox")
    for name in image.DEFAULT_BINARIES:
        fake_tool(bindir, name)
    fake_tool(bindir, "apt-cache", "echo 'linux-image-amd64'; "
                                   "echo '  Depends: linux-image-6.1.0-99-amd64'")
    fake_tool(bindir, "apt-get", "exit 1")
    for name in ("ldd", "dpkg"):
        fake_tool(bindir, name)
    proc = fcsoft("--fcoe", FCOE, "--run", "true", env=env)
    assert one_line_error(proc) == "fcsoft: depmod not found (install kmod)"

    fake_tool(bindir, "sg_inq", "exit 0")
    (bindir / "sg_luns").unlink()
    proc = fcsoft("--fcoe", FCOE, "--run", "true", env=env)
    assert one_line_error(proc) == "fcsoft: sg_luns not found (install sg3-utils)"


def test_a_kernel_package_that_cannot_be_fetched(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("qemu-system-x86_64", "busybox", "ldd", "dpkg", "depmod",
                 *image.DEFAULT_BINARIES):
        fake_tool(bindir, name)
    fake_tool(bindir, "apt-cache", "echo '  Depends: linux-image-6.1.0-99-amd64'")
    fake_tool(bindir, "apt-get", "echo 'E: Unable to locate package linux-image-6.1.0-99-amd64'"
                                 " >&2; exit 100")
    proc = fcsoft("--fcoe", FCOE, env=env_with_path(bindir, tmp_path / "cache"))
    assert proc.returncode == 1
    assert one_line_error(proc) == ("fcsoft: cannot download linux-image-6.1.0-99-amd64: "
                                    "E: Unable to locate package linux-image-6.1.0-99-amd64")
    fake_tool(bindir, "apt-cache", "echo 'E: No packages found' >&2; exit 100")
    proc = fcsoft("--fcoe", FCOE, env=env_with_path(bindir, tmp_path / "cache2"))
    assert "cannot look up linux-image-amd64" in one_line_error(proc)


@pytest.mark.parametrize("args,message", [
    (["--wwpn", "21:00:52:54:00:aa:00:01"],
     "--wwpn: WWPN 21:00:52:54:00:aa:00:01 cannot be an ENode's: libfcoe makes the WWPN 20:00"),
    (["--mac", "01:00:5e:00:00:01"], "--mac: bad MAC address '01:00:5e:00:00:01': a multicast"),
    (["--wwpn", "nonsense"], "--wwpn: bad WWN 'nonsense'"),
    (["--vport", "20:00:00:00:00:00:00:01"], "--vport needs --fcoe"),
    (["--fcoe", "nohost"], "--fcoe: bad listen address"),
    (["--fcoe", FCOE, "--vport", "bad"], "--vport: bad WWN 'bad'"),
    (["--fcoe", FCOE, "--script", "/no/such/file"], "--script: cannot read /no/such/file"),
    (["--fcoe", FCOE, "--mtu", "100000"], "--mtu: 100000 is out of range"),
    (["--fcoe", FCOE, "--modules", "/tmp"], "--modules goes with --kernel"),
    (["--lio"], "--lio needs --fcoe"),
    (["--fcoe", FCOE, "--lun", "0:1MiB"], "--lun goes with --lio"),
    (["--fcoe", FCOE, "--acl", "10:00:00:00:c9:00:00:01"], "--acl goes with --lio"),
    (["--fcoe", FCOE, "--time", "5"], "--time goes with --lio"),
    (["--fcoe", FCOE, "--lio", "--lun", "x"], "--lun: bad LUN 'x': use N:SIZE"),
    (["--fcoe", FCOE, "--lio", "--lun", "0:12XB"], "--lun: bad LUN '0:12XB': bad size"),
    (["--fcoe", FCOE, "--lio", "--lun", "0:1MiB", "--lun", "0:2MiB"],
     "--lun: LUN 0 is given twice"),
    (["--fcoe", FCOE, "--lio", "--acl", "nope"], "--acl: bad ACL 'nope'"),
    (["--fcoe", FCOE, "--lio", "--acl", "10:00:00:00:c9:00:00:01=7"],
     "--acl: ACL 10:00:00:00:c9:00:00:01: LUN 7 is not one of the target's LUNs"),
    (["--fcoe", FCOE, "--lio", "--run", "true"], "--run does not go with --lio"),
    (["--fcoe", FCOE, "--lio", "--vport", "c0:50:76:00:00:00:00:01"],
     "--vport does not go with --lio"),
    (["--fcoe", FCOE, "--lio", "--memory", "200", "--lun", "0:1GiB"],
     "--memory: 200 MiB is too little for the LUNs: give at least 1408"),
])
def test_bad_usage_is_one_line_and_status_2(args, message):
    proc = fcsoft(*args)
    assert proc.returncode == 2
    assert one_line_error(proc).startswith("fcsoft: " + message)


def test_argparse_errors_are_status_2():
    proc = fcsoft("--timeout", "0")
    assert proc.returncode == 2 and "seconds must be more than 0" in proc.stderr
    proc = fcsoft("--run", "true", "--script", "x")
    assert proc.returncode == 2 and "not allowed with argument" in proc.stderr


async def test_a_boot_prints_the_output_and_exits_with_the_script_status(guest_tools, tmp_path,
                                                                        nursery):
    sink = FrameSink()
    await nursery.start(sink.serve)
    env = dict(os.environ, TMPDIR=str(tmp_path))
    script = ("cat /sys/class/fc_host/host*/port_name\n"
              "printf 'to stderr\\n' >&2\n"
              "exit 7\n")
    proc = await trio.run_process(
        [sys.executable, "-m", "fcsoft", "guest", "--fcoe", f"127.0.0.1:{sink.port}",
         "--wwpn", "20:00:52:54:00:aa:00:03", "--no-wait", "--script", "-"],
        stdin=script.encode(), capture_stdout=True, capture_stderr=True, env=env,
        check=False)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == b"0x2000525400aa0003\n"
    assert proc.stderr == b"to stderr\n"
    assert sink.connections == 1  # QEMU joined the NIC to the FCF's listener
    assert list(tmp_path.iterdir()) == []  # no temporary directory left behind

    # the same, with nothing listening for the FCF: one line, status 1
    proc = await trio.run_process(
        [sys.executable, "-m", "fcsoft", "guest", "--fcoe", "127.0.0.1:9", "--run", "true",
         "--console-log", str(tmp_path / "console.log")],
        capture_stdout=True, capture_stderr=True, env=env, check=False)
    assert proc.returncode == 1
    assert proc.stderr.decode() == ("fcsoft: cannot connect to the FCF at 127.0.0.1:9 "
                                    "(nothing listening, or unreachable)\n")
