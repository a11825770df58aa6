"""Multipath in the guest: multipath-tools' `multipathd` over the paths to an array's LUs.

    async with open_guest(fcoe=..., modules=FCOE_MODULES + MULTIPATH_MODULES) as g:
        await start_multipathd(g, MultipathSettings(fast_io_fail_tmo=5))
        (m,) = await multipath_maps(g)                      # e.g. "mpatha", two paths
        state = await map_state(g, m.name)                  # groups, paths, I/O per path

Theory of operation. The guest image holds the host's `multipathd`, `multipath` and
`dmsetup` with their libraries and plugins (fcsoft.guest.image, OPTIONAL_BINARIES and
OPTIONAL_FILES), and the device-mapper modules (MULTIPATH_MODULES). What the busybox guest
lacks is udev, and multipath-tools leans on it in two ways:

- it only considers a block device once udev has "initialized" it (libudev: a database
  entry in /run/udev/data/bMAJ:MIN exists) and reads the device's WWID from a udev
  property (ID_SERIAL, which udev's scsi_id derives from VPD page 0x83). `record_disks`
  writes those entries for every SCSI disk, as udev would: ID_SERIAL is "3" followed by the
  NAA identifier the kernel shows in /sys/block/sdX/device/wwid;
- libdevmapper waits for udev to create /dev/mapper nodes, unless DM_DISABLE_UDEV=1, with
  which it makes them itself; and multipathd does not reload a map it created itself (for
  a priority change or a failback) until udev's uevent about it arrives, or 30 s have
  passed. So `multipath` creates the maps first, and multipathd, started after it, takes
  them over.

Nothing announces new SCSI devices to multipathd (no udevd sends it uevents), so the paths
are those present at start, which is what a path that comes back within `dev_loss_tmo`
keeps: its SCSI device survives the outage and multipathd's path checker (TUR) reinstates
it. A path whose device was removed (dev_loss_tmo expired) needs `record_disks` and
`multipathd add path sdX` once the device is back.

The state is read from the kernel (`dmsetup status`: path groups, which is active, which
paths are failed), from multipathd (checker state, priority) and from sysfs (the array
port behind each path, and the I/Os each path device completed), in one guest command.
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fcsoft.wire.wwn import WWN

from .image import MULTIPATH_MODULES

if TYPE_CHECKING:
    from .session import Guest

__all__ = [
    "MULTIPATH_MODULES", "DmMultipathStatus", "DmPath", "DmPathGroup", "MapState",
    "MultipathMap", "MultipathSettings", "PathState", "map_state", "multipath_conf",
    "multipath_maps", "parse_multipath_status", "record_disks", "rport_timeouts",
    "start_multipathd",
]

LOG = "/run/multipathd.log"


@dataclass(frozen=True)
class MultipathSettings:
    """What `start_multipathd` writes to /etc/multipath.conf.

    - `fast_io_fail_tmo`: seconds after a remote port is lost before I/O queued on its
      paths fails (and dm-multipath retries it on another path); multipathd sets it on
      every path's FC remote port. 5 is multipath-tools' default.
    - `dev_loss_tmo`: seconds before a lost remote port's SCSI devices are removed. Long
      enough that a path which comes back keeps its device (see the module's docstring).
    - `polling_interval`, `max_polling_interval`: seconds between path checks (TUR); a
      healthy path is checked less often, up to the maximum.
    - `no_path_retry`: path checks to keep queueing I/O for while no path is left ("queue":
      for ever, "fail": at once).
    - `path_selector`, `path_grouping_policy`, `failback`, `hardware_handler`, `prio`: as
      in multipath.conf; the defaults group paths by ALUA priority (active/optimized 50,
      active/non-optimized 10, standby 1, unavailable 0) and fail back at once.
    - `vendor`, `product`: the devices these settings are for (regular expressions matched
      against INQUIRY; fcsoft's arrays are FCSOFT / VDISK unless the config says otherwise).
    """

    fast_io_fail_tmo: int = 5
    dev_loss_tmo: int = 120
    polling_interval: int = 1
    max_polling_interval: int = 2
    no_path_retry: int | str = 12
    path_selector: str = "service-time 0"
    path_grouping_policy: str = "group_by_prio"
    failback: str = "immediate"
    hardware_handler: str = "1 alua"
    prio: str = "alua"
    vendor: str = "FCSOFT"
    product: str = ".*"

    def __post_init__(self) -> None:
        if self.fast_io_fail_tmo < 0 or self.dev_loss_tmo < 1:
            raise ValueError("fast_io_fail_tmo must be 0 or more and dev_loss_tmo 1 or more")
        if self.dev_loss_tmo <= self.fast_io_fail_tmo:
            raise ValueError("dev_loss_tmo must be longer than fast_io_fail_tmo (the kernel "
                             "refuses it otherwise)")
        if self.polling_interval < 1 or self.max_polling_interval < self.polling_interval:
            raise ValueError("polling_interval must be 1 or more, and max_polling_interval "
                             "at least polling_interval")
        if isinstance(self.no_path_retry, str) and self.no_path_retry not in ("queue", "fail"):
            raise ValueError(f"no_path_retry {self.no_path_retry!r}: a number of checks, "
                             "'queue' or 'fail'")
        for name in ("path_selector", "path_grouping_policy", "failback", "hardware_handler",
                     "prio", "vendor", "product"):
            value = getattr(self, name)
            if '"' in value or "\n" in value:
                raise ValueError(f"{name} may not hold a double quote or a newline")


def multipath_conf(s: MultipathSettings) -> str:
    """/etc/multipath.conf for settings `s`."""
    return (
        "# written by fcsoft.guest.multipath\n"
        "defaults {\n"
        "    user_friendly_names yes\n"
        "    find_multipaths no\n"
        f"    polling_interval {s.polling_interval}\n"
        f"    max_polling_interval {s.max_polling_interval}\n"
        "}\n"
        "devices {\n"
        "    device {\n"
        f"        vendor \"{s.vendor}\"\n"
        f"        product \"{s.product}\"\n"
        f"        path_grouping_policy {s.path_grouping_policy}\n"
        f"        path_selector \"{s.path_selector}\"\n"
        f"        hardware_handler \"{s.hardware_handler}\"\n"
        f"        prio {s.prio}\n"
        "        path_checker tur\n"
        f"        failback {s.failback}\n"
        f"        no_path_retry {s.no_path_retry}\n"
        f"        fast_io_fail_tmo {s.fast_io_fail_tmo}\n"
        f"        dev_loss_tmo {s.dev_loss_tmo}\n"
        "    }\n"
        "}\n"
    )


# udev's database entry for each SCSI disk with a WWID, as udevd and scsi_id would write it
RECORD_DISKS = r"""
mkdir -p /run/udev/data
n=0
for b in /sys/block/sd*; do
  [ -e "$b/device/wwid" ] || continue
  w=$(cat "$b/device/wwid")
  case "$w" in naa.*) id=${w#naa.} ;; *) continue ;; esac
  printf 'I:1\nE:ID_SERIAL=3%s\nE:ID_WWN=0x%s\nE:DEVTYPE=disk\nG:systemd\n' "$id" "$id" \
    > "/run/udev/data/b$(cat "$b/dev")"
  n=$((n + 1))
done
echo $n
"""


def _start_script(conf: str) -> str:
    return (
        "set -e\n"
        "mkdir -p /etc/multipath /run/udev/data\n"
        "cat > /etc/multipath.conf <<'FCSOFT_EOF'\n"
        f"{conf}"
        "FCSOFT_EOF\n"
        "if [ -e /run/multipathd.pid ] && kill -0 \"$(cat /run/multipathd.pid)\" 2>/dev/null;"
        " then echo 'multipathd is running already' >&2; exit 3; fi\n"
        # the maps are made by `multipath` first: a map multipathd creates itself is not
        # reloaded (priority changes, failback) until udev's uevent about it arrives, which
        # here it never does, or 30 s have passed
        f"DM_DISABLE_UDEV=1 multipath -v2 >{LOG} 2>&1\n"
        # -d: in the foreground of a session of its own (the agent's command ends at once);
        # its log goes to LOG with its uptime stamps
        f"DM_DISABLE_UDEV=1 setsid multipathd -d -v2 </dev/null >>{LOG} 2>&1 &\n"
        "echo $! > /run/multipathd.pid\n"
    )


async def record_disks(guest: Guest) -> int:
    """Write udev's database entries for the guest's SCSI disks (what multipath-tools
    needs from udev); returns how many disks with a WWID there were."""
    res = await guest.run(RECORD_DISKS, check=True)
    return int(res.output.strip() or 0)


async def start_multipathd(guest: Guest, settings: MultipathSettings | None = None, *,
                           maps: int = 1, timeout: float = 60.0) -> list[MultipathMap]:
    """Load the device-mapper modules, write /etc/multipath.conf, record the disks for
    udev's stand-in and start multipathd; returns its maps once there are `maps` of them,
    each with every path active (GuestTimeout after `timeout` seconds, naming its log).
    multipathd's log is /run/multipathd.log in the guest."""
    from . import fcoe as fc

    s = settings or MultipathSettings()
    res = await guest.run("for p in multipathd multipath dmsetup; do "
                          "command -v $p >/dev/null || echo $p; done", check=True)
    if res.output.split():
        from .errors import MissingTool

        # the image copies them from the host when the host has them
        raise MissingTool(res.output.split()[0])
    await guest.run(fc.load_modules_script(list(MULTIPATH_MODULES)), check=True)
    if await record_disks(guest) == 0:
        from .errors import GuestError

        raise GuestError("no SCSI disk with a WWID in the guest: nothing to multipath")
    await guest.run(_start_script(multipath_conf(s)), check=True)
    want = ("n=$(multipathd show maps raw format '%n' 2>/dev/null | grep -c .)\n"
            f"[ \"$n\" -ge {maps} ] || exit 1\n"
            "! dmsetup status --target multipath 2>/dev/null | grep -q ' F '\n")
    await guest.wait_until(want, timeout, what=f"multipathd setting up {maps} map(s) (its "
                           f"log: {LOG} in the guest)")
    return await multipath_maps(guest)


@dataclass(frozen=True)
class MultipathMap:
    """A multipath map: its name (mpatha ...), WWID and dm device (dm-0 ...)."""

    name: str
    wwid: str
    dm: str

    @property
    def device(self) -> str:
        return f"/dev/mapper/{self.name}"


async def multipath_maps(guest: Guest) -> list[MultipathMap]:
    """The maps multipathd has set up."""
    res = await guest.run("multipathd show maps raw format '%n %w %d'", check=True)
    out = []
    for line in res.output.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append(MultipathMap(*parts))
    return out


# -- the kernel's view: dmsetup status -------------------------------------------------


@dataclass(frozen=True)
class DmPath:
    """One path in a dm-multipath status: its device (MAJ:MIN), whether the kernel uses it
    (A) or has failed it (F), and how often it failed."""

    dev_t: str
    active: bool
    fail_count: int


@dataclass(frozen=True)
class DmPathGroup:
    """A path group: "active" (I/O goes here), "enabled" (usable) or "disabled"
    (bypassed), and its paths."""

    state: str
    paths: tuple[DmPath, ...]


@dataclass(frozen=True)
class DmMultipathStatus:
    """The kernel's status line of a multipath map (dm-mpath.c, STATUSTYPE_INFO)."""

    queue_io: bool
    pg_init_count: int
    next_group: int  # 1-based: the group the next I/O goes to (0: none)
    groups: tuple[DmPathGroup, ...]

    def group_of(self, dev_t: str) -> int:
        """The 1-based group holding path `dev_t` (0 when none does)."""
        for i, g in enumerate(self.groups, 1):
            if any(p.dev_t == dev_t for p in g.paths):
                return i
        return 0


_GROUP_STATES = {"A": "active", "E": "enabled", "D": "disabled"}


def parse_multipath_status(line: str) -> DmMultipathStatus:
    """Decode `dmsetup status` for a multipath target: "[START LEN multipath] FEATURES
    HWHANDLER #GROUPS NEXT (STATE #ARGS ARGS... #PATHS #PATHARGS (DEV A|F FAILS ARGS...)...)...".
    ValueError for anything else."""
    tokens = line.split()
    if "multipath" in tokens:
        tokens = tokens[tokens.index("multipath") + 1:]
    pos = 0

    def take() -> str:
        nonlocal pos
        if pos >= len(tokens):
            raise ValueError(f"multipath status ends early: {line!r}")
        pos += 1
        return tokens[pos - 1]

    def number() -> int:
        t = take()
        if not t.isdigit():
            raise ValueError(f"multipath status: expected a number, got {t!r} in {line!r}")
        return int(t)

    nfeat = number()
    feats = [take() for _ in range(nfeat)]
    queue_io = feats[0] == "1" if feats else False
    pg_init = int(feats[1]) if len(feats) > 1 and feats[1].isdigit() else 0
    for _ in range(number()):  # hardware handler status
        take()
    ngroups = number()
    next_group = number()
    groups = []
    for _ in range(ngroups):
        code = take()
        if code not in _GROUP_STATES:
            raise ValueError(f"multipath status: bad path group state {code!r} in {line!r}")
        for _ in range(number()):  # path selector's group status
            take()
        npaths = number()
        nargs = number()
        paths = []
        for _ in range(npaths):
            dev = take()
            flag = take()
            if flag not in ("A", "F"):
                raise ValueError(f"multipath status: bad path state {flag!r} in {line!r}")
            fails = number()
            for _ in range(nargs):
                take()
            paths.append(DmPath(dev, flag == "A", fails))
        groups.append(DmPathGroup(_GROUP_STATES[code], tuple(paths)))
    return DmMultipathStatus(queue_io, pg_init, next_group, tuple(groups))


# -- everything about a map in one command ----------------------------------------------


@dataclass(frozen=True)
class PathState:
    """One path of a map: the device, the array port behind it (`target`, from the FC
    remote port), the kernel's view (active or failed; its group and the group's state),
    multipathd's view (`checker`: ready, faulty, ghost, ...; `priority`), and `ios`, the
    reads and writes the path device has completed so far."""

    dev: str
    dev_t: str
    hctl: str
    target: WWN | None
    active: bool
    fail_count: int
    group: int
    group_state: str
    checker: str
    priority: int | None
    ios: int


@dataclass(frozen=True)
class MapState:
    """A map at one moment: the kernel's status, and each path."""

    name: str
    status: DmMultipathStatus
    paths: tuple[PathState, ...]
    uptime: float  # the guest's clock (seconds since boot) when it was read

    def path(self, target: WWN) -> PathState:
        """The path through array port `target` (KeyError when there is none)."""
        for p in self.paths:
            if p.target == target:
                return p
        raise KeyError(f"map {self.name} has no path through {target}")

    @property
    def using(self) -> list[PathState]:
        """The paths I/O goes to now: the active paths of the group in use."""
        return [p for p in self.paths if p.active and p.group == self.status.next_group]


@dataclass(frozen=True)
class PathInfo:
    """What does not change about a path device: its name, H:C:T:L and array port."""

    dev: str
    hctl: str
    target: WWN | None


# each path device of map $1 (MAJ:MIN in its table): "info MAJ:MIN sdX H:C:T:L WWPN|-"
_PATH_INFO = r"""
for d in $(dmsetup table "$1"); do
  case $d in [0-9]*:[0-9]*) ;; *) continue ;; esac
  dev=$(basename "$(readlink -f /sys/dev/block/$d)")
  sdev=$(readlink -f /sys/block/$dev/device)
  rport=$(echo $sdev | tr / '\n' | grep '^rport-' | tail -1)
  wwpn=''
  [ -n "$rport" ] && wwpn=$(cat /sys/class/fc_remote_ports/$rport/port_name)
  echo "info $d $dev ${sdev##*/} ${wwpn:--}"
done
"""


def _state_script(name: str, devs: list[str]) -> str:
    """Few processes (each costs under TCG): the clock, the kernel's status, the I/O
    counters of the known path devices, multipathd's view."""
    q = "'" + name.replace("'", "") + "'"
    stats = "".join(f"read a b c d e f < /sys/block/{d}/stat; echo stat {d} $a $e\n"
                    for d in devs)
    return (
        "read u x < /proc/uptime; echo $u\n"
        f"dmsetup status {q}\n"
        f"{stats}"
        "multipathd show paths raw format '%D %T %p' 2>/dev/null | sed 's/^/mpd /'\n"
    )


def parse_path_info(text: str) -> dict[str, PathInfo]:
    """{MAJ:MIN: PathInfo} from _PATH_INFO's lines."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "info":
            target = None
            if parts[4] != "-":
                try:
                    target = WWN(int(parts[4], 16))
                except ValueError:
                    target = None
            out[parts[1]] = PathInfo(parts[2], parts[3], target)
    return out


def parse_map_state(name: str, text: str, info: dict[str, PathInfo]) -> MapState:
    """Decode what `_state_script` printed, with the paths' `info` (ValueError when it is
    not that)."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        raise ValueError(f"map {name}: no status (is it a multipath map?)")
    uptime = float(lines[0].split()[0])
    status = parse_multipath_status(lines[1])
    mpd: dict[str, tuple[str, int | None]] = {}
    ios: dict[str, int] = {}
    for ln in lines[2:]:
        parts = ln.split()
        if parts[0] == "stat" and len(parts) == 4:
            ios[parts[1]] = int(parts[2]) + int(parts[3])
        elif parts[0] == "mpd" and len(parts) >= 3:
            prio = int(parts[3]) if len(parts) > 3 and re.fullmatch(r"-?\d+", parts[3]) \
                else None
            mpd[parts[1]] = (parts[2], prio)
    paths = []
    for gi, group in enumerate(status.groups, 1):
        for dm in group.paths:
            pi = info.get(dm.dev_t, PathInfo("", "", None))
            checker, prio = mpd.get(dm.dev_t, ("", None))
            paths.append(PathState(pi.dev, dm.dev_t, pi.hctl, pi.target, dm.active,
                                   dm.fail_count, gi, group.state, checker, prio,
                                   ios.get(pi.dev, 0)))
    return MapState(name, status, tuple(paths), uptime)


# per guest and map: what does not change about its paths
_path_info_cache: weakref.WeakKeyDictionary[Guest, dict[str, dict[str, PathInfo]]] = \
    weakref.WeakKeyDictionary()


async def map_state(guest: Guest, name: str) -> MapState:
    """Map `name` now: groups, paths, the array port of each, I/Os per path. What does
    not change about a path (its device and array port) is looked up once per guest and
    map, again only when the map gains a path."""
    maps = _path_info_cache.setdefault(guest, {})
    info = maps.get(name, {})
    res = await guest.run(_state_script(name, [i.dev for i in info.values()]), check=True)
    text = res.output
    lines = text.splitlines()
    status = parse_multipath_status(lines[1]) if len(lines) > 1 else None
    if status is not None and any(p.dev_t not in info for g in status.groups
                                  for p in g.paths):
        found = await guest.run(f"set -- '{name.replace(chr(39), '')}'\n{_PATH_INFO}",
                                check=True)
        info = parse_path_info(found.output)
        maps[name] = info
        res = await guest.run(_state_script(name, [i.dev for i in info.values()]),
                              check=True)
        text = res.output
    return parse_map_state(name, text, info)


async def rport_timeouts(guest: Guest) -> dict[WWN, tuple[str, str]]:
    """{remote port WWPN: (fast_io_fail_tmo, dev_loss_tmo)} as sysfs shows them, for every
    FC remote port with SCSI devices (the array ports)."""
    res = await guest.run(
        "for r in /sys/class/fc_remote_ports/rport-*; do\n"
        "  ls -d $r/device/target* >/dev/null 2>&1 || continue\n"
        "  echo $(cat $r/port_name $r/fast_io_fail_tmo $r/dev_loss_tmo)\n"
        "done\n", check=True)
    out = {}
    for line in res.output.splitlines():
        parts = line.split()
        if len(parts) == 3:
            out[WWN(int(parts[0], 16))] = (parts[1], parts[2])
    return out
