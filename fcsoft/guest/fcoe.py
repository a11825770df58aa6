"""ENode addresses and the guest-side shell for the FCoE initiator.

Linux's libfcoe gives an ENode on a plain Ethernet NIC (virtio-net here) the node name
10:00:MAC and the port name 20:00:MAC (fcoe_wwn_from_mac, schemes 1 and 2); there is no
other way to set them. So the guest lab sets the WWPN by choosing the NIC's MAC, and only
WWPNs of the form 20:00:xx:xx:xx:xx:xx:xx can be asked for.

The shell snippets here run in the guest through the agent (see fcsoft.guest.session); they
use busybox and sysfs only (no fcoe-utils):

- FCoE comes up with `echo IFACE > /sys/bus/fcoe/ctlr_create` and `echo 1 > .../enabled`;
  libfcoe then solicits FCFs (FIP) and logs in;
- an NPIV vport is created with `echo WWPN:WWNN > /sys/class/fc_host/hostN/vport_create`
  (16 hex digits each).
"""

from __future__ import annotations

import re

from fcsoft.wire.wwn import WWN

_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$|^[0-9a-f]{12}$")
QEMU_OUI = "52:54:00"
DEFAULT_MAC = "52:54:00:fc:00:01"  # the first guest's ENode: WWPN 20:00:52:54:00:fc:00:01
# an LIO target guest's first port: WWPN 20:00:52:54:00:fc:10:01, apart from the initiators'
TARGET_MAC = "52:54:00:fc:10:01"


def parse_mac(text: str) -> str:
    """A unicast MAC address in lower-case colon form; ValueError with the reason."""
    t = text.strip().lower()
    if not _MAC_RE.match(t):
        raise ValueError(f"bad MAC address {text!r}: expected six colon-separated hex bytes "
                         "like 52:54:00:aa:00:01")
    raw = bytes.fromhex(t.replace(":", "").replace("-", ""))
    if raw[0] & 1:
        raise ValueError(f"bad MAC address {text!r}: a multicast address (the first byte "
                         "is odd) cannot be an ENode's")
    if raw == bytes(6):
        raise ValueError(f"bad MAC address {text!r}: all zeros")
    return ":".join(f"{b:02x}" for b in raw)


def default_macs(count: int, taken: set[str], first: str = DEFAULT_MAC) -> list[str]:
    """`count` MACs counting up from `first` (DEFAULT_MAC), skipping those in `taken` (the
    built-in lab maps the first two ENodes, 20:00:52:54:00:fc:00:01 and :02)."""
    base = int(first.replace(":", ""), 16)
    found: list[str] = []
    n = 0
    while len(found) < count:
        mac = parse_mac(f"{base + n:012x}")
        if mac not in taken:
            found.append(mac)
        n += 1
    return found


def mac_from_wwpn(text: str) -> str:
    """The MAC that makes libfcoe use WWPN `text`; ValueError unless it is 20:00:MAC."""
    try:
        wwpn = WWN.parse(text)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    raw = wwpn.to_bytes8()
    if raw[:2] != b"\x20\x00":
        raise ValueError(f"WWPN {wwpn} cannot be an ENode's: libfcoe makes the WWPN 20:00 "
                         "followed by the NIC's MAC, so give 20:00:xx:xx:xx:xx:xx:xx "
                         "(or --mac)")
    return parse_mac(raw[2:].hex())


def wwpn_for_mac(mac: str) -> WWN:
    """The port name libfcoe gives the ENode with `mac`: 20:00:MAC."""
    return WWN(int("2000" + parse_mac(mac).replace(":", ""), 16))


def wwnn_for_mac(mac: str) -> WWN:
    """The node name libfcoe gives the ENode with `mac`: 10:00:MAC."""
    return WWN(int("1000" + parse_mac(mac).replace(":", ""), 16))


def parse_vport(text: str) -> tuple[WWN, WWN]:
    """`WWPN` or `WWPN,WWNN` -> (wwpn, wwnn); the WWNN defaults to 10:00 followed by the
    WWPN's last six bytes."""
    port, _, node = text.partition(",")
    wwpn = WWN.parse(port)
    wwnn = WWN.parse(node) if node else WWN((0x1000 << 48) | (wwpn & 0xFFFF_FFFF_FFFF))
    return wwpn, wwnn


def vport_create_arg(wwpn: WWN, wwnn: WWN) -> str:
    """What vport_create takes: WWPN:WWNN as 16 hex digits each."""
    return f"{int(wwpn):016x}:{int(wwnn):016x}"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def load_modules_script(modules: list[str] | tuple[str, ...]) -> str:
    """Load each module unless it is loaded or built in."""
    names = " ".join(_quote(m) for m in modules)
    return (f"for m in {names}; do\n"
            "  [ -d /sys/module/$(echo $m | tr - _) ] && continue\n"
            "  modprobe $m || exit 1\n"
            "done\n")


def fcoe_up_script(macs: list[str], mtu: int | None = None) -> str:
    """Bring up the NIC with each MAC and start an FCoE controller on it."""
    lines = ["set -e"]
    for mac in macs:
        lines += [
            "iface=''",
            "for n in /sys/class/net/*; do",
            f"  [ \"$(cat $n/address)\" = {mac} ] && iface=${{n##*/}}",
            "done",
            f"[ -n \"$iface\" ] || {{ echo 'no NIC with MAC {mac}' >&2; exit 1; }}",
        ]
        if mtu is not None:
            lines.append(f"ip link set \"$iface\" mtu {int(mtu)}")
        lines += [
            "ip link set \"$iface\" up",
            "echo \"$iface\" > /sys/bus/fcoe/ctlr_create",
            "for c in /sys/class/net/$iface/ctlr_*; do echo 1 > $c/enabled; done",
        ]
    return "\n".join(lines) + "\n"


# every fc_host (physical and vport) Online; fails while there is none
ALL_ONLINE = (
    "n=0\n"
    "for h in /sys/class/fc_host/host*; do\n"
    "  [ -e \"$h/port_state\" ] || exit 1\n"
    "  [ \"$(cat $h/port_state)\" = Online ] || exit 1\n"
    "  n=$((n + 1))\n"
    "done\n"
    "[ $n -gt 0 ]\n"
)

# what changes while the SCSI layer scans: remote ports, their states, SCSI devices
SCAN_SNAPSHOT = (
    "ls /sys/class/fc_remote_ports /sys/class/scsi_device /sys/class/fc_host 2>/dev/null; "
    "cat /sys/class/fc_remote_ports/*/port_state /sys/class/fc_host/*/port_state "
    "2>/dev/null"
)


def settle_script(quiet: float, interval: float = 0.25) -> str:
    """Wait until the scan snapshot has stayed the same for `quiet` seconds."""
    rounds = max(1, round(quiet / interval))
    return (
        f"snap() {{ {SCAN_SNAPSHOT}; }}\n"
        "prev=$(snap); same=0\n"
        f"while [ $same -lt {rounds} ]; do\n"
        f"  sleep {interval}\n"
        "  cur=$(snap)\n"
        "  if [ \"$cur\" = \"$prev\" ]; then same=$((same + 1)); else same=0; prev=$cur; fi\n"
        "done\n"
    )


# one line per fc_host: name and its sysfs attributes as key=value
FC_HOSTS = (
    "for h in /sys/class/fc_host/host*; do\n"
    "  [ -d \"$h\" ] || continue\n"
    "  printf 'name=%s' ${h##*/}\n"
    "  for a in port_name node_name port_id port_state symbolic_name; do\n"
    "    printf '\\t%s=%s' $a \"$(cat $h/$a 2>/dev/null)\"\n"
    "  done\n"
    "  printf '\\n'\n"
    "done\n"
)

# one line per SCSI device: H:C:T:L, sg and block nodes, the target port's WWPN (from the
# remote port the device sits under), vendor and model
SCSI_DEVICES = (
    "for d in /sys/class/scsi_device/*; do\n"
    "  [ -d \"$d\" ] || continue\n"
    "  dev=$(readlink -f $d/device)\n"
    "  rport=$(echo $dev | tr / '\\n' | grep '^rport-' | tail -1)\n"
    "  wwpn=''\n"
    "  [ -n \"$rport\" ] && wwpn=$(cat /sys/class/fc_remote_ports/$rport/port_name)\n"
    "  printf 'hctl=%s\\tsg=%s\\tblock=%s\\ttarget=%s\\tvendor=%s\\tmodel=%s\\n' \\\n"
    "    ${d##*/} \"$(ls $d/device/scsi_generic 2>/dev/null)\" "
    "\"$(ls $d/device/block 2>/dev/null)\" \"$wwpn\" "
    "\"$(cat $d/device/vendor)\" \"$(cat $d/device/model)\"\n"
    "done\n"
)
