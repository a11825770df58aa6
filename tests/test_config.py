"""The config loader (docs/config.md): the built-in lab, defaults, and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fcsoft.config import (
    ArrayConfig,
    Config,
    ConfigError,
    FabricConfig,
    HostConfig,
    LunConfig,
    ZoneConfig,
    builtin_config_path,
    load_builtin,
    load_config,
    parse_config,
    parse_listen,
    parse_size,
)
from fcsoft.wire.wwn import WWN

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data" / "configs"
MiB = 1 << 20
GiB = 1 << 30


def assert_one_line(exc: ConfigError, source: str, key: str, problem: str) -> None:
    """The message is one line: SOURCE: KEY: PROBLEM (problem matched as a substring)."""
    msg = str(exc)
    assert len(msg.splitlines()) == 1, msg
    prefix = f"{source}: {key}: " if key else f"{source}: "
    assert msg.startswith(prefix), msg
    assert problem in msg[len(prefix):], msg
    assert (exc.source, exc.key) == (source, key)


# --- the built-in lab -------------------------------------------------------------------------

def test_lab_config_values() -> None:
    conf = load_builtin()
    f = conf.fabric
    assert f == FabricConfig(name="lab", listen=("127.0.0.1", 3225), domain_id=1,
                             wwn=WWN("10:00:00:05:1e:00:00:01"), default_zone="allow",
                             duplicate_wwpn="reject", rscn_coalesce_ms=50)
    assert conf.zones == ()
    (array,) = conf.arrays
    assert array.name == "array1"
    assert array.node_wwn == WWN("50:01:43:80:00:00:00:00")
    assert array.ports == (WWN("50:01:43:80:00:00:00:01"), WWN("50:01:43:80:00:00:00:02"))
    assert (array.vendor, array.product) == ("FCSOFT", "VDISK")
    assert array.luns == (LunConfig("boot", 64 * MiB, 512, "memory"),
                          LunConfig("data", 1 * GiB, 512, "memory"),
                          LunConfig("logs", 256 * MiB, 4096, "memory"))
    host, guests = array.hosts
    assert host.name == "host1"
    assert host.initiators == (WWN("10:00:00:00:c9:00:00:01"), WWN("10:00:00:00:c9:00:00:02"),
                               WWN("10:00:00:00:c9:00:00:03"))  # three, for fcsoft check
    assert host.luns == ((0, "boot"), (1, "data"), (2, "logs"))
    assert host.lun_map == {0: "boot", 1: "data", 2: "logs"}
    # the guest lab's ENodes: WWPN 20:00 + MAC, for MACs 52:54:00:fc:00:01 and :02
    assert guests.initiators == (WWN("20:00:52:54:00:fc:00:01"),
                                 WWN("20:00:52:54:00:fc:00:02"))
    assert guests.luns == host.luns
    assert array.lun("logs").blocks == 256 * MiB // 4096
    assert conf.array("array1") is array
    assert conf.source == str(builtin_config_path())


def test_packaged_lab_is_configs_lab() -> None:
    packaged = builtin_config_path()
    assert packaged.is_file()
    assert packaged.read_bytes() == (REPO / "configs" / "lab.toml").read_bytes()
    # one source of truth: the tree's copy is a relative symlink into the package
    link = REPO / "configs" / "lab.toml"
    assert link.is_symlink() and os.readlink(link) == "../fcsoft/configs/lab.toml"


def test_lab_config_is_hashable_and_equal_when_reloaded() -> None:
    a, b = load_builtin(), load_config(REPO / "configs" / "lab.toml")
    assert a.fabric == b.fabric and a.arrays == b.arrays
    assert hash(a.arrays) == hash(b.arrays)


def test_full_fixture_every_key() -> None:
    conf = load_config(DATA / "full.toml")
    assert conf.fabric == FabricConfig("full", ("::1", 0), 239, WWN("10:00:00:05:1e:ff:ff:ff"),
                                       "deny", "replace", 0, 1, 1, 100, 100)
    assert conf.zones[1] == ZoneConfig("host1_b", (WWN("10:00:00:00:c9:00:00:01"),
                                                   WWN("50:01:43:80:00:00:01:01")))
    a, b = conf.arrays
    assert (a.vendor, a.product) == ("ACME1234", "Sixteen chars...")
    assert a.lun("big").size == 3 * (1 << 39)
    assert a.lun("bytes") == LunConfig("bytes", 4096)
    assert a.hosts[0].luns == ((0, "bytes"), (16383, "big"))
    assert a.hosts[1].luns == ()
    # the same initiator may be a host of several arrays
    assert b.hosts[0].initiators == a.hosts[0].initiators


# --- defaults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "[fabric]\n", "# nothing\n"])
def test_defaults(text: str) -> None:
    conf = parse_config(text)
    assert conf == Config(source="<string>")
    f = conf.fabric
    assert (f.name, f.listen, f.domain_id, str(f.wwn)) == ("fcsoft", ("127.0.0.1", 3225), 1,
                                                          "10:00:00:05:1e:00:00:01")
    assert (f.default_zone, f.duplicate_wwpn, f.rscn_coalesce_ms) == ("allow", "reject", 50)
    assert (f.max_links, f.max_npiv_per_link, f.r_a_tov_ms, f.e_d_tov_ms) == (4096, 255,
                                                                             10000, 2000)
    assert conf.zones == conf.arrays == ()


def test_array_defaults() -> None:
    conf = parse_config('[[array]]\nname = "a"\nnode_wwn = "50:01:43:80:00:00:00:00"\n'
                        'ports = ["50:01:43:80:00:00:00:01"]\n'
                        '[[array.lun]]\nname = "l"\nsize = "1MiB"\n')
    (array,) = conf.arrays
    assert (array.vendor, array.product, array.hosts) == ("FCSOFT", "VDISK", ())
    assert array.luns == (LunConfig("l", MiB, 512, "memory"),)


# --- backing paths ----------------------------------------------------------------------------

def test_relative_backing_resolved_against_config_dir() -> None:
    conf = load_config(DATA / "relative_backing.toml")
    luns = {lun.name: lun.backing for lun in conf.arrays[0].luns}
    assert luns == {"near": DATA / "disks" / "near.img",
                    "up": DATA / ".." / "elsewhere" / "up.img",
                    "absolute": Path("/var/tmp/fcsoft-absolute.img"),
                    "ram": "memory"}
    assert not (DATA / "disks").exists()  # resolving paths creates nothing


def test_relative_config_path_and_backing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(DATA.parent)
    conf = load_config("configs/relative_backing.toml")
    assert conf.source == "configs/relative_backing.toml"
    assert conf.arrays[0].luns[0].backing == DATA / "disks" / "near.img"


def test_parse_config_base_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DATA / "relative_backing.toml").read_text()
    conf = parse_config(text, base_dir=tmp_path)
    assert conf.arrays[0].luns[0].backing == tmp_path / "disks" / "near.img"
    monkeypatch.chdir(tmp_path)
    conf = parse_config(text)  # no base_dir: the current directory
    assert conf.arrays[0].luns[0].backing == tmp_path / "disks" / "near.img"


# --- errors -----------------------------------------------------------------------------------

ARRAY = '''
[[array]]
name = "a1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["50:01:43:80:00:00:00:01", "50:01:43:80:00:00:00:02"]
[[array.lun]]
name = "boot"
size = "64MiB"
[[array.lun]]
name = "data"
size = "1GiB"
[[array.host]]
name = "h1"
initiators = ["10:00:00:00:c9:00:00:01"]
luns = { 0 = "boot", 1 = "data" }
'''
ARRAY2 = '''
[[array]]
name = "a2"
node_wwn = "50:01:43:80:00:00:01:00"
ports = ["50:01:43:80:00:00:01:01"]
'''
PORT1 = '"50:01:43:80:00:00:00:01"'
INIT1 = '"10:00:00:00:c9:00:00:01"'
HOST2 = '[[array.host]]\nname = "h2"\ninitiators = ["10:00:00:00:c9:00:00:02"]\n'


def edit(old: str, new: str, base: str = ARRAY) -> str:
    assert old in base
    return base.replace(old, new, 1)


def fabric(line: str) -> str:
    return f"[fabric]\n{line}\n"


ERRORS = [
    # TOML syntax: no key path, the position instead
    ("syntax", "[fabric\n", "line 1, column 8", "TOML syntax error"),
    ("syntax-value", "[fabric]\nname = \n", "line 2, column 8", "TOML syntax error"),
    ("syntax-twice", "[fabric]\nname = 'a'\nname = 'b'\n", "line 3, column 11",
     "TOML syntax error"),
    ("syntax-end", "[fabric]\nname", "end of file", "TOML syntax error"),
    ("syntax-deep", "x = " + "[" * 100_000, "", "TOML syntax error: nested too deeply"),
    # unknown keys at every level
    ("unknown-top", "colour = 1\n", "colour", "unknown key"),
    ("unknown-fabric", fabric("colour = 'red'"), "fabric.colour", "unknown key"),
    ("unknown-suggest", fabric("domain_ids = 2"), "fabric.domain_ids",
     "unknown key (did you mean 'domain_id'?)"),
    ("unknown-zone", "[[zone]]\nname = 'z'\nmember = []\n", "zone[0].member",
     "did you mean 'members'?"),
    ("unknown-array", edit('name = "a1"', 'name = "a1"\nwwn = "1"'), "array[0].wwn",
     "unknown key"),
    ("unknown-lun", edit('size = "1GiB"', 'size = "1GiB"\nthin = true'), "array[0].lun[1].thin",
     "unknown key"),
    ("unknown-host", edit('name = "h1"', 'name = "h1"\nos = "linux"'), "array[0].host[0].os",
     "unknown key"),
    ("unknown-quoted", '"a b" = 1\n', '"a b"', "unknown key"),
    ("unknown-newline", '"a\\nb" = 1\n', '"a\\nb"', "unknown key"),
    ("unknown-plural", edit("[[array.lun]]", "[[array.luns]]"), "array[0].luns",
     "did you mean 'lun'?"),
    # wrong value types
    ("type-fabric", "fabric = 3\n", "fabric", "expected a table, not an integer (3)"),
    ("type-int", fabric("domain_id = '1'"), "fabric.domain_id",
     "expected an integer, not a string ('1')"),
    ("type-bool", fabric("max_links = true"), "fabric.max_links",
     "expected an integer, not a boolean (True)"),
    ("type-float", fabric("rscn_coalesce_ms = 1.5"), "fabric.rscn_coalesce_ms",
     "expected an integer, not a float (1.5)"),
    ("type-str", fabric("name = 5"), "fabric.name", "expected a string, not an integer (5)"),
    ("type-date", fabric("name = 1979-05-27"), "fabric.name", "expected a string, not a date"),
    ("type-zone-table", "[zone]\nname = 'z'\n", "zone",
     "expected a list of tables (write [[zone]]), not a table"),
    ("type-zone-item", "zone = [1]\n", "zone[0]", "expected a table, not an integer (1)"),
    ("type-lun-table", ARRAY2 + "[array.lun]\nname = 'x'\n",
     "array[0].lun", "write [[array.lun]]"),
    ("type-ports", edit(f'ports = [{PORT1}, "50:01:43:80:00:00:00:02"]', f"ports = {PORT1}"),
     "array[0].ports", "expected a list of WWN strings, not a string"),
    ("type-luns", edit('luns = { 0 = "boot", 1 = "data" }', 'luns = ["boot"]'),
     "array[0].host[0].luns", 'expected a table of LUN number = "LUN name"'),
    ("type-lun-name", edit('1 = "data"', "1 = 1"), "array[0].host[0].luns.1",
     "expected a LUN name (a string), not an integer (1)"),
    ("type-size", edit('size = "1GiB"', "size = 1.5"), "array[0].lun[1].size",
     'expected a size such as "64MiB" or a number of bytes, not a float (1.5)'),
    ("type-block-size", edit('size = "1GiB"', 'size = "1GiB"\nblock_size = "512"'),
     "array[0].lun[1].block_size", "expected an integer, not a string ('512')"),
    ("type-backing", edit('size = "1GiB"', 'size = "1GiB"\nbacking = false'),
     "array[0].lun[1].backing", "expected a string, not a boolean"),
    ("type-vendor", edit('name = "a1"', 'name = "a1"\nvendor = 7'), "array[0].vendor",
     "expected a string"),
    # missing required keys
    ("missing-array-name", edit('name = "a1"\n', ""), "array[0].name", "required key is missing"),
    ("missing-node-wwn", edit('node_wwn = "50:01:43:80:00:00:00:00"\n', ""),
     "array[0].node_wwn", "required key is missing"),
    ("missing-ports", ARRAY2.replace('ports = ["50:01:43:80:00:00:01:01"]\n', ""),
     "array[0].ports", "required key is missing"),
    ("missing-size", edit('size = "1GiB"\n', ""), "array[0].lun[1].size",
     "required key is missing"),
    ("missing-initiators", edit('initiators = ["10:00:00:00:c9:00:00:01"]\n', ""),
     "array[0].host[0].initiators", "required key is missing"),
    ("missing-zone-members", "[[zone]]\nname = 'z'\n", "zone[0].members",
     "required key is missing"),
    # bad WWNs
    ("wwn-fabric", fabric("wwn = 'xyz'"), "fabric.wwn", "bad WWN 'xyz'"),
    ("wwn-short", edit('"50:01:43:80:00:00:00:00"', '"50:01:43:80:00:00:00"'),
     "array[0].node_wwn", "bad WWN '50:01:43:80:00:00:00'"),
    ("wwn-port", edit('"50:01:43:80:00:00:00:02"', '"50:01:43:80:00:00:00:zz"'),
     "array[0].ports[1]", "expected 8 colon-separated hex bytes"),
    ("wwn-initiator", edit(INIT1, '"10-00-00-00-c9-00-00-01"'), "array[0].host[0].initiators[0]",
     "bad WWN"),
    ("wwn-not-string", edit(INIT1, "0x1000"), "array[0].host[0].initiators[0]",
     "expected a string, not an integer (4096)"),
    # bad sizes
    ("size-unit", edit('size = "1GiB"', 'size = "12XB"'), "array[0].lun[1].size",
     "bad size '12XB' (use a number with B, KiB, MiB, GiB or TiB)"),
    ("size-si-unit", edit('size = "1GiB"', 'size = "1GB"'), "array[0].lun[1].size",
     "bad size '1GB'"),
    ("size-no-unit", edit('size = "1GiB"', 'size = "4096"'), "array[0].lun[1].size",
     "bad size '4096'"),
    ("size-zero", edit('size = "1GiB"', 'size = "0MiB"'), "array[0].lun[1].size",
     "must be more than 0 bytes"),
    ("size-zero-int", edit('size = "1GiB"', "size = 0"), "array[0].lun[1].size",
     "must be more than 0 bytes"),
    ("size-negative", edit('size = "1GiB"', 'size = "-1MiB"'), "array[0].lun[1].size",
     "bad size '-1MiB'"),
    ("size-negative-int", edit('size = "1GiB"', "size = -4096"), "array[0].lun[1].size",
     "must be more than 0 bytes"),
    ("size-fraction", edit('size = "1GiB"', 'size = "1.3B"'), "array[0].lun[1].size",
     "not a whole number of bytes"),
    ("size-multiple", edit('size = "1GiB"', 'size = "1000B"'), "array[0].lun[1].size",
     "1000 bytes is not a multiple of block_size 512"),
    ("size-multiple-4k", edit('size = "1GiB"', 'size = "6KiB"\nblock_size = 4096'),
     "array[0].lun[1].size", "6144 bytes is not a multiple of block_size 4096"),
    ("size-huge", edit('size = "1GiB"', 'size = "8388608TiB"'), "array[0].lun[1].size",
     "too large"),
    # bad block sizes
    ("block-size-520", edit('size = "1GiB"', 'size = "1GiB"\nblock_size = 520'),
     "array[0].lun[1].block_size", "must be 512 or 4096, not 520"),
    ("block-size-0", edit('size = "64MiB"', 'size = "64MiB"\nblock_size = 0'),
     "array[0].lun[0].block_size", "must be 512 or 4096, not 0"),
    # host LUN maps
    ("lun-unknown", edit('1 = "data"', '1 = "date"'), "array[0].host[0].luns.1",
     "unknown LUN 'date' (this array's LUNs: 'boot', 'data')"),
    ("lun-unknown-none", ARRAY2 + '[[array.host]]\nname = "h"\ninitiators = [' + INIT1
     + ']\nluns = { 0 = "x" }\n', "array[0].host[0].luns.0",
     "unknown LUN 'x' (this array has no LUNs)"),
    ("lun-range", edit('1 = "data"', '16384 = "data"'), "array[0].host[0].luns.16384",
     "must be 0..16383 (flat LUN addressing), not 16384"),
    ("lun-negative", edit('1 = "data"', '-1 = "data"'), "array[0].host[0].luns.-1",
     "LUN number must be an integer 0..16383, not '-1'"),
    ("lun-not-int", edit('1 = "data"', 'one = "data"'), "array[0].host[0].luns.one",
     "LUN number must be an integer"),
    ("lun-float", edit('1 = "data"', '"1.5" = "data"'), 'array[0].host[0].luns."1.5"',
     "LUN number must be an integer"),
    ("lun-huge", edit('1 = "data"', '99999999999999999999 = "data"'),
     "array[0].host[0].luns.99999999999999999999", "LUN number must be an integer"),
    ("lun-number-twice", edit('1 = "data"', '00 = "data"'), "array[0].host[0].luns.00",
     "LUN 0 is mapped twice"),
    ("lun-mapped-twice", edit('1 = "data"', '1 = "boot"'), "array[0].host[0].luns.1",
     "LUN 'boot' is already mapped as LUN 0"),
    # duplicate WWPNs
    ("dup-port-same-array", edit('"50:01:43:80:00:00:00:02"', PORT1), "array[0].ports[1]",
     ("duplicate WWPN 50:01:43:80:00:00:00:01: already an array target port at "
      "array[0].ports[0]")),
    ("dup-port-across-arrays", ARRAY + edit('"50:01:43:80:00:00:01:01"', PORT1, ARRAY2),
     "array[1].ports[0]",
     ("duplicate WWPN 50:01:43:80:00:00:00:01: already an array target "
      "port at array[0].ports[0]")),
    ("dup-initiator-two-hosts", ARRAY + HOST2.replace('"10:00:00:00:c9:00:00:02"', INIT1),
     "array[0].host[1].initiators[0]",
     ("duplicate WWPN 10:00:00:00:c9:00:00:01: already a "
      "host initiator at array[0].host[0].initiators[0]")),
    ("dup-initiator-one-host", edit(f"[{INIT1}]", f"[{INIT1}, {INIT1}]"),
     "array[0].host[0].initiators[1]", "duplicate WWPN"),
    ("dup-port-is-initiator", edit(f"[{INIT1}]", f"[{PORT1}]"),
     "array[0].host[0].initiators[0]",
     ("duplicate WWPN 50:01:43:80:00:00:00:01: already an "
      "array target port at array[0].ports[0]")),
    ("dup-initiator-is-later-port", ARRAY + edit('"50:01:43:80:00:00:01:01"', INIT1, ARRAY2),
     "array[1].ports[0]", "already a host initiator at array[0].host[0].initiators[0]"),
    ("dup-node-wwn", ARRAY + edit('"50:01:43:80:00:00:01:00"', '"50:01:43:80:00:00:00:00"',
                                  ARRAY2),
     "array[1].node_wwn",
     ("duplicate WWN 50:01:43:80:00:00:00:00: already an array's node WWN "
      "at array[0].node_wwn")),
    ("dup-node-is-port", edit('"50:01:43:80:00:00:00:00"', PORT1), "array[0].ports[0]",
     "duplicate WWN"),
    ("dup-fabric-wwn", fabric(f"wwn = {PORT1}") + ARRAY, "array[0].ports[0]",
     "already the fabric WWN at fabric.wwn"),
    # listen addresses
    ("listen-no-port", fabric("listen = '127.0.0.1'"), "fabric.listen",
     "bad listen address '127.0.0.1' (use HOST:PORT"),
    ("listen-port-range", fabric("listen = '127.0.0.1:65536'"), "fabric.listen",
     "port must be 0..65535"),
    ("listen-port-text", fabric("listen = 'localhost:http'"), "fabric.listen",
     "port must be 0..65535"),
    ("listen-no-host", fabric("listen = ':3225'"), "fabric.listen", "use HOST:PORT"),
    ("listen-ipv6-bare", fabric("listen = '::1:3225'"), "fabric.listen",
     "write an IPv6 address in brackets, e.g. [::1]:3225"),
    ("listen-ipv6-bad", fabric("listen = '[::g]:3225'"), "fabric.listen",
     "'::g' is not an IPv6 address"),
    ("listen-ipv4-bad", fabric("listen = '300.1.1.1:3225'"), "fabric.listen",
     "'300.1.1.1' is not a host name or IP address"),
    ("listen-host-bad", fabric("listen = 'my_host!:3225'"), "fabric.listen",
     "is not a host name or IP address"),
    ("listen-type", fabric("listen = 3225"), "fabric.listen", "expected a string"),
    # fabric numbers and choices
    ("domain-0", fabric("domain_id = 0"), "fabric.domain_id", "must be 1..239"),
    ("domain-240", fabric("domain_id = 240"), "fabric.domain_id",
     "must be 1..239 (FC-SW domain IDs), not 240"),
    ("default-zone", fabric("default_zone = 'maybe'"), "fabric.default_zone",
     "must be 'allow' or 'deny', not 'maybe'"),
    ("duplicate-wwpn", fabric("duplicate_wwpn = 'keep'"), "fabric.duplicate_wwpn",
     "must be 'reject' or 'replace', not 'keep'"),
    ("rscn-negative", fabric("rscn_coalesce_ms = -1"), "fabric.rscn_coalesce_ms",
     "must be at least 0, not -1"),
    ("max-links", fabric("max_links = 0"), "fabric.max_links", "must be at least 1, not 0"),
    ("max-npiv", fabric("max_npiv_per_link = 0"), "fabric.max_npiv_per_link", "must be 1..65535"),
    ("r-a-tov", fabric("r_a_tov_ms = 0"), "fabric.r_a_tov_ms", "must be 1..4294967295"),
    ("e-d-tov", fabric("e_d_tov_ms = 20000"), "fabric.e_d_tov_ms",
     "must not exceed r_a_tov_ms (10000), not 20000"),
    ("fabric-name-empty", fabric("name = ''"), "fabric.name", "must not be empty"),
    # duplicate names
    ("dup-zone-name", f"[[zone]]\nname = 'z'\nmembers = [{INIT1}]\n" * 2, "zone[1].name",
     "duplicate zone name 'z' (also zone[0])"),
    ("dup-array-name", ARRAY + ARRAY2.replace('"a2"', '"a1"'), "array[1].name",
     "duplicate array name 'a1' (also array[0])"),
    ("dup-lun-name", edit('name = "data"', 'name = "boot"'), "array[0].lun[1].name",
     "duplicate LUN name 'boot' (also lun[0])"),
    ("dup-host-name", ARRAY + HOST2.replace('"h2"', '"h1"'), "array[0].host[1].name",
     "duplicate host name 'h1' (also host[0])"),
    # names
    ("name-control", edit('name = "a1"', 'name = "a\\u2028b"'), "array[0].name",
     "'a\\u2028b' contains control characters"),
    ("name-blank", edit('name = "h1"', 'name = "  "'), "array[0].host[0].name",
     "must not be empty"),
    # INQUIRY strings
    ("vendor-long", edit('name = "a1"', 'name = "a1"\nvendor = "ABCDEFGHI"'), "array[0].vendor",
     "'ABCDEFGHI' is longer than 8 characters"),
    ("product-long", edit('name = "a1"', 'name = "a1"\nproduct = "ABCDEFGHIJKLMNOPQ"'),
     "array[0].product", "is longer than 16 characters"),
    ("vendor-non-ascii", edit('name = "a1"', 'name = "a1"\nvendor = "Ünï"'), "array[0].vendor",
     "'Ünï' is not printable ASCII"),
    ("product-tab", edit('name = "a1"', 'name = "a1"\nproduct = "a\\tb"'), "array[0].product",
     "is not printable ASCII"),
    ("vendor-empty", edit('name = "a1"', 'name = "a1"\nvendor = ""'), "array[0].vendor",
     "must not be empty"),
    # pinned LU identities (naa / serial)
    ("naa-short", edit('size = "1GiB"', 'size = "1GiB"\nnaa = "6001438"'), "array[0].lun[1].naa",
     "expected 32 hex digits (an NAA 6 name of 16 bytes), not '6001438'"),
    ("naa-not-6", edit('size = "1GiB"', 'size = "1GiB"\nnaa = "' + "5" * 32 + '"'),
     "array[0].lun[1].naa", "is not an NAA 6 name (the first hex digit must be 6)"),
    ("naa-not-hex", edit('size = "1GiB"', 'size = "1GiB"\nnaa = "6' + "g" * 31 + '"'),
     "array[0].lun[1].naa", "expected 32 hex digits"),
    ("naa-type", edit('size = "1GiB"', 'size = "1GiB"\nnaa = 6'), "array[0].lun[1].naa",
     "expected a string"),
    ("naa-twice", edit('size = "64MiB"', 'size = "64MiB"\nnaa = "6' + "1" * 31 + '"',
                       edit('size = "1GiB"', 'size = "1GiB"\nnaa = "6' + "1" * 31 + '"')),
     "array[0].lun[1].naa", "NAA name 6" + "1" * 31 + " is already the one of array[0].lun[0]"),
    ("serial-space", edit('size = "1GiB"', 'size = "1GiB"\nserial = "SN 1"'),
     "array[0].lun[1].serial", "'SN 1' is not printable ASCII without spaces"),
    ("serial-non-ascii", edit('size = "1GiB"', 'size = "1GiB"\nserial = "S\u00e9rie"'),
     "array[0].lun[1].serial", "is not printable ASCII"),
    ("serial-long", edit('size = "1GiB"', 'size = "1GiB"\nserial = "' + "S" * 65 + '"'),
     "array[0].lun[1].serial", "is longer than 64 characters"),
    ("serial-empty", edit('size = "1GiB"', 'size = "1GiB"\nserial = ""'),
     "array[0].lun[1].serial", "must not be empty"),
    ("serial-twice", edit('size = "64MiB"', 'size = "64MiB"\nserial = "SN1"',
                          edit('size = "1GiB"', 'size = "1GiB"\nserial = "SN1"')),
     "array[0].lun[1].serial", "serial number 'SN1' is already the one of array[0].lun[0]"),
    # zones
    ("zone-member-wwn", f"[[zone]]\nname = 'z'\nmembers = [{INIT1}, 'host1']\n",
     "zone[0].members[1]", "bad WWN 'host1'"),
    ("zone-member-type", "[[zone]]\nname = 'z'\nmembers = [1]\n", "zone[0].members[0]",
     "expected a string"),
    ("zone-members-type", f"[[zone]]\nname = 'z'\nmembers = {INIT1}\n", "zone[0].members",
     "expected a list of WWN strings"),
    ("zone-empty", "[[zone]]\nname = 'z'\nmembers = []\n", "zone[0].members",
     "a zone needs at least one member"),
    ("zone-member-twice", f"[[zone]]\nname = 'z'\nmembers = [{INIT1}, {INIT1}]\n",
     "zone[0].members[1]", "10:00:00:00:c9:00:00:01 is listed twice (also members[0])"),
    # arrays and hosts without ports or initiators
    ("array-no-ports", ARRAY2.replace('["50:01:43:80:00:00:01:01"]', "[]"), "array[0].ports",
     "an array needs at least one target port"),
    ("host-no-initiators", edit(f"[{INIT1}]", "[]"), "array[0].host[0].initiators",
     "a host needs at least one initiator"),
    # backing files
    ("backing-empty", edit('size = "1GiB"', 'size = "1GiB"\nbacking = ""'),
     "array[0].lun[1].backing", "bad path ''"),
    ("backing-shared", edit('size = "64MiB"', 'size = "64MiB"\nbacking = "x.img"')
     + edit('size = "1GiB"', 'size = "1GiB"\nbacking = "./x.img"',
            ARRAY2 + '[[array.lun]]\nname = "data"\nsize = "1GiB"\n'),
     "array[1].lun[0].backing", "is already the backing of array[0].lun[0]"),
]


@pytest.mark.parametrize(("text", "key", "problem"), [case[1:] for case in ERRORS],
                         ids=[case[0] for case in ERRORS])
def test_config_errors(text: str, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="bad.toml")
    assert_one_line(info.value, "bad.toml", key, problem)


def test_error_ids_unique() -> None:
    assert len({case[0] for case in ERRORS}) == len(ERRORS)


def test_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text(edit('size = "1GiB"', 'size = "12XB"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == (f"{path}: array[0].lun[1].size: bad size '12XB' (use a number "
                               "with B, KiB, MiB, GiB or TiB)")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_one_line(info.value, str(path), "", "cannot read config file: No such file")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)  # a directory
    assert_one_line(info.value, str(tmp_path), "", "cannot read config file: Is a directory")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root reads files whatever their mode")
def test_file_without_read_permission(tmp_path: Path) -> None:
    path = tmp_path / "secret.toml"
    path.write_text("")
    path.chmod(0)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_one_line(info.value, str(path), "", "cannot read config file: Permission denied")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[fabric]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_one_line(info.value, str(path), "line 2", "not UTF-8")


def test_utf8_bom_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes(b'\xef\xbb\xbf[fabric]\nname = "bom"\n')
    assert load_config(path).fabric.name == "bom"


def test_errors_from_code_have_field_keys() -> None:
    """Dataclasses built in code follow the same rules; the key is the field name."""
    with pytest.raises(ConfigError) as info:
        FabricConfig(domain_id=0)
    assert str(info.value) == "domain_id: must be 1..239 (FC-SW domain IDs), not 0"
    with pytest.raises(ConfigError, match="backing: must be 'memory' or an absolute Path"):
        LunConfig("x", 4096, backing=Path("relative.img"))
    with pytest.raises(ConfigError, match=r"^luns\.16384: must be 0\.\.16383"):
        HostConfig("h", (WWN(1),), luns=((16384, "x"),))
    with pytest.raises(ConfigError, match=r"^host\[0\]\.luns\.0: unknown LUN 'x'"):
        ArrayConfig("a", WWN(1), (WWN(2),), hosts=(HostConfig("h", (WWN(3),), ((0, "x"),)),))
    with pytest.raises(ConfigError, match=r"^array\[1\]\.name: duplicate array name"):
        Config(arrays=(ArrayConfig("a", WWN(1), (WWN(2),)), ArrayConfig("a", WWN(3), (WWN(4),))))


# --- parse_size and parse_listen --------------------------------------------------------------

@pytest.mark.parametrize(("text", "size"), [
    ("512B", 512), ("64MiB", 64 * MiB), ("1GiB", GiB), ("1 KiB", 1024), ("2tib", 2 << 40),
    ("1.5GiB", 3 * GiB // 2), (" 4KiB ", 4096), ("0.5KiB", 512), (4096, 4096),
])
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "1", "1KB", "1 K", "1.KiB", "-1B", "0B", "0.1B",
                                  "1e3B", "\uff11MiB", 0, -1])
def test_parse_size_rejects(text: str | int) -> None:
    with pytest.raises(ValueError, match="bad size"):
        parse_size(text)


@pytest.mark.parametrize("value", [True, 1.0, None, b"1B"])
def test_parse_size_type(value: object) -> None:
    with pytest.raises(TypeError, match="bad size"):
        parse_size(value)  # type: ignore[arg-type]


UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


@given(st.integers(min_value=1, max_value=10**12), st.sampled_from(sorted(UNITS)),
       st.sampled_from(["", " "]), st.booleans())
def test_parse_size_round_trip(count: int, unit: str, space: str, lower: bool) -> None:
    text = f"{count}{space}{unit.lower() if lower else unit}"
    assert parse_size(text) == count * UNITS[unit]


@given(st.integers(min_value=1, max_value=2**60))
def test_parse_size_of_formatted_size(size: int) -> None:
    """Any size, written with the largest unit that divides it, reads back the same."""
    unit = max((u for u, m in UNITS.items() if size % m == 0), key=UNITS.__getitem__)
    assert parse_size(f"{size // UNITS[unit]}{unit}") == size
    assert parse_size(size) == size


@pytest.mark.parametrize(("text", "result"), [
    ("127.0.0.1:3225", ("127.0.0.1", 3225)), ("[::1]:3225", ("::1", 3225)),
    ("localhost:0", ("localhost", 0)), ("0.0.0.0:65535", ("0.0.0.0", 65535)),
    ("[::]:1", ("::", 1)), ("san-01.example.com:3225", ("san-01.example.com", 3225)),
])
def test_parse_listen(text: str, result: tuple[str, int]) -> None:
    assert parse_listen(text) == result


@pytest.mark.parametrize("text", ["", "3225", "host:", "host:-1", "host:99999", "[::1]",
                                  "::1:3225", "[1.2.3.4]:1", "1.2.3:1", "-host:1", "a b:1",
                                  "host:1 ", "host:\uff11"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad listen address"):
        parse_listen(text)


# --- robustness: nothing but ConfigError, always one line -------------------------------------

FRAGMENTS = [
    "[fabric]", "[[zone]]", "[[array]]", "[[array.lun]]", "[[array.host]]", "[zone]", "[array]",
    "[array.host.luns]", 'name = "x"', 'name = "y"', "name = 5", 'listen = "127.0.0.1:0"',
    'listen = "[::1]:99999"', "domain_id = 0", "domain_id = 7", "domain_id = 1e3",
    'wwn = "10:00:00:05:1e:00:00:01"', 'wwn = "zz"', 'members = ["10:00:00:00:c9:00:00:01"]',
    "members = []", 'node_wwn = "50:01:43:80:00:00:00:00"', 'ports = ["50:01:43:80:00:00:00:01"]',
    'ports = ["50:01:43:80:00:00:00:02", "10:00:00:00:c9:00:00:01"]', 'ports = "x"',
    'size = "64MiB"', 'size = "12XB"', "size = 0", "size = 512", "block_size = 4096",
    'backing = "memory"', 'backing = "x.img"', 'backing = "~/x.img"',
    'initiators = ["10:00:00:00:c9:00:00:01"]', 'luns = { 0 = "x" }', 'luns = { 0 = "y" }',
    'luns = { 99999 = "x" }', 'luns = { a.b = "x" }', "luns = []", '0 = "x"',
    'vendor = "ABCDEFGHI"', 'product = "P"', "colour = 1", 'default_zone = "deny"',
    'duplicate_wwpn = "replace"', "rscn_coalesce_ms = -1", "max_links = 0", "e_d_tov_ms = 20000",
    "fabric = 1", "zone = [1, 2]", "array = [{}]", "array = [{ lun = 3 }]", "x = [[[[[]]]]]",
    'name = "\\u0000"', "name = 1979-05-27T07:32:00Z", "size = inf", "size = nan",
]


@settings(deadline=None)
@given(st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS), max_size=25).map("\n".join)))
def test_random_text_raises_only_config_error(text: str) -> None:
    try:
        conf = parse_config(text, source="fuzz.toml")
    except ConfigError as exc:
        msg = str(exc)
        assert len(msg.splitlines()) == 1 and msg.startswith("fuzz.toml: "), msg
    else:
        assert isinstance(conf, Config)


# --- module hygiene ---------------------------------------------------------------------------

def test_import_is_light() -> None:
    """Importing the config module pulls in neither trio nor the TOML parser until used."""
    code = ("import sys, fcsoft.config; "
            "print(sorted(m for m in ('trio', 'tomllib', 'socket', 'difflib', 'importlib."
            "resources') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lu_identity_does_not_depend_on_position() -> None:
    """Reordering [[array.lun]] keeps every LU's NAA name and serial number (multipath keys
    on them); `naa` and `serial` pin them."""
    from fcsoft.scsi.disk import LogicalUnit

    def identities(text: str) -> dict[str, tuple[bytes, str]]:
        array = parse_config(text).arrays[0]
        out = {}
        for i in range(len(array.luns)):
            lu = LogicalUnit(array, i)
            out[lu.name] = (lu.naa, lu.serial)
            lu.close()
        return out

    third = '[[array.lun]]\nname = "logs"\nsize = "1MiB"\n'
    first = identities(ARRAY + third)
    boot = '[[array.lun]]\nname = "boot"\nsize = "64MiB"\n'
    data = '[[array.lun]]\nname = "data"\nsize = "1GiB"\n'
    reordered = ARRAY.replace(boot, "").replace(data, third + data + boot)
    assert reordered != ARRAY + third
    assert identities(reordered) == first
    assert len({naa for naa, _ in first.values()}) == 3
    assert all(serial == naa.hex().upper() for naa, serial in first.values())
    pinned = identities(edit('size = "1GiB"', 'size = "1GiB"\nserial = "DATA-0001"\n'
                             'naa = "60:01:43:80:12:34:56:78:9a:bc:de:f0:00:00:00:01"'))
    assert pinned["data"] == (bytes.fromhex("6001438012345678" "9abcdef000000001"), "DATA-0001")
    assert pinned["boot"] == first["boot"]
