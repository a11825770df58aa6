"""The floor under a QD1 I/O: CPU time of a server that only waits, receives and answers.

Run from the repository root:  .venv/bin/python bench/bench_wakeup.py [--count N]

A client sends a 64-byte request over TCP on 127.0.0.1 and waits for a 4,200-byte answer
(the size of a 4 KiB READ's two FCP_DATA frames and FCP_RSP), N times, one at a time. Two
servers answer it, each in its own process: one on trio (`wait_readable`, `recv`, `send`:
what fcsoft's link reader does per wake-up, with nothing else), one on `select.epoll`
without trio. Printed per server: round trips per second and the server's CPU time per
round trip (user and system, from its own `os.times()`). This is what no Python server,
fcsoft included, can go below per QD1 I/O on the machine; compare it with bench_io.py's
QD1 figures for fcsoft and tgtd.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import time

ANSWER = 4200
REQUEST = 64


def serve_trio(port_file: str) -> None:
    import trio

    async def handle(stream: trio.SocketStream) -> None:
        sock = stream.socket._sock  # type: ignore[attr-defined]
        answer = bytes(ANSWER)
        start = None
        while True:
            await trio.lowlevel.wait_readable(sock)
            try:
                data = sock.recv(262144)
            except BlockingIOError:
                continue
            if start is None:
                start = os.times()
            if not data:
                report(start)
                os._exit(0)  # one connection is the whole run
            sock.send(answer)

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        with open(port_file, "w") as f:
            f.write(str(listeners[0].socket.getsockname()[1]))
        await trio.serve_listeners(handle, listeners)

    trio.run(main)


def serve_epoll(port_file: str) -> None:
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen()
    with open(port_file, "w") as f:
        f.write(str(ls.getsockname()[1]))
    conn, _ = ls.accept()
    conn.setblocking(False)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ep = select.epoll()
    ep.register(conn.fileno(), select.EPOLLIN)
    answer = bytes(ANSWER)
    start = None
    while True:
        ep.poll()
        data = conn.recv(262144)
        if start is None:
            start = os.times()
        if not data:
            report(start)
            return
        conn.send(answer)


def report(start: os.times_result | None) -> None:
    """CPU time since the first request (start-up and imports left out)."""
    t = os.times()
    user = t.user - start.user if start else 0.0
    system = t.system - start.system if start else 0.0
    print(f"{user:.4f} {system:.4f}", flush=True)


def client(port: int, count: int) -> float:
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = bytes(REQUEST)
    start = time.perf_counter()
    for _ in range(count):
        s.send(req)
        got = 0
        while got < ANSWER:
            got += len(s.recv(65536))
    elapsed = time.perf_counter() - start
    s.close()
    return elapsed


def measure(kind: str, count: int) -> str:
    port_file = f"/tmp/fcsoft-bench-wakeup-{os.getpid()}-{kind}"
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, port_file],
                            stdout=subprocess.PIPE, text=True)
    try:
        while not os.path.exists(port_file) or not open(port_file).read():
            time.sleep(0.05)
        port = int(open(port_file).read())
        elapsed = client(port, count)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        if os.path.exists(port_file):
            os.unlink(port_file)
    n = count
    user, system = map(float, out.split()[-2:])
    return (f"{kind:6} {count / elapsed:9,.0f} round trips/s  server CPU "
            f"{1e6 * (user + system) / n:6.1f} us per round trip "
            f"(user {1e6 * user / n:5.1f}, system {1e6 * system / n:5.1f})")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        (serve_trio if sys.argv[2] == "trio" else serve_epoll)(sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20000, help="round trips per server")
    args = ap.parse_args()
    for kind in ("trio", "epoll"):
        print(measure(kind, args.count))


if __name__ == "__main__":
    main()
