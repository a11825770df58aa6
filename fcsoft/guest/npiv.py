"""NPIV in the guest: the remote ports each fc_host (physical port or vport) found, and
deleting vports.

    ports = await remote_ports(guest)              # every fc_remote_port, by its fc_host
    await delete_vport(guest, "c0:50:76:00:00:0a:00:01")

Linux's FC transport gives each NPIV vport an fc_host (and a SCSI host) of its own; libfc
runs discovery per local port (GPN_FT from the vport's own N_Port_ID, so the fabric answers
with what that WWPN is zoned with) and creates an fc_remote_port for each port it found,
under that vport's SCSI host: /sys/class/fc_remote_ports/rport-H:C-N, H being the SCSI host
number. So what a vport's "VM" can see of the fabric is exactly the remote ports under its
host. Deleting a vport (`vport_delete` on the physical port's fc_host, "WWPN:WWNN") logs it
out of the fabric (LOGO) and removes its fc_host, remote ports and SCSI devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fcsoft.wire.wwn import WWN

from . import fcoe as fc
from .errors import GuestError

if TYPE_CHECKING:
    from .session import Guest

__all__ = ["RemotePort", "delete_vport", "remote_ports"]

# one line per remote port: its fc_host, name, WWPN, WWNN, N_Port_ID, state, roles
REMOTE_PORTS = (
    "for r in /sys/class/fc_remote_ports/rport-*; do\n"
    "  [ -d \"$r\" ] || continue\n"
    "  n=${r##*/rport-}\n"
    "  printf 'host=host%s\\trport=%s' ${n%%:*} ${r##*/}\n"
    "  for a in port_name node_name port_id port_state roles; do\n"
    "    printf '\\t%s=%s' $a \"$(cat $r/$a 2>/dev/null)\"\n"
    "  done\n"
    "  printf '\\n'\n"
    "done\n"
)


@dataclass(frozen=True)
class RemotePort:
    """One fc_remote_port: the fc_host (local port) that found it, and what it is."""

    host: str  # "host3"
    name: str  # "rport-3:0-1"
    wwpn: WWN | None
    wwnn: WWN | None
    port_id: str  # "0x010200"
    state: str  # Online, Blocked, Not Present ...
    roles: str  # "FCP Target", "FCP Initiator", "Fabric Port", "Directory Server" ...

    @property
    def well_known(self) -> bool:
        """The fabric's own services (the name server at FFFFFC ...)."""
        return self.port_id.lower().startswith(("0xfffff", "fffff"))


def _wwn(text: str) -> WWN | None:
    try:
        return WWN(int(text, 16))
    except ValueError:
        return None


def parse_remote_ports(text: str) -> list[RemotePort]:
    out = []
    for line in text.splitlines():
        f = dict(x.split("=", 1) for x in line.split("\t") if "=" in x)
        if "rport" not in f:
            continue
        out.append(RemotePort(f.get("host", ""), f["rport"], _wwn(f.get("port_name", "")),
                              _wwn(f.get("node_name", "")), f.get("port_id", ""),
                              f.get("port_state", ""), f.get("roles", "")))
    return out


async def remote_ports(guest: Guest) -> list[RemotePort]:
    """Every fc_remote_port in the guest."""
    res = await guest.run(REMOTE_PORTS, check=True)
    return parse_remote_ports(res.output)


async def delete_vport(guest: Guest, wwpn: WWN | str, wwnn: WWN | str | None = None,
                       host: str | None = None) -> None:
    """Delete the NPIV vport `wwpn` (its WWNN defaults as in `create_vport`: 10:00 and the
    WWPN's last six bytes) through `vport_delete` of the physical fc_host it was created
    on (default: the one whose vport it is, found in sysfs). GuestError when there is no
    such vport."""
    port = WWN(wwpn) if isinstance(wwpn, str) else wwpn
    node = (fc.parse_vport(str(port))[1] if wwnn is None
            else (WWN(wwnn) if isinstance(wwnn, str) else wwnn))
    if host is None:
        # the vport's fc_vport entry lives under its parent (physical) SCSI host
        res = await guest.run(
            "for v in /sys/class/fc_vports/vport-*; do\n"
            f"  [ \"$(cat $v/port_name 2>/dev/null)\" = 0x{int(port):016x} ] || continue\n"
            "  readlink -f $v | tr / '\\n' | grep '^host' | head -1\n"
            "done\n", check=True)
        found = res.output.split()
        if not found:
            raise GuestError(f"no vport {port} in the guest")
        host = found[0]
    arg = fc.vport_create_arg(port, node)
    await guest.run(f"echo {arg} > /sys/class/fc_host/{host}/vport_delete", check=True)
