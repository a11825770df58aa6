#!/usr/bin/env python3
"""Fabric scale benchmark: many NPIV logins, then name-server query latency.

    .venv/bin/python bench/bench_fabric.py [--ports 10000] [--links 4] [--mode tcp|core]

tcp (default): runs `fcsoft serve` as a separate process and drives it over TCP from this
    one: each link FLOGIs, then FDISCs its share of the N_Port_IDs, each of which does
    PLOGI FFFFFC, RFT_ID (FCP) and RFF_ID (initiator), with `--window` requests in flight
    per link. Then GID_FT and GPN_FT are timed from one port (every answer lists all the
    ports: a multi-frame sequence). Memory per port is the server's RSS growth / ports.
core: the same logins straight into the sans-IO Fabric in this process (no sockets), with
    tracemalloc for memory per port: the fabric's own cost without the transport.

Prints figures; asserts nothing (timings on shared machines are noisy).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fcsoft.config import parse_config  # noqa: E402
from fcsoft.wire import ns  # noqa: E402
from fcsoft.wire.ct import GsType, NsCommand, ct_request  # noqa: E402
from fcsoft.wire.els import ElsCommand  # noqa: E402
from fcsoft.wire.els_login import ServiceParameters  # noqa: E402
from fcsoft.wire.encap import FrameDecoder, encode_frame  # noqa: E402
from fcsoft.wire.header import FcType, RCtl, make_header  # noqa: E402
from fcsoft.wire.wwn import WWN  # noqa: E402

FCP = FcType.FCP


def config_text(ports: int, links: int) -> str:
    per_link = -(-ports // links)
    return (f'[fabric]\nlisten = "127.0.0.1:0"\nmax_npiv_per_link = {per_link + 1}\n'
            'rscn_coalesce_ms = 50\n')


def vport_wwpn(link: int, i: int) -> WWN:
    return WWN((0xC0507600 << 32) | (link << 20) | i)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


# ------------------------------------------------------------------------------ tcp
class RawLink:
    """A minimal pipelined client: many requests in flight, replies matched by OX_ID."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.dec = FrameDecoder()
        self.waiters: dict[int, tuple[trio.Event, list]] = {}
        self.next_ox = 1
        self.out: list[bytes] = []
        self.wake = trio.Event()

    def ox(self) -> int:
        self.next_ox = self.next_ox % 0xFFFE + 1
        return self.next_ox

    async def reader(self) -> None:
        while True:
            data = await self.stream.receive_some(1 << 16)
            if not data:
                return
            for ev in self.dec.feed(data):
                h = ev.header
                if h.r_ctl == RCtl.ELS_REQUEST:  # an RSCN: acknowledge it
                    self.out.append(encode_frame(h.reply(RCtl.ELS_REPLY),
                                                 bytes([ElsCommand.LS_ACC, 0, 0, 0])))
                    self.wake.set()
                    continue
                w = self.waiters.get(h.ox_id)
                if w is None:
                    continue
                w[1].append(ev)
                if h.f_ctl & (1 << 19):  # END_SEQUENCE
                    del self.waiters[h.ox_id]
                    w[0].set()

    async def writer(self) -> None:
        while True:
            await self.wake.wait()
            self.wake = trio.Event()
            if self.out:
                data = b"".join(self.out)
                self.out.clear()
                await self.stream.send_all(data)

    async def request(self, d_id: int, s_id: int, r_ctl: int, type_: int, payload: bytes):
        ox = self.ox()
        ev = trio.Event()
        frames: list = []
        self.waiters[ox] = (ev, frames)
        self.out.append(encode_frame(make_header(r_ctl, d_id, s_id, type_, ox_id=ox), payload))
        self.wake.set()
        with trio.fail_after(30):
            await ev.wait()
        return frames

    async def els(self, d_id: int, s_id: int, payload: bytes):
        return await self.request(d_id, s_id, RCtl.ELS_REQUEST, FcType.ELS, payload)

    async def ct(self, s_id: int, command: int, body: bytes):
        return await self.request(0xFFFFFC, s_id, RCtl.UNSOLICITED_CONTROL, FcType.CT,
                                  ct_request(GsType.DIRECTORY, 0x02, command, body))


async def login_vport(link: RawLink, wwpn: WWN, node: WWN) -> int:
    frames = await link.els(0xFFFFFE, 0, ServiceParameters.fdisc(wwpn, node).encode())
    fcid = frames[0].header.d_id
    assert frames[0].payload[0] == ElsCommand.LS_ACC, "FDISC rejected"
    await link.els(0xFFFFFC, fcid, ServiceParameters.plogi(wwpn, node).encode())
    await link.ct(fcid, NsCommand.RFT_ID, ns.RftIdRequest(fcid, ns.Fc4Types({FCP})).encode())
    await link.ct(fcid, NsCommand.RFF_ID,
                  ns.RffIdRequest(fcid, FCP, ns.FcpFeatures.INITIATOR).encode())
    return fcid


async def tcp_bench(args: argparse.Namespace) -> dict:
    tmp = Path(tempfile.mkdtemp())
    conf = tmp / "bench.toml"
    conf.write_text(config_text(args.ports, args.links))
    proc = subprocess.Popen([sys.executable, "-m", "fcsoft", "serve", str(conf),
                             "--log-format", "json"], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    address = None
    for line in proc.stderr:
        ev = json.loads(line)
        if ev.get("event") == "listening":
            host, port = ev["address"].rsplit(":", 1)
            address = (host, int(port))
            break
    assert address is not None
    # keep draining the server's log so it never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    rss0 = rss_kib(proc.pid)
    result: dict = {}
    try:
        links = []
        async with trio.open_nursery() as nursery:
            for li in range(args.links):
                stream = await trio.open_tcp_stream(*address)
                link = RawLink(stream)
                nursery.start_soon(link.reader)
                nursery.start_soon(link.writer)
                links.append(link)
            base = []
            for li, link in enumerate(links):
                wwpn = WWN((0x10000000C9000000) | (li + 1))
                fr = await link.els(0xFFFFFE, 0, ServiceParameters.flogi(wwpn, wwpn).encode())
                fcid = fr[0].header.d_id
                base.append(fcid)
                await link.els(0xFFFFFC, fcid, ServiceParameters.plogi(wwpn, wwpn).encode())
            per_link = args.ports // args.links
            t0 = time.perf_counter()

            async def drive(li: int, link: RawLink) -> None:
                sem = trio.Semaphore(args.window)

                async def one(i: int) -> None:
                    async with sem:
                        await login_vport(link, vport_wwpn(li, i), WWN(0x2000000000000000 | li))

                async with trio.open_nursery() as n2:
                    for i in range(per_link):
                        await sem.acquire()
                        sem.release()
                        n2.start_soon(one, i)

            async with trio.open_nursery() as n3:
                for li, link in enumerate(links):
                    n3.start_soon(drive, li, link)
            elapsed = time.perf_counter() - t0
            total = per_link * args.links
            result["logins"] = total
            result["login_seconds"] = elapsed
            result["logins_per_second"] = total / elapsed
            await trio.sleep(0.2)
            rss1 = rss_kib(proc.pid)
            result["server_rss_growth_kib"] = rss1 - rss0
            result["bytes_per_port"] = (rss1 - rss0) * 1024 / total
            q = links[0]
            for name, cmd, body, parse in (
                    ("GID_FT", NsCommand.GID_FT, ns.GidFtRequest(fc4_type=FCP).encode(),
                     lambda b: len(ns.GidFtAccept.decode(b).port_ids)),
                    ("GPN_FT", NsCommand.GPN_FT, ns.GpnFtRequest(fc4_type=FCP).encode(),
                     lambda b: len(ns.GpnFtAccept.decode(b).entries))):
                times = []
                count = 0
                for _ in range(args.queries):
                    t = time.perf_counter()
                    frames = await q.ct(base[0], cmd, body)
                    times.append(time.perf_counter() - t)
                    payload = b"".join(bytes(f.payload) for f in
                                       sorted(frames, key=lambda f: f.header.seq_cnt))
                    count = parse(payload[16:])
                result[f"{name}_entries"] = count
                result[f"{name}_frames"] = len(frames)
                result[f"{name}_p50_ms"] = statistics.median(times) * 1000
                result[f"{name}_p99_ms"] = pct(times, 99) * 1000
            nursery.cancel_scope.cancel()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return result


# ------------------------------------------------------------------------------ core
def core_bench(args: argparse.Namespace) -> dict:
    """Two passes: one timed, one under tracemalloc (which slows every allocation) for the
    memory figure."""
    timed = _core_pass(args, trace_memory=False)
    timed["bytes_per_port"] = _core_pass(args, trace_memory=True)["bytes_per_port"]
    return timed


def _core_pass(args: argparse.Namespace, trace_memory: bool) -> dict:
    from fcsoft.fabric import Fabric

    conf = parse_config(config_text(args.ports, args.links))
    sent: list = []
    fabric = Fabric(conf.fabric, conf.zones, transmit=lambda l, d: sent.append(d) or True)
    dec = FrameDecoder()
    inside = [0.0]

    def request(link: int, d_id: int, s_id: int, r_ctl: int, t: int, payload: bytes):
        sent.clear()
        (frame,) = dec.feed(encode_frame(make_header(r_ctl, d_id, s_id, t, ox_id=1), payload))
        t0 = time.perf_counter()
        fabric.frame_received(link, frame, 0.0)
        inside[0] += time.perf_counter() - t0
        return [f for d in sent for f in FrameDecoder().feed(d)]

    if trace_memory:
        tracemalloc.start()
    snap0 = tracemalloc.get_traced_memory()[0] if trace_memory else 0
    base = []
    for li in range(args.links):
        fabric.link_up(li, 0.0)
        wwpn = WWN(0x10000000C9000000 | (li + 1))
        fr = request(li, 0xFFFFFE, 0, RCtl.ELS_REQUEST, FcType.ELS,
                     ServiceParameters.flogi(wwpn, wwpn).encode())
        base.append(fr[0].header.d_id)
        request(li, 0xFFFFFC, base[-1], RCtl.ELS_REQUEST, FcType.ELS,
                ServiceParameters.plogi(wwpn, wwpn).encode())
    per_link = args.ports // args.links
    t0 = time.perf_counter()
    inside[0] = 0.0
    for li in range(args.links):
        node = WWN(0x2000000000000000 | li)
        for i in range(per_link):
            wwpn = vport_wwpn(li, i)
            fr = request(li, 0xFFFFFE, 0, RCtl.ELS_REQUEST, FcType.ELS,
                         ServiceParameters.fdisc(wwpn, node).encode())
            fcid = fr[0].header.d_id
            request(li, 0xFFFFFC, fcid, RCtl.ELS_REQUEST, FcType.ELS,
                    ServiceParameters.plogi(wwpn, node).encode())
            request(li, 0xFFFFFC, fcid, RCtl.UNSOLICITED_CONTROL, FcType.CT,
                    ct_request(GsType.DIRECTORY, 2, NsCommand.RFT_ID,
                               ns.RftIdRequest(fcid, ns.Fc4Types({FCP})).encode()))
            request(li, 0xFFFFFC, fcid, RCtl.UNSOLICITED_CONTROL, FcType.CT,
                    ct_request(GsType.DIRECTORY, 2, NsCommand.RFF_ID,
                               ns.RffIdRequest(fcid, FCP, 2).encode()))
    elapsed = time.perf_counter() - t0
    total = per_link * args.links
    result = {"logins": total, "login_seconds": elapsed, "logins_per_second": total / elapsed,
              "fabric_logins_per_second": total / inside[0]}
    if trace_memory:
        result["bytes_per_port"] = (tracemalloc.get_traced_memory()[0] - snap0) / total
        tracemalloc.stop()
        return result
    for name, cmd, body in (("GID_FT", NsCommand.GID_FT, ns.GidFtRequest(fc4_type=FCP).encode()),
                            ("GPN_FT", NsCommand.GPN_FT, ns.GpnFtRequest(fc4_type=FCP).encode())):
        times = []
        for _ in range(args.queries):
            t = time.perf_counter()
            inside[0] = 0.0
            frames = request(0, 0xFFFFFC, base[0], RCtl.UNSOLICITED_CONTROL, FcType.CT,
                             ct_request(GsType.DIRECTORY, 2, cmd, body))
            times.append(inside[0])
        result[f"{name}_frames"] = len(frames)
        result[f"{name}_p50_ms"] = statistics.median(times) * 1000
        result[f"{name}_p99_ms"] = pct(times, 99) * 1000
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ports", type=int, default=10000)
    p.add_argument("--links", type=int, default=4)
    p.add_argument("--window", type=int, default=32, help="requests in flight per link")
    p.add_argument("--queries", type=int, default=50)
    p.add_argument("--mode", choices=("tcp", "core"), default="tcp")
    args = p.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if args.mode == "core":
        # the fabric logs every login and registration, as it does in production; render
        # them (JSON) but throw them away, so the terminal is not what gets measured
        from fcsoft import logs

        logs.configure("json", stream=open(os.devnull, "w"))  # noqa: SIM115
    res = trio.run(tcp_bench, args) if args.mode == "tcp" else core_bench(args)
    print(f"mode {args.mode}: {res['logins']} NPIV logins over {args.links} links "
          f"(FDISC + PLOGI FFFFFC + RFT_ID + RFF_ID each)")
    print(f"  logins/s           {res['logins_per_second']:10.0f}   "
          f"({res['login_seconds']:.2f} s total)")
    if "fabric_logins_per_second" in res:
        print(f"  logins/s (time inside the fabric only) {res['fabric_logins_per_second']:.0f}")
    print(f"  memory per port    {res['bytes_per_port']:10.0f} bytes")
    for name in ("GID_FT", "GPN_FT"):
        print(f"  {name} p50 / p99   {res[f'{name}_p50_ms']:8.2f} / {res[f'{name}_p99_ms']:.2f} ms"
              f"   ({res[f'{name}_frames']} frames per answer)")


if __name__ == "__main__":
    main()
