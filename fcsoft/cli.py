"""The `fcsoft` command line (docs/behaviour.md 4).

    fcsoft serve [CONFIG] [--listen HOST:PORT] [--fcoe HOST:PORT] [--trace FILE.pcap|.pcapng]
                 [--control HOST:PORT] [--log-format console|json] [--log-level LEVEL]
    fcsoft ctl [--control URL] COMMAND ...   (the control API's client: fcsoft/control/cli.py)

Errors a user can cause (a bad config, an unwritable trace file, an address in use) end the
program with one line on stderr and a non-zero status, never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fcsoft.errors import EXIT_RUNTIME, UserError, find, output_closed

EXIT_USAGE = 2  # argparse's own status for bad usage; also used for config errors
LOG_LEVELS = ("debug", "info", "warning", "error")  # fcsoft.logs.LOG_LEVELS (not imported:
# structlog loads only when a command runs)

__all__ = ["EXIT_RUNTIME", "EXIT_USAGE", "UserError", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, except that a failed write of --help or a usage message is not swallowed:
    a closed stdout then ends the program like any other write to it (see `main`)."""

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            (file or sys.stderr).write(message)


def _parser() -> argparse.ArgumentParser:
    from fcsoft import __version__

    p = _Parser(prog="fcsoft", description="A software Fibre Channel SAN.")
    p.add_argument("--version", action="version", version=f"fcsoft {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    serve = sub.add_parser("serve", help="run the fabric and the config's arrays",
                           description="Run the fabric and every array of CONFIG (default: "
                           "the built-in lab) until SIGINT or SIGTERM.")
    serve.add_argument("config", nargs="?", metavar="CONFIG",
                       help="TOML config file (default: the built-in lab)")
    serve.add_argument("--listen", metavar="HOST:PORT",
                       help="listen address, overriding fabric.listen (port 0: any free port)")
    serve.add_argument("--fcoe", metavar="HOST:PORT", action="append", default=[],
                       help="add an FCoE Forwarder listening for QEMU -netdev stream "
                       "connections (port 0: any free port; repeatable)")
    serve.add_argument("--trace", metavar="FILE.pcap",
                       help="write every frame entering the fabric, and every frame it "
                       "originates, to a pcap file (pcapng, with one interface per link, "
                       "when FILE ends in .pcapng)")
    serve.add_argument("--log-format", choices=("console", "json"), default="console",
                       help="log rendering (default: console)")
    serve.add_argument("--log-level", choices=LOG_LEVELS, default="info",
                       help="the least important events logged (default: info; debug adds "
                       "registrations, PLOGI/PRLI and other per-port chatter)")
    serve.add_argument("--control", metavar="HOST:PORT",
                       help="serve the control API and web page there, overriding [control] "
                       "listen (port 0: any free port)")
    array = sub.add_parser("array", help="run the config's arrays against a remote fabric",
                           description="Run every [[array]] of CONFIG, each target port "
                           "logging into the fabric at --fabric over TCP (reconnecting "
                           "when a link drops), until SIGINT or SIGTERM.")
    array.add_argument("config", metavar="CONFIG", help="TOML config file")
    array.add_argument("--fabric", required=True, metavar="HOST:PORT",
                       help="the fabric to log into")
    array.add_argument("--log-format", choices=("console", "json"), default="console")
    array.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    # host-side tools (fcsoft ns, ping, inq, luns, readcap, persist, check) register their
    # own subcommands; each sets `run` to a function(args) -> exit status
    from fcsoft import hosttools

    hosttools.register(sub)
    from fcsoft.guest import cli as guest_cli  # `fcsoft guest`: the guest lab

    guest_cli.add_parser(sub)
    from fcsoft.control import cli as control_cli  # `fcsoft ctl`: the control API's client

    control_cli.add_parser(sub)
    return p


def _load(path: str | None):  # type: ignore[no-untyped-def]
    from fcsoft import config as cfg

    try:
        return cfg.load_builtin() if path is None else cfg.load_config(path)
    except cfg.ConfigError as exc:
        raise UserError(str(exc), EXIT_USAGE) from None


def _serve(args: argparse.Namespace) -> int:
    import dataclasses

    from fcsoft import config as cfg

    conf = _load(args.config)  # before importing trio and the server: errors come at once

    import trio

    from fcsoft import logs
    from fcsoft.server.process import run_process

    listen = conf.fabric.listen
    if args.listen is not None:
        try:
            listen = cfg.parse_listen(args.listen)
        except ValueError as exc:
            raise UserError(f"--listen: {exc}", EXIT_USAGE) from None
    conf = _with_fcoe_listeners(conf, args.fcoe)
    if args.control is not None:
        try:
            conf = dataclasses.replace(conf, control=dataclasses.replace(
                conf.control, listen=cfg.parse_listen(args.control)))
        except ValueError as exc:  # ConfigError is one too
            problem = getattr(exc, "problem", None) or str(exc)
            raise UserError(f"--control: {problem}", EXIT_USAGE) from None
    logs.configure(args.log_format, logs.parse_level(args.log_level))
    trace = Path(args.trace) if args.trace else None
    if trace is not None:
        problem = _unwritable(trace)
        if problem:
            raise UserError(f"--trace: cannot write {trace}: {problem}", EXIT_USAGE)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                await nursery.start(run_process, conf, listen, trace)
                async for signum in signals:
                    logs.get_logger(component="process").info(
                        "shutting down", signal=signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break

    _run(main, f"cannot listen on {listen[0]}:{listen[1]}")
    return 0


def _with_fcoe_listeners(conf: Any, addresses: list[str]) -> Any:
    """`conf` with one more [[fcoe]] entry per --fcoe address."""
    import dataclasses

    from fcsoft import config as cfg

    extra = []
    taken = {f.name for f in conf.fcoe}
    for i, text in enumerate(addresses):
        try:
            address = cfg.parse_listen(text)
        except ValueError as exc:
            raise UserError(f"--fcoe: {exc}", EXIT_USAGE) from None
        name = next(n for n in (f"fcoe{i + 1}" if i else "fcoe", f"fcoe-cli{i + 1}")
                    if n not in taken)
        taken.add(name)
        # every FCF needs its own MAC: the default one for the first, then the next ones
        mac = (0x0EFC00FFFFFE - len(conf.fcoe) - i).to_bytes(6, "big")
        extra.append(cfg.FcoeConfig(name, listen=address, mac=mac))
    if not extra:
        return conf
    try:
        return dataclasses.replace(conf, fcoe=conf.fcoe + tuple(extra))
    except cfg.ConfigError as exc:
        raise UserError(f"--fcoe: {exc.problem}", EXIT_USAGE) from None


def _unwritable(path: Path) -> str | None:
    """Why `path` could not be written, checked without creating or truncating it (the
    trace file is only opened once the process has started); None if it looks fine."""
    import errno
    import os

    if path.is_dir():
        return os.strerror(errno.EISDIR)
    if path.exists():
        return None if os.access(path, os.W_OK) else os.strerror(errno.EACCES)
    parent = path.parent
    if not parent.is_dir():
        return os.strerror(errno.ENOENT)
    return None if os.access(parent, os.W_OK | os.X_OK) else os.strerror(errno.EACCES)


def _run(main: Any, listen_failure: str) -> None:
    """trio.run(main), turning start-up failures into one-line UserErrors."""
    import trio

    from fcsoft.server.process import StartupError

    try:
        trio.run(main)
    except (OSError, StartupError, BaseExceptionGroup) as exc:
        startup = _find(exc, StartupError)
        if startup is not None:
            raise UserError(str(startup)) from None
        err = _find(exc, OSError)
        if err is None:
            raise
        raise UserError(f"{listen_failure}: {err.strerror or err}") from None


def _array(args: argparse.Namespace) -> int:
    import trio

    from fcsoft import config as cfg
    from fcsoft import logs
    from fcsoft.server.process import StartupError, build_arrays, log_backings

    conf = _load(args.config)
    try:
        host, port = cfg.parse_listen(args.fabric)
    except ValueError as exc:
        raise UserError(f"--fabric: {exc}", EXIT_USAGE) from None
    if not conf.arrays:
        raise UserError(f"{conf.source}: no [[array]] to run", EXIT_USAGE)
    logs.configure(args.log_format, logs.parse_level(args.log_level))
    try:
        arrays = build_arrays(conf)
    except StartupError as exc:
        raise UserError(str(exc)) from None
    log_backings(arrays)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                for a in arrays:
                    nursery.start_soon(a.run_remote, host, port)
                async for signum in signals:
                    logs.get_logger(component="process").info(
                        "shutting down", signal=signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()
                    break

    try:
        _run(main, f"cannot reach the fabric at {host}:{port}")
    finally:
        for a in arrays:
            a.close()
    return 0


def _find(exc: BaseException, kind: type[Exception]) -> Any:
    """The first `kind` inside `exc`, looking through exception groups."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _find(inner, kind)
            if found is not None:
                return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    try:
        try:
            return _main(argv)
        finally:  # also after --help: a closed pipe shows here, not at interpreter exit
            sys.stdout.flush()
    except BaseException as exc:
        # `fcsoft ns | head -1`: the reader went away; stop quietly, as a Unix filter does
        if find(exc, BrokenPipeError) is not None:
            return output_closed()
        raise


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "array":
            return _array(args)
        if hasattr(args, "run"):
            return int(args.run(args))
    except UserError as exc:
        print(f"fcsoft: {exc}", file=sys.stderr)
        return exc.status
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
