"""The QEMU command line, built in one place, and the QEMU process.

`QemuConfig.argv()` is the only place that knows QEMU's options. A guest is a pc machine
with no default devices, booted straight into the cached kernel and initramfs:

- the kernel console on the first serial port, written to the console log file;
- virtio-serial ports named `fcsoft.agent` and `fcsoft.control`, each joined to a unix
  socket the host listens on (the command agent, see fcsoft.guest.protocol);
- a QMP monitor on another unix socket the host listens on (QEMU connects to all three at
  start);
- one virtio-net NIC per FCoE port, its `-netdev stream` a TCP connection to the FCF: QEMU
  sends each Ethernet frame with a 4-byte big-endian length in front;
- `extra_args` for anything else (more devices), and `incoming` for `-incoming` (a migration
  target: fcsoft.guest.migration starts one with the source's configuration, its own
  sockets, and `console_append` so that the console log goes on in the same file).

`spawn()` starts QEMU from the calling thread with PR_SET_PDEATHSIG, so the kernel kills
QEMU should the Python process die without cleaning up; the process is awaited through a
pidfd. `QemuProcess.kill()` always ends it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trio

from .errors import which

QEMU = "qemu-system-x86_64"
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class FcoeNic:
    """A virtio-net NIC whose frames go to the FCF at host:port over TCP."""

    host: str
    port: int
    mac: str
    host_mtu: int | None = None  # advertised to the guest (virtio-net host_mtu=)


@dataclass
class QemuConfig:
    """Everything that goes on a guest's QEMU command line."""

    kernel: Path
    initrd: Path
    console_log: Path
    agent_socket: Path
    control_socket: Path
    qmp_socket: Path
    nics: Sequence[FcoeNic] = ()
    memory_mib: int = 512
    cpus: int = 1
    kvm: bool = False
    kernel_args: Sequence[str] = ()
    incoming: str | None = None
    console_append: bool = False  # append to console_log instead of truncating it
    extra_args: Sequence[str] = field(default_factory=list)

    def argv(self, qemu: str | Path = QEMU) -> list[str]:
        append = ["console=ttyS0", "panic=-1", "loglevel=7", *self.kernel_args]
        # kvm first if asked for, with tcg as the fallback when /dev/kvm cannot be used
        accel = ["-accel", "kvm", "-accel", "tcg"] if self.kvm else ["-accel", "tcg"]
        argv = [
            str(qemu), "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            *accel, "-m", str(self.memory_mib), "-smp", str(self.cpus),
            "-kernel", str(self.kernel), "-initrd", str(self.initrd),
            "-append", " ".join(append),
            "-chardev", f"file,id=console,path={self.console_log}"
            + (",append=on" if self.console_append else ""),
            "-serial", "chardev:console",
            "-chardev", f"socket,id=qmp,path={self.qmp_socket},server=off",
            "-mon", "chardev=qmp,mode=control",
            "-device", "virtio-serial-pci,id=vser0",
            "-chardev", f"socket,id=agent,path={self.agent_socket},server=off",
            "-device", "virtserialport,bus=vser0.0,chardev=agent,name=fcsoft.agent",
            "-chardev", f"socket,id=control,path={self.control_socket},server=off",
            "-device", "virtserialport,bus=vser0.0,chardev=control,name=fcsoft.control",
        ]
        for i, nic in enumerate(self.nics):
            argv += ["-netdev", (f"stream,id=fcoe{i},server=off,addr.type=inet,"
                                f"addr.host={nic.host},addr.port={nic.port}")]
            dev = f"virtio-net-pci,netdev=fcoe{i},mac={nic.mac}"
            if nic.host_mtu is not None:
                dev += f",host_mtu={nic.host_mtu}"
            argv += ["-device", dev]
        if self.incoming is not None:
            argv += ["-incoming", self.incoming]
        argv += list(self.extra_args)
        return argv


def _die_with_parent() -> None:  # runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class QemuProcess:
    """A running QEMU; its stdout and stderr go to `log`."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path) -> None:
        self._popen = popen
        self._pidfd = os.pidfd_open(popen.pid)
        self.log = log
        self.pid = popen.pid
        self._watching = False

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    async def wait(self) -> int:
        """Wait for QEMU to exit; its exit status. Any number of tasks may wait: one
        watches the pidfd, the others look every 50 ms."""
        while self._popen.poll() is None:
            if self._watching:
                await trio.sleep(0.05)
                continue
            self._watching = True
            try:
                await trio.lowlevel.wait_readable(self._pidfd)
            finally:
                self._watching = False
        return self._popen.returncode

    def stderr_line(self) -> str:
        """The last line QEMU wrote to its log (its error message), or ''."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        lines = [ln.strip() for ln in lines if ln.strip()]
        return lines[-1] if lines else ""

    async def kill(self) -> None:
        """SIGKILL QEMU (if it still runs) and reap it; safe to call more than once, and
        under cancellation."""
        with trio.CancelScope(shield=True):
            if self._popen.poll() is None:
                try:
                    self._popen.kill()
                except ProcessLookupError:
                    pass
                with trio.move_on_after(10):
                    await self.wait()
            if self._pidfd >= 0:
                trio.lowlevel.notify_closing(self._pidfd)
                os.close(self._pidfd)
                self._pidfd = -1


def find_qemu() -> Path:
    """qemu-system-x86_64's path; MissingTool (install qemu-system-x86) when absent."""
    return which(QEMU)


def spawn(config: QemuConfig, log: Path) -> QemuProcess:
    """Start QEMU for `config`; MissingTool when qemu-system-x86_64 is not installed."""
    qemu = find_qemu()
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            config.argv(qemu), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent, close_fds=True)
    return QemuProcess(popen, log)
