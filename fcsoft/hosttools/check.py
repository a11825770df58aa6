"""`fcsoft check`: run the conformance suite (fcsoft.check) against an array port.

    fcsoft check --fabric HOST:PORT --target WWPN --lun N --initiators WWPN1,WWPN2,WWPN3
                 [--target2 WWPN] [--outsider WWPN] [--vport WWPN ...] [--junit FILE]
                 [--case PATTERN ...]
    fcsoft check --list

Exit status (sg3_utils' convention, as every fcsoft tool): 0 every case passed (or was
skipped), 1 bad usage (every missing option named at once), 14 a case failed or the clean-up
at the end did (sg3_utils' "miscompare": the target's answers differ from SPC-4's), 15 the
suite could not run at all (fabric, target or LUN out of reach, or a precondition unmet such
as an --outsider the LUN is mapped to).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

EXIT_USAGE = 1  # sg3_utils' SG_LIB_SYNTAX_ERROR
EXIT_FAILED = 14  # sg3_utils' SG_LIB_CAT_MISCOMPARE
EXIT_CANNOT_RUN = 15  # sg3_utils' SG_LIB_FILE_ERROR: cannot reach the device


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "check", help="run the conformance suite against an array port (destructive)",
        description="Log in as each initiator, connect to the target port and check "
        "persistent reservations, SPC-2 reservations, unit attentions and LUN masking on "
        "one LUN. DESTRUCTIVE: it writes data to the LUN and clears its reservations.")
    p.add_argument("--fabric", metavar="HOST:PORT", help="the fabric to log into")
    p.add_argument("--target", metavar="WWPN", help="the array's target port")
    p.add_argument("--target2", metavar="WWPN",
                   help="another target port of the same array: the multiport.* cases run "
                        "reservations across the two")
    p.add_argument("--lun", type=int, metavar="N", help="the LUN to check")
    p.add_argument("--initiators", metavar="WWPN1,WWPN2,WWPN3",
                   help="1 to 3 initiators the LUN is mapped to (cases that need more are "
                        "skipped)")
    p.add_argument("--outsider", metavar="WWPN",
                   help="an initiator the LUN is not mapped to (LUN masking cases)")
    p.add_argument("--vport", action="append", default=[], metavar="WWPN",
                   help="log this initiator (or the outsider) in as an NPIV vport (FDISC) on "
                        "the first initiator's link instead of a link of its own; repeatable")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    p.add_argument("--case", action="append", default=[], metavar="PATTERN",
                   help="run only the cases whose names match (shell pattern); repeatable")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS",
                   help="per-command and per-login timeout (default 10)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    from .common import add_version, exit_on_syntax_error

    add_version(p, "fcsoft check", short=False)
    exit_on_syntax_error(p, EXIT_USAGE)
    p.set_defaults(run=run)


def _usage(message: str) -> Any:
    from fcsoft.errors import UserError

    return UserError(message, EXIT_USAGE)


def options_from(args: argparse.Namespace) -> Any:
    """CheckOptions from the parsed arguments; raises UserError (status 2) on bad usage."""
    from fcsoft.check import CheckOptions
    from fcsoft.config import MAX_LUN_NUMBER, parse_listen
    from fcsoft.wire.wwn import WWN

    missing = [f"--{name}" for name in ("fabric", "target", "lun", "initiators")
               if getattr(args, name) is None]
    if missing:
        raise _usage(f"check: missing {', '.join(missing)} (all required; see --help)")

    def wwn(option: str, text: str) -> WWN:
        try:
            return WWN.parse(text)
        except ValueError as exc:
            raise _usage(f"{option}: {exc}") from None

    try:
        fabric = parse_listen(args.fabric)
    except ValueError as exc:
        raise _usage(f"--fabric: {exc}") from None
    if not 0 <= args.lun <= MAX_LUN_NUMBER:
        raise _usage(f"--lun: must be 0..{MAX_LUN_NUMBER}, not {args.lun}")
    initiators = tuple(wwn("--initiators", t) for t in args.initiators.split(",") if t.strip())
    if not 1 <= len(initiators) <= 3:
        raise _usage(f"--initiators: give 1 to 3 WWPNs, not {len(initiators)}")
    if len(set(initiators)) != len(initiators):
        raise _usage("--initiators: a WWPN is listed twice")
    outsider = wwn("--outsider", args.outsider) if args.outsider else None
    if outsider is not None and outsider in initiators:
        raise _usage(f"--outsider: {outsider} is also in --initiators")
    target = wwn("--target", args.target)
    if target in initiators or target == outsider:
        raise _usage(f"--target: {target} is also an initiator")
    target2 = wwn("--target2", args.target2) if args.target2 else None
    if target2 is not None and (target2 == target or target2 in initiators
                                or target2 == outsider):
        raise _usage(f"--target2: {target2} is --target or an initiator")
    vports = frozenset(wwn("--vport", t) for v in args.vport for t in v.split(",") if t.strip())
    for v in vports:
        if v not in initiators[1:] and v != outsider:
            raise _usage(f"--vport: {v} must be one of --initiators after the first, or "
                         "--outsider")
    if args.timeout <= 0:
        raise _usage("--timeout: must be positive")
    return CheckOptions(fabric=fabric, target=target, lun=args.lun, initiators=initiators,
                        outsider=outsider, target2=target2, vports=vports,
                        timeout=args.timeout, patterns=tuple(args.case))


def run(args: argparse.Namespace) -> int:
    """The `check` subcommand; returns the exit status."""
    from fcsoft.check import runner
    from fcsoft.check.cases import CASES

    if args.list:
        for case in runner.select(CASES, args.case):
            print(f"{case.name:52} {case.summary}")
        return 0
    options = options_from(args)
    if args.case and not runner.select(CASES, args.case):
        raise _usage("--case: no case matches " + ", ".join(args.case))

    import trio

    from fcsoft import logs

    logs.configure("console", level=logging.WARNING)  # the report is the output
    try:
        summary = trio.run(runner.run_check, options)
    except runner.CannotRun as exc:
        print(f"fcsoft: check: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    if args.junit:
        from fcsoft.check.junit import write_junit

        try:
            write_junit(args.junit, summary, {
                "fabric": args.fabric, "target": str(options.target), "lun": str(options.lun),
                "initiators": ",".join(map(str, options.initiators)),
                "outsider": str(options.outsider or ""),
                "target2": str(options.target2 or "")})
        except OSError as exc:
            print(f"fcsoft: check: --junit: cannot write {args.junit}: {exc.strerror}",
                  file=sys.stderr)
            return EXIT_FAILED
    return 0 if summary.ok else EXIT_FAILED
