"""The guest's boot files: a kernel and an initramfs, built once and cached.

Theory of operation. The kernel comes from Debian's kernel package: `apt-cache depends
linux-image-amd64` names the current `linux-image-VERSION` package, `apt-get download`
fetches it, `dpkg -x` unpacks it, and `depmod -b` writes its module dependencies. A kernel
of the user's own is a bzImage (`--kernel`) and its module tree (`--modules`, the
`lib/modules/VERSION` directory; its modules.dep is used when present, else depmod writes one
in a copy).

The initramfs is a cpio archive (see fcsoft.guest.cpio) holding:

- busybox (from busybox-static), which provides the shell, `ip`, `modprobe`, `dd` ...;
- the host's sg3_utils programs and every shared library they load (found with `ldd`), so
  `sg_inq`, `sg_luns`, `sg_persist`, `sg_dd` ... run in the guest as on the host;
- when the host has them, multipath-tools (`multipathd`, `multipath`) and `dmsetup`, with
  the files they load at run time that `ldd` cannot name (`OPTIONAL_FILES`: the checker
  and prioritizer plugins, libgcc_s);
- the modules of `ImageSpec.modules` with everything they depend on, uncompressed, and a
  modules.dep for busybox modprobe;
- /init and the command agent (fcsoft/guest/files/), which the guest runs at boot.

Everything lands under `$XDG_CACHE_HOME/fcsoft/guest/` (default `~/.cache/...`), one
directory per kernel version: the kernel package, the kernel, and one initramfs per
distinct `ImageSpec` and host binaries (a hash of both names the file). A second run finds
them and builds nothing. Builds take a lock file, so several processes (or guests started
at once) build an image once; they write to a temporary name and rename into place. The
six most recently used initramfs files of a kernel are kept, and when Debian's kernel
moves on, the older kernel's directory is removed.

To add a module or a program to every guest, add its name to `DEFAULT_MODULES` or
`DEFAULT_BINARIES` (or `OPTIONAL_BINARIES`, for programs that are copied when the host has
them, and `OPTIONAL_FILES`, for files such as plugins that a program opens by path).
"""

from __future__ import annotations

import fcntl
import glob
import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .cpio import CpioWriter
from .errors import GuestError, which

# bumped whenever the layout of the initramfs changes, so cached images are rebuilt
IMAGE_FORMAT = 1

# the agent's channel (virtio-serial), the FCoE initiator stack, and SCSI disks and sg nodes
AGENT_MODULES = ("virtio_pci", "virtio_console")
FCOE_MODULES = ("virtio_net", "fcoe", "libfcoe", "libfc", "scsi_transport_fc", "sd_mod", "sg")
# LIO, the kernel's SCSI target, over FCoE (tcm_fc), with memory and file backstores: the
# guest as an FC target (fcsoft.guest.lio)
TARGET_MODULES = ("configfs", "target_core_mod", "target_core_file", "tcm_fc")
# device-mapper multipath with its path selectors, and the ALUA device handler: multipath
# over the paths to an array (fcsoft.guest.multipath)
MULTIPATH_MODULES = ("dm_mod", "dm_multipath", "dm_round_robin", "dm_service_time",
                     "dm_queue_length", "scsi_dh_alua")
# in the image, loaded on demand: scsi_debug, a local SCSI disk for checks without a fabric,
# the target modules and multipath
EXTRA_MODULES = ("scsi_debug", *TARGET_MODULES, *MULTIPATH_MODULES)
DEFAULT_MODULES = AGENT_MODULES + FCOE_MODULES + EXTRA_MODULES

# sg3_utils programs every guest has (they must exist on the host: package sg3-utils)
DEFAULT_BINARIES = (
    "sg_inq", "sg_luns", "sg_readcap", "sg_persist", "sg_dd", "sg_turs", "sg_vpd", "sg_raw",
    "sg_rtpg", "sg_reset", "sg_requests", "sg_modes", "sg_map", "sg_scan",
)
# programs copied in when the host has them: multipath-tools and dmsetup
OPTIONAL_BINARIES: tuple[str, ...] = ("multipathd", "multipath", "dmsetup")
# files copied in, to the same path, when the host has them (glob patterns; a file reached
# by two patterns through a symbolic link is copied once, under the first): what programs
# open at run time, which ldd does not list. multipath-tools loads its path checkers and
# prioritizers from its plugin directory (/lib/multipath on Debian 12, under the
# multiarch directory elsewhere), and glibc loads libgcc_s for pthread_cancel, which
# multipathd calls (without it multipathd aborts at start).
OPTIONAL_FILES: tuple[str, ...] = (
    "/lib/multipath/*.so", "/usr/lib/multipath/*.so",
    "/lib/x86_64-linux-gnu/multipath/*.so", "/usr/lib/x86_64-linux-gnu/multipath/*.so",
    "/lib/x86_64-linux-gnu/libgcc_s.so.1", "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1",
)

DEBIAN_META_PACKAGE = "linux-image-amd64"
LOOKUP_MAX_AGE = 24 * 3600.0  # seconds the answer of apt-cache is reused
KEEP_IMAGES = 6  # initramfs files kept per kernel (each a few MB)


@dataclass(frozen=True)
class ImageSpec:
    """What goes into an initramfs besides busybox, /init and the agent."""

    modules: tuple[str, ...] = DEFAULT_MODULES
    binaries: tuple[str, ...] = DEFAULT_BINARIES
    optional_binaries: tuple[str, ...] = OPTIONAL_BINARIES
    optional_files: tuple[str, ...] = OPTIONAL_FILES


@dataclass(frozen=True)
class BootFiles:
    """A kernel and an initramfs that boot together."""

    kernel: Path
    initrd: Path
    version: str
    built: bool = False  # True when this call built the initramfs (False: from the cache)
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def cache_root() -> Path:
    """`$XDG_CACHE_HOME/fcsoft/guest`, or `~/.cache/fcsoft/guest`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fcsoft" / "guest"


def normalize_module(name: str) -> str:
    """Module names compare with '-' and '_' alike (dm-multipath is dm_multipath)."""
    return name.replace("-", "_")


# -- kernels -------------------------------------------------------------------------


def _run(argv: Sequence[str], what: str, cwd: Path | None = None) -> str:
    """Run a host program; a failure becomes one GuestError line naming `what`."""
    try:
        proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, check=False,
                              timeout=900)
    except subprocess.TimeoutExpired:
        raise GuestError(f"{what}: {argv[0]} took too long") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("E:", "error", "ERROR"))] or lines
        detail = errors[-1] if errors else f"exit status {proc.returncode}"
        raise GuestError(f"{what}: {detail}")
    return proc.stdout


def debian_kernel_package() -> str:
    """The `linux-image-VERSION` package that Debian's linux-image-amd64 depends on now."""
    which("apt-cache")
    out = _run(["apt-cache", "depends", DEBIAN_META_PACKAGE],
               f"cannot look up {DEBIAN_META_PACKAGE} (run apt-get update, or give --kernel)")
    m = re.search(r"Depends:\s*(linux-image-[0-9][^\s]*)", out)
    if m is None:
        raise GuestError(f"cannot find the kernel package that {DEBIAN_META_PACKAGE} depends on "
                         "(run apt-get update, or give --kernel and --modules)")
    return m.group(1)


def current_debian_package(root: Path, max_age: float = LOOKUP_MAX_AGE) -> str:
    """`debian_kernel_package()`, remembered in the cache for `max_age` seconds (apt-cache
    takes about a second); the newest cached kernel when apt-cache cannot tell."""
    record = root / "debian-kernel"
    try:
        if time.time() - record.stat().st_mtime < max_age:
            package = record.read_text().strip()
            if (root / package.removeprefix("linux-image-") / "vmlinuz").is_file():
                return package
    except OSError:
        pass
    try:
        package = debian_kernel_package()
    except GuestError:
        cached = _cached_debian_versions(root)
        if not cached:
            raise
        return f"linux-image-{cached[-1]}"
    root.mkdir(parents=True, exist_ok=True)
    record.write_text(package + "\n")
    return package


def _cached_debian_versions(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "vmlinuz").is_file()
                  and not p.name.startswith("custom-"))


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory`/.lock (blocking)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class _KernelTree:
    """An unpacked kernel: the bzImage, and the module directory with a modules.dep."""

    kernel: Path
    moddir: Path | None
    version: str


def _unpack_debian(deb: Path, work: Path, version: str) -> _KernelTree:
    which("dpkg")
    which("depmod")
    root = work / "root"
    _run(["dpkg", "-x", str(deb), str(root)], f"cannot unpack {deb.name}")
    kernel = root / "boot" / f"vmlinuz-{version}"
    moddir = root / "lib" / "modules" / version
    if not moddir.is_dir():  # a merged-/usr package
        moddir = root / "usr" / "lib" / "modules" / version
        root = root / "usr"  # depmod -b wants BASE/lib/modules/VERSION
    if not kernel.is_file() or not moddir.is_dir():
        raise GuestError(f"{deb.name} has no boot/vmlinuz-{version} or lib/modules/{version}")
    _run(["depmod", "-b", str(root), version], f"depmod failed on {deb.name}")
    return _KernelTree(kernel, moddir, version)


def _custom_tree(kernel: Path, modules: Path | None, work: Path) -> _KernelTree:
    """The user's kernel and module tree; depmod runs in a copy when modules.dep is absent."""
    if not kernel.is_file():
        raise GuestError(f"--kernel {kernel}: no such file")
    if modules is None:
        return _KernelTree(kernel, None, "custom")
    if not modules.is_dir():
        raise GuestError(f"--modules {modules}: no such directory")
    candidates = sorted((modules / "lib" / "modules").glob("*")) if (
        modules / "lib" / "modules").is_dir() else []
    moddir = candidates[0] if len(candidates) == 1 else modules
    version = moddir.resolve().name
    if not (moddir / "modules.dep").is_file():
        which("depmod")
        copy = work / "root" / "lib" / "modules" / version
        shutil.copytree(moddir, copy, symlinks=False)
        _run(["depmod", "-b", str(work / "root"), version], f"depmod failed on {modules}")
        moddir = copy
    return _KernelTree(kernel, moddir, version)


# -- modules -------------------------------------------------------------------------


def read_modules_dep(moddir: Path) -> dict[str, tuple[str, list[str]]]:
    """modules.dep as {normalized name: (relative path, [relative paths it needs])}."""
    table: dict[str, tuple[str, list[str]]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        path, sep, deps = line.partition(":")
        if not sep:
            continue
        table[_module_name(path)] = (path.strip(), deps.split())
    return table


def _module_name(path: str) -> str:
    base = path.strip().rsplit("/", 1)[-1]
    return normalize_module(base.split(".ko", 1)[0])


def _builtin(moddir: Path) -> set[str]:
    f = moddir / "modules.builtin"
    if not f.is_file():
        return set()
    return {_module_name(line) for line in f.read_text().splitlines() if line.strip()}


def module_closure(moddir: Path, wanted: Sequence[str]) -> list[str]:
    """Relative paths of the `wanted` modules and all they depend on; built-in ones are
    skipped; GuestError for a module the tree does not have."""
    table = read_modules_dep(moddir)
    builtin = _builtin(moddir)
    paths: dict[str, None] = {}
    for name in wanted:
        key = normalize_module(name)
        if key in table:
            path, deps = table[key]
            for p in [*deps, path]:
                paths.setdefault(p, None)
        elif key not in builtin:
            raise GuestError(f"kernel module {name} is not in {moddir}")
    return list(paths)


def _module_bytes(path: Path) -> bytes:
    """The module file's contents, decompressed (.ko.xz, .ko.gz) for busybox insmod."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        raise GuestError(f"{path.name}: zstd-compressed modules are not supported "
                         "(decompress the module tree first)")
    return data


def _plain_name(path: str) -> str:
    for suffix in (".xz", ".gz"):
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


# -- host programs -------------------------------------------------------------------


def shared_libraries(binary: Path) -> list[Path]:
    """The shared libraries `binary` loads, with the dynamic loader (none when static)."""
    proc = subprocess.run([str(which("ldd")), str(binary)], capture_output=True, text=True,
                          check=False)
    libs: list[Path] = []
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(Path(m.group(1)))
    return libs


def _binary_paths(spec: ImageSpec) -> dict[str, Path]:
    found = {"busybox": which("busybox")}
    for name in spec.binaries:
        found[name] = which(name)
    for name in spec.optional_binaries:
        path = shutil.which(name)
        if path is not None:
            found[name] = Path(path)
    return found


def optional_files(patterns: Sequence[str]) -> dict[str, Path]:
    """The host files the glob `patterns` match, as {path in the image: host file}; a file
    that two patterns reach (through a symbolic link such as /lib -> usr/lib) only under
    the first path found."""
    found: dict[str, Path] = {}
    seen: set[Path] = set()
    for pattern in patterns:
        for name in sorted(glob.glob(pattern)):
            path = Path(name)
            try:
                real = path.resolve(strict=True)
            except OSError:
                continue
            if real in seen or not real.is_file():
                continue
            seen.add(real)
            found[name] = path
    return found


# -- the initramfs -------------------------------------------------------------------


def _guest_file(name: str) -> bytes:
    return resources.files("fcsoft.guest").joinpath("files", name).read_bytes()


def _spec_key(spec: ImageSpec, binaries: dict[str, Path], tree_id: str,
              files: dict[str, Path] | None = None) -> str:
    h = hashlib.sha256()
    h.update(repr((IMAGE_FORMAT, tree_id, sorted(spec.modules))).encode())
    for name, path in sorted(binaries.items()):
        st = path.stat()
        h.update(f"{name}={path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for name, path in sorted((files or {}).items()):
        st = path.stat()
        h.update(f"file {name}={path}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for name in ("init", "agent"):
        h.update(_guest_file(name))
    return h.hexdigest()[:16]


def write_initramfs(out: Path, tree: _KernelTree, spec: ImageSpec,
                    binaries: dict[str, Path], files: dict[str, Path] | None = None) -> None:
    """Write the cpio archive for `spec` to `out` (`files`: further host files, by their
    path in the image, with the shared libraries they load)."""
    with open(out, "wb") as f:
        cpio = CpioWriter(f)
        for d in ("bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "run",
                  "etc", "root", "mnt"):
            cpio.directory(d)
        cpio.file("init", _guest_file("init"), 0o755)
        cpio.file("etc/fcsoft/agent", _guest_file("agent"), 0o755)
        cpio.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        cpio.file("etc/group", b"root:x:0:\n")
        libs: dict[Path, None] = {}
        for name, path in binaries.items():
            target = "bin/busybox" if name == "busybox" else f"usr/bin/{name}"
            cpio.file(target, path.read_bytes(), 0o755)
            for lib in shared_libraries(path):
                libs.setdefault(lib, None)
        for name, path in (files or {}).items():
            cpio.file(name, path.read_bytes(), 0o755)
            for lib in shared_libraries(path):
                libs.setdefault(lib, None)
        for name in files or {}:  # written already
            libs.pop(Path(name), None)
        for lib in libs:
            cpio.file(str(lib), lib.read_bytes(), 0o755)
        if tree.moddir is not None:
            _add_modules(cpio, tree, spec)
        cpio.close()


def _add_modules(cpio: CpioWriter, tree: _KernelTree, spec: ImageSpec) -> None:
    assert tree.moddir is not None
    base = f"lib/modules/{tree.version}"
    wanted = module_closure(tree.moddir, spec.modules)
    table = read_modules_dep(tree.moddir)
    for rel in wanted:
        cpio.file(f"{base}/{_plain_name(rel)}", _module_bytes(tree.moddir / rel))
    included = set(wanted)
    lines = []
    for _name, (path, deps) in table.items():
        if path in included:
            plain = [_plain_name(d) for d in deps]
            lines.append(f"{_plain_name(path)}: {' '.join(plain)}".rstrip())
    cpio.file(f"{base}/modules.dep", ("\n".join(lines) + "\n").encode())
    for extra in ("modules.builtin", "modules.order"):
        f = tree.moddir / extra
        if f.is_file():
            cpio.file(f"{base}/{extra}", f.read_bytes())


def build(spec: ImageSpec | None = None, kernel: Path | None = None,
          modules: Path | None = None) -> BootFiles:
    """The kernel and initramfs for `spec`, from the cache or built now (blocking: run it
    in a thread from async code).

    Without `kernel`, Debian's current kernel package is used (downloaded on first use).
    """
    spec = spec or ImageSpec()
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    binaries = _binary_paths(spec)
    files = optional_files(spec.optional_files)
    root = cache_root()
    if kernel is None:
        package = current_debian_package(root)
        version = package.removeprefix("linux-image-")
        vdir = root / version
        tree_id = f"debian:{version}"
    else:
        st = kernel.stat() if kernel.is_file() else None
        ident = f"{kernel.resolve()}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}"
        ident += f"|{modules.resolve() if modules else ''}"
        version = "custom"
        vdir = root / f"custom-{hashlib.sha256(ident.encode()).hexdigest()[:12]}"
        tree_id = ident
    key = _spec_key(spec, binaries, tree_id, files)
    initrd = vdir / f"initramfs-{key}.cpio"
    vmlinuz = vdir / "vmlinuz"
    with _locked(vdir):
        if initrd.is_file() and vmlinuz.is_file():
            if kernel is not None:
                version = (vdir / "version").read_text().strip()
            os.utime(initrd)  # most recently used: kept longest
            timings["total"] = time.monotonic() - t0
            return BootFiles(vmlinuz, initrd, version, built=False, timings=timings)
        for stale in vdir.glob("build-*"):  # left by a build that was killed
            shutil.rmtree(stale, ignore_errors=True)
        # everything a build needs, checked before a long download
        for tool in ("ldd", "dpkg", "depmod") if kernel is None else ("ldd",):
            which(tool)
        with tempfile.TemporaryDirectory(dir=vdir, prefix="build-") as tmp:
            work = Path(tmp)
            if kernel is None:
                tree = _debian_tree(package, version, vdir, work, timings)
            else:
                tree = _custom_tree(kernel, modules, work)
                version = tree.version
            t1 = time.monotonic()
            partial = work / "initramfs.cpio"
            write_initramfs(partial, tree, spec, binaries, files)
            timings["initramfs"] = time.monotonic() - t1
            if not vmlinuz.is_file() or kernel is not None:
                shutil.copyfile(tree.kernel, work / "vmlinuz")
                os.replace(work / "vmlinuz", vmlinuz)
            (vdir / "version").write_text(version + "\n")
            os.replace(partial, initrd)
        _prune_images(vdir)
    if kernel is None:
        _prune_kernels(root, keep=vdir)
    timings["total"] = time.monotonic() - t0
    return BootFiles(vmlinuz, initrd, version, built=True, timings=timings)


def _prune_images(vdir: Path) -> None:
    """Keep the KEEP_IMAGES most recently used initramfs files of a kernel."""
    images = sorted(vdir.glob("initramfs-*.cpio"), key=lambda p: p.stat().st_mtime,
                    reverse=True)
    for old in images[KEEP_IMAGES:]:
        old.unlink(missing_ok=True)


def _prune_kernels(root: Path, keep: Path) -> None:
    """Remove the cached Debian kernels other than `keep` (Debian moved on), skipping any
    that another process is building."""
    for vdir in root.iterdir():
        if vdir == keep or not (vdir / "vmlinuz").is_file() or vdir.name.startswith("custom-"):
            continue
        try:
            with open(vdir / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(vdir, ignore_errors=True)
        except OSError:
            continue


def _debian_tree(package: str, version: str, vdir: Path, work: Path,
                 timings: dict[str, float]) -> _KernelTree:
    """Unpack Debian's kernel package (downloading it into the cache first if needed)."""
    deb = vdir / f"{package}.deb"
    if not deb.is_file():
        t = time.monotonic()
        which("apt-get")
        dl = work / "download"
        dl.mkdir()
        os.chmod(dl, 0o777)  # apt-get's download sandbox user writes here when run as root
        _run(["apt-get", "download", "-q", package], f"cannot download {package}", cwd=dl)
        debs = list(dl.glob("*.deb"))
        if len(debs) != 1:
            raise GuestError(f"cannot download {package}: apt-get download left no .deb")
        os.replace(debs[0], deb)
        timings["download"] = time.monotonic() - t
    t = time.monotonic()
    tree = _unpack_debian(deb, work, version)
    timings["unpack"] = time.monotonic() - t
    return tree
