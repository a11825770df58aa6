"""fcsoft check: the suite passes against fcsoft's own array, catches each fault the
reservation engine can inject (and only with the cases that should fail), reports in JUnit
XML, and exits with the right status. The suite talks to the lab over TCP only."""

from __future__ import annotations

import functools
import io
import socket
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import trio

from fcsoft import cli
from fcsoft.check import CheckOptions, Summary, run_check
from fcsoft.check.cases import CASES
from fcsoft.check.junit import junit_xml, write_junit
from fcsoft.check.runner import CaseResult
from fcsoft.config import parse_config
from fcsoft.initiator import open_host
from fcsoft.scsi.reservations import FAULTS as ENGINE_FAULTS
from fcsoft.server.process import run_process
from fcsoft.wire.wwn import WWN

TARGET = "50:01:43:80:00:00:00:01"
TARGET2 = "50:01:43:80:00:00:00:02"
INITIATORS = ("10:00:00:00:c9:00:00:01", "10:00:00:00:c9:00:00:02", "10:00:00:00:c9:00:00:03")
OUTSIDER = "10:00:00:00:c9:00:00:09"  # logs in to the fabric, in no host entry

CONFIG = f"""
[fabric]
rscn_coalesce_ms = 10

[[array]]
name = "a1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["{TARGET}", "{TARGET2}"]

[[array.lun]]
name = "data"
size = "16MiB"

[[array.host]]
name = "hosts"
initiators = {list(INITIATORS)!r}
luns = {{ 0 = "data" }}
""".replace("'", '"')

ALL_CASES = [k.name for k in CASES]

# fault switch -> the cases it must make fail (every other case must still pass)
FAULT_FAILURES: dict[str, set[str]] = {
    "spc2-no-conflict": {"spc2.conflicts", "spc2.reserve-10"},
    "no-ua": {
        "ua.clear", "ua.release.type-5", "ua.release.type-6", "ua.release.type-7",
        "ua.release.type-8", "ua.preempt", "ua.preempt.type-change", "ua.preempt-and-abort",
        "ua.preempt.registration-only", "ua.preempt.all-registrants",
        "ua.holder-unregisters.type-5", "ua.holder-unregisters.type-6",
        "ua.inquiry-not-blocked", "ua.reported-one-at-a-time",
        "multiport.preempt", "multiport.release", "multiport.clear",
    },
    "wrong-generation": {
        "pr-out.register.unregister", "pr-out.register-ignore.unregister",
        "prgeneration.arithmetic",
    },
    "release-keeps-reservation": {
        "pr-out.release.type-1", "pr-out.release.type-3", "pr-out.release.type-5",
        "pr-out.release.type-6", "pr-out.release.type-7", "pr-out.release.type-8",
        "pr-out.release.all-registrants-any-registrant", "multiport.release",
    },
    "preempt-ignores-key": {
        "pr-out.preempt.registration-only", "pr-out.preempt-and-abort.registration-only",
        "pr-out.preempt.all-registrants-key", "pr-out.preempt-and-abort.all-registrants-key",
        "pr-out.preempt.zero-key", "pr-out.preempt.unknown-key",
        "ua.preempt.registration-only",
    },
    "no-conflict": {
        "access.type-1.registered", "access.type-1.unregistered",
        "access.type-3.registered", "access.type-3.unregistered",
        "access.type-5.unregistered", "access.type-6.unregistered",
        "access.type-7.unregistered", "access.type-8.unregistered",
        "ownership.survives-logout",
        "multiport.reservation-is-shared", "multiport.holder-is-a-nexus",
    },
    "spc2-survives-nexus-loss": {"spc2.released-on-logout"},
    "read-keys-short-length": {"pr-in.read-keys.truncated"},
}
# "aptpl-not-saved" only shows after a restart of the array, which the wire cannot cause


@pytest.fixture
def start_lab(nursery):
    """start_lab(fault=None, toml=CONFIG) -> a running fcsoft.server.process.Lab."""
    async def start(fault: str | None = None, toml: str = CONFIG):
        return await nursery.start(functools.partial(
            run_process, parse_config(toml), ("127.0.0.1", 0), fault=fault, wait_ready=True))
    return start


def options(lab, initiators=INITIATORS, outsider: str | None = OUTSIDER,
            patterns=(), target2: str | None = TARGET2, **kw) -> CheckOptions:
    return CheckOptions(fabric=lab.address, target=WWN(TARGET), lun=0,
                        initiators=tuple(WWN(w) for w in initiators),
                        outsider=WWN(outsider) if outsider else None,
                        target2=WWN(target2) if target2 else None,
                        patterns=tuple(patterns), **kw)


async def check(lab, **kw) -> tuple[Summary, str, str]:
    out, err = io.StringIO(), io.StringIO()
    summary = await run_check(options(lab, **kw), out=out, err=err)
    return summary, out.getvalue(), err.getvalue()


def names(summary: Summary, outcome: str) -> set[str]:
    return {r.name for r in summary.results if r.outcome == outcome}


def engine_state(lab):
    engine = lab.array("a1").scsi.units["data"].reservations
    return engine.registrations, engine.reservation, engine.spc2_holder


# --- (1) against fcsoft's own array ----------------------------------------------------------


async def test_the_suite_passes_against_fcsoft(start_lab):
    lab = await start_lab()
    summary, out, err = await check(lab)
    failures = [line for line in out.splitlines() if not line.startswith("PASS")]
    assert names(summary, "pass") == set(ALL_CASES), "\n".join(failures)
    assert summary.ok and summary.cleanup_error is None
    lines = out.splitlines()
    assert lines[:-1] == [f"PASS  {name}" for name in ALL_CASES]
    assert lines[-1] == f"{len(ALL_CASES)} passed, 0 failed, 0 skipped"
    assert err.startswith("WARNING: fcsoft check is destructive")
    assert engine_state(lab) == ({}, None, None)  # cleaned up at the end
    # and no unit attention of the run is left pending; only the 29h (I_T nexus loss) that
    # every nexus of the run gets when it logs out, and any new login would get anyway
    uas = lab.array("a1").scsi.units["data"].unit_attentions
    left = {n: uas.pending(n) for n in list(uas._pending)}
    assert {n: codes for n, codes in left.items() if any(c[0] != 0x29 for c in codes)} == {}


def test_case_names_are_unique_and_cover_every_area():
    assert len(ALL_CASES) == len(set(ALL_CASES)) > 100
    groups = {name.split(".")[0] for name in ALL_CASES}
    assert groups == {"pr-in", "pr-out", "access", "ownership", "prgeneration", "ua", "spc2",
                      "masking", "multiport"}
    for t in (1, 3, 5, 6, 7, 8):
        for kind in ("pr-out.reserve", "pr-out.release", "ua.release",
                     "ownership.holder-unregisters", "ua.holder-unregisters"):
            assert f"{kind}.type-{t}" in ALL_CASES
        for role in ("holder", "registered", "unregistered"):
            assert f"access.type-{t}.{role}" in ALL_CASES
    for sa in ("register", "register-ignore", "reserve", "release", "clear", "preempt",
               "preempt-and-abort", "register-and-move"):
        assert any(n.startswith(f"pr-out.{sa}") for n in ALL_CASES), sa


async def test_leftover_state_is_cleared_at_the_start(start_lab):
    """Another initiator's registration and EX AC reservation do not get in the way."""
    lab = await start_lab()
    async with open_host(lab.address, INITIATORS[2]) as host, host.connect(TARGET) as it:
        for _ in range(3):  # first-contact unit attention
            await it.scsi(0, bytes(6))
        assert (await it.persistent_reserve_out(0, 0, sa_key=0x77)).good
        assert (await it.persistent_reserve_out(0, 1, key=0x77, type=3)).good
    summary, out, _ = await check(lab, initiators=INITIATORS[:2], outsider=None,
                                  patterns=["access.*", "pr-in.read-keys.empty"])
    assert summary.ok, out
    assert names(summary, "pass") >= {"pr-in.read-keys.empty", "access.type-3.registered"}
    assert engine_state(lab) == ({}, None, None)


# --- (2) faults ------------------------------------------------------------------------------


def test_every_engine_fault_is_exercised_but_aptpl():
    assert set(FAULT_FAILURES) | {"aptpl-not-saved"} == set(ENGINE_FAULTS)
    for expected in FAULT_FAILURES.values():
        assert expected <= set(ALL_CASES)


@pytest.mark.parametrize("fault", sorted(FAULT_FAILURES))
async def test_a_fault_fails_exactly_its_cases(start_lab, fault):
    lab = await start_lab(fault)
    summary, out, _ = await check(lab)
    assert names(summary, "fail") == FAULT_FAILURES[fault], out
    assert names(summary, "pass") == set(ALL_CASES) - FAULT_FAILURES[fault]
    assert not summary.ok
    for name in FAULT_FAILURES[fault]:  # each FAIL line is followed by what was wrong
        block = out.split(f"FAIL  {name}\n", 1)[1].splitlines()[:3]
        assert [line.split(":")[0].strip() for line in block] == ["step", "expected",
                                                                   "observed"]


async def test_a_mapped_outsider_is_a_precondition_error(start_lab):
    """An --outsider the LUN is mapped to cannot show masking: the run stops before any case
    (one line, exit status 15 on the command line), instead of failing the masking cases."""
    from fcsoft.check import CannotRun

    lab = await start_lab()
    with pytest.raises(CannotRun, match=f"--outsider {INITIATORS[2]} reaches LUN 0"):
        await check(lab, initiators=INITIATORS[:1], outsider=INITIATORS[2],
                    patterns=["masking.*"])
    proc = await fcsoft("check", "--fabric", address(lab), "--target", TARGET, "--lun", "0",
                        "--initiators", INITIATORS[0], "--outsider", INITIATORS[2])
    err = proc.stderr.decode().splitlines()
    assert proc.returncode == 15 and proc.stdout == b""
    assert err[1].startswith(f"fcsoft: check: --outsider {INITIATORS[2]} reaches LUN 0")


async def test_an_outsider_that_cannot_reach_the_target_fails_only_its_cases(start_lab):
    zoned = CONFIG.replace("[[array]]", f"""
[[zone]]
name = "hosts_a1"
members = {[TARGET, *INITIATORS]!r}

[[array]]""".replace("'", '"'), 1)
    lab = await start_lab(toml=zoned)
    summary, out, _ = await check(lab, patterns=["masking.*", "pr-out.register.new"],
                                  target2=None)
    assert names(summary, "pass") == {"masking.report-luns.mapped", "pr-out.register.new"}, out
    failed = [r for r in summary.results if r.outcome == "fail"]
    assert {r.name for r in failed} == {"masking.report-luns.outsider",
                                        "masking.inquiry.outsider",
                                        "masking.request-sense.outsider",
                                        "masking.commands.outsider"}
    for r in failed:
        assert r.step == "outsider login" and "not visible" in r.observed, r


async def test_cases_needing_more_initiators_are_skipped_with_the_reason(start_lab):
    lab = await start_lab()
    summary, out, _ = await check(lab, initiators=INITIATORS[:1], outsider=None)
    assert summary.ok, out
    by_name = {k.name: k for k in CASES}
    for r in summary.results:
        case = by_name[r.name]
        if case.initiators > 1:
            assert r.outcome == "skip"
            assert r.reason == f"needs {case.initiators} initiators, 1 given with --initiators"
            assert f"SKIP  {r.name}  ({r.reason})" in out.splitlines()
        elif case.outsider:
            assert r.outcome == "skip" and "--outsider" in r.reason
        else:
            assert r.outcome == "pass", r
    assert out.splitlines()[-1] == (f"{summary.count('pass')} passed, 0 failed, "
                                    f"{summary.count('skip')} skipped")


# --- (3) JUnit XML and (4) exit status, through the command line ------------------------------


async def fcsoft(*args: str) -> trio.CompletedProcess:
    return await trio.run_process([sys.executable, "-m", "fcsoft", *args],
                                  capture_stdout=True, capture_stderr=True, check=False)


def address(lab) -> str:
    return f"{lab.address[0]}:{lab.address[1]}"


async def test_cli_failure_junit_and_exit_status(start_lab, tmp_path: Path):
    lab = await start_lab("read-keys-short-length")
    junit = tmp_path / "check.xml"
    proc = await fcsoft("check", "--fabric", address(lab), "--target", TARGET, "--lun", "0",
                        "--initiators", ",".join(INITIATORS[:2]), "--junit", str(junit))
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert proc.returncode == 14, err
    assert err.startswith("WARNING: fcsoft check is destructive")
    lines = out.splitlines()
    fail_at = lines.index("FAIL  pr-in.read-keys.truncated")
    assert lines[fail_at + 1].split() == ["step:", "READ", "KEYS", "ADDITIONAL", "LENGTH",
                                          "(untruncated,", "SPC-4", "6.16.2)"]
    assert lines[fail_at + 2].strip() == "expected: 16"
    assert lines[fail_at + 3].strip() == "observed: 0"
    passed = sum(line.startswith("PASS  ") for line in lines)
    skipped = sum(line.startswith("SKIP  ") for line in lines)
    assert skipped > 0 and passed + skipped + 1 == len(ALL_CASES)
    assert lines[-1] == f"{passed} passed, 1 failed, {skipped} skipped"

    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [tc.get("name") for tc in cases] == ALL_CASES
    for element in (root, suite):
        assert element.get("tests") == str(len(ALL_CASES))
        assert element.get("failures") == "1"
        assert element.get("skipped") == str(skipped)
        assert element.get("errors") == "0"
    failed = [tc for tc in cases if tc.find("failure") is not None]
    assert [tc.get("name") for tc in failed] == ["pr-in.read-keys.truncated"]
    failure = failed[0].find("failure")
    assert "expected 16, observed 0" in failure.get("message")
    assert "expected: 16" in failure.text and "observed: 0" in failure.text
    assert sum(tc.find("skipped") is not None for tc in cases) == skipped
    assert all(tc.find("skipped").get("message").startswith("needs ")
               for tc in cases if tc.find("skipped") is not None)
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["target"] == TARGET and props["lun"] == "0"


async def test_cli_exit_zero_with_vports(start_lab, tmp_path: Path):
    """Every case passes with B and the outsider logged in as NPIV vports of A's link."""
    lab = await start_lab()
    junit = tmp_path / "check.xml"
    proc = await fcsoft("check", "--fabric", address(lab), "--target", TARGET, "--lun", "0",
                        "--initiators", ",".join(INITIATORS), "--outsider", OUTSIDER,
                        "--target2", TARGET2, "--vport", INITIATORS[1], "--vport", OUTSIDER,
                        "--junit", str(junit))
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    assert out.splitlines()[-1] == f"{len(ALL_CASES)} passed, 0 failed, 0 skipped"
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("failures") == "0" and suite.get("skipped") == "0"
    assert len(suite.findall("testcase")) == len(ALL_CASES)


@pytest.mark.parametrize("args, message", [
    (["--initiators", "10:00:00:00:c9:00:00:zz"], "--initiators: bad WWN"),
    (["--initiators", ",".join(INITIATORS) + ",10:00:00:00:c9:00:00:04"],
     "--initiators: give 1 to 3 WWPNs"),
    (["--initiators", INITIATORS[0], "--outsider", INITIATORS[0]], "also in --initiators"),
    (["--initiators", INITIATORS[0], "--vport", INITIATORS[0]], "--vport"),
    (["--initiators", INITIATORS[0], "--lun", "20000"], "--lun: must be"),
    (["--initiators", INITIATORS[0], "--fabric", "nowhere"], "--fabric: bad listen address"),
    (["--initiators", INITIATORS[0], "--case", "no-such-case*"], "--case: no case matches"),
    (["--lun", "0"], "check: missing --initiators (all required; see --help)"),
])
def test_cli_usage_errors_exit_1(capsys, args, message):
    base = {"--fabric": "127.0.0.1:3225", "--target": TARGET, "--lun": "0"}
    for i in range(0, len(args), 2):
        base.pop(args[i], None)
    argv = ["check", *[x for kv in base.items() for x in kv], *args]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_every_missing_option_is_reported_at_once(capsys):
    assert cli.main(["check", "--initiators", INITIATORS[0]]) == 1
    assert capsys.readouterr().err == ("fcsoft: check: missing --fabric, --target, --lun (all "
                                       "required; see --help)\n")
    with pytest.raises(SystemExit) as info:  # argparse's own errors: sg3_utils' status 1
        cli.main(["check", "--lun", "zero"])
    assert info.value.code == 1


async def test_cli_unreachable_fabric_exits_15():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a subprocess: the command configures process-wide logging, which must not outlive it
    proc = await fcsoft("check", "--fabric", f"127.0.0.1:{port}", "--target", TARGET, "--lun",
                        "0", "--initiators", INITIATORS[0])
    assert proc.returncode == 15
    err = proc.stderr.decode().splitlines()
    assert err[0].startswith("WARNING:")
    assert err[1].startswith("fcsoft: check: cannot log in to the fabric at 127.0.0.1:")
    assert len(err) == 2 and proc.stdout == b""


async def test_unknown_target_or_lun_cannot_run(start_lab):
    from fcsoft.check import CannotRun

    lab = await start_lab()
    with pytest.raises(CannotRun, match="not visible"):
        await run_check(CheckOptions(lab.address, WWN("50:01:43:80:00:00:00:07"), 0,
                                     (WWN(INITIATORS[0]),)), out=io.StringIO(),
                        err=io.StringIO())
    with pytest.raises(CannotRun, match="peripheral qualifier 0"):
        await run_check(CheckOptions(lab.address, WWN(TARGET), 3, (WWN(INITIATORS[0]),)),
                        out=io.StringIO(), err=io.StringIO())


def test_cli_list(capsys):
    assert cli.main(["check", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == ALL_CASES


def test_junit_writer_counts(tmp_path: Path):
    summary = Summary([CaseResult("a.one", "pass", 0.5),
                       CaseResult("a.two", "fail", 0.25, "RELEASE", "GOOD", "RESERVATION "
                                  "CONFLICT"),
                       CaseResult("b.three", "skip", reason="needs 3 initiators")],
                      seconds=1.0)
    root = junit_xml(summary)
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    path = tmp_path / "j.xml"
    write_junit(path, summary, {"target": TARGET})
    parsed = ET.parse(path).getroot().find("testsuite")
    tcs = parsed.findall("testcase")
    assert [(tc.get("classname"), tc.get("name")) for tc in tcs] == [
        ("fcsoft.check.a", "a.one"), ("fcsoft.check.a", "a.two"), ("fcsoft.check.b", "b.three")]
    assert tcs[1].find("failure").get("message") == (
        "RELEASE: expected GOOD, observed RESERVATION CONFLICT")
    assert tcs[2].find("skipped").get("message") == "needs 3 initiators"


async def test_nothing_is_skipped_against_the_builtin_lab(fcsoft_lab):
    """The README's command line for the built-in lab (three mapped initiators, the second
    target port, an unmapped outsider) runs every case."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = readme.split("Against the built-in lab nothing is skipped with", 1)[1]
    command = line.split("```", 2)[1].replace("\\\n", " ").split()
    assert command[:2] == ["bin/fcsoft", "check"]
    args = command[2:]
    args[args.index("--fabric") + 1] = address(fcsoft_lab)
    proc = await fcsoft("check", *args)
    out = proc.stdout.decode()
    assert proc.returncode == 0, out + proc.stderr.decode()
    assert out.splitlines()[-1] == f"{len(ALL_CASES)} passed, 0 failed, 0 skipped"
