"""Bad input of every kind never crashes a core or disturbs another link (DEVELOPERS.md,
docs/behaviour.md 2): a logged-in host sends well-framed frames with random R_CTL, TYPE,
F_CTL and payloads to the fabric's well-known addresses and to an array port it has a
session with; no core raises, and another host's I/O carries on."""

from __future__ import annotations

import random

import pytest
import trio

from fcsoft.wire.encap import encode_frame
from fcsoft.wire.header import FcHeader

H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"
T1 = "50:01:43:80:00:00:00:01"

# interesting values: the codes fcsoft handles, and some it does not
R_CTLS = [0x00, 0x01, 0x02, 0x03, 0x05, 0x06, 0x07, 0x22, 0x23, 0x81, 0x84, 0x85, 0xC2, 0x7F]
TYPES = [0x00, 0x01, 0x08, 0x20, 0x05, 0xFE]
FIRST_BYTES = [0x01, 0x02, 0x03, 0x04, 0x05, 0x10, 0x20, 0x21, 0x51, 0x52, 0x61, 0x62, 0x0E,
               0x12, 0x13, 0x78, 0xFF]


def random_payload(rng: random.Random) -> bytes:
    n = rng.choice([0, 1, 3, 4, 8, 16, 20, 24, 28, 32, 36, 48, 116, 300, 2112])
    body = bytearray(rng.randbytes(n))
    if body and rng.random() < 0.7:
        body[0] = rng.choice(FIRST_BYTES)  # an ELS / CT-looking first byte
    if n >= 16 and rng.random() < 0.3:
        body[0:4] = b"\x01\x00\x00\x00"  # a CT_IU revision, then random commands
        body[4] = rng.choice([0xFC, 0xFA, 0xFD])
        body[5] = rng.choice([0x02, 0x03, 0x10])
        body[8:10] = rng.choice([0x0171, 0x0172, 0x0217, 0x021F, 0x0300, 0x0100,
                                 0x0121, 0x9999]).to_bytes(2, "big")
    return bytes(body)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_frames_do_not_break_anything(fcsoft_lab, seed):
    rng = random.Random(seed)
    async with fcsoft_lab.host(H1) as h1, fcsoft_lab.host(H2) as h2:
        target = fcsoft_lab.fabric.port(T1).fcid
        # h1 holds a session with the array port, so its frames reach FCP session handling
        async with h1.connect(T1), h2.connect(T1) as good:
            await good.test_unit_ready()
            destinations = [0xFFFFFE, 0xFFFFFC, 0xFFFFFD, 0xFFFFFA, 0xFFFFFB, target,
                            h2.fcid, 0x01FFFF]
            for i in range(1500):
                hdr = FcHeader(rng.choice(R_CTLS), rng.choice(destinations), 0,
                               h1.fcid if rng.random() < 0.9 else rng.randrange(1 << 24),
                               rng.choice(TYPES), rng.randrange(1 << 24) & ~3,
                               rng.randrange(256), 0, rng.randrange(4),
                               rng.randrange(1 << 16), rng.choice([0xFFFF, rng.randrange(1 << 16)]),
                               rng.randrange(1 << 32))
                h1.hl.link.send(encode_frame(hdr, random_payload(rng)))
                if i % 100 == 0:
                    await trio.sleep(0)  # let the fabric and the array take them in
                    # the other host's I/O goes on throughout
                    data = bytes([i % 256]) * 512
                    await good.write(0, 7, data)
                    assert await good.read(0, 7, 1) == data
            # every frame reached the fabric (and what it routed, the array) before we look
            h1_link = next(link for link in fcsoft_lab.lab.server.links.values()
                           if link.peer.endswith(str(h1.hl.link.stream.socket.getsockname()[1])))
            with trio.fail_after(10):
                while h1_link.counters["rx_frames"] < 1500:
                    await trio.sleep(0.01)
            await good.test_unit_ready()
        # no frame made a core raise (the link layer counts and logs it if one does)
        errors = sum(link.counters["rx_handler_error"]
                     for link in fcsoft_lab.lab.server.links.values())
        port_errors = sum(d.link.counters["rx_handler_error"]
                          for d in fcsoft_lab.array().drivers if d.link is not None)
        assert errors == 0 and port_errors == 0
        # and the fabric still answers the misbehaving host's own requests
        assert await h2.gid_ft()


async def test_fuzz_counters_are_real(fcsoft_lab):
    """The check above is not vacuous: a frame that makes a core raise is counted."""
    async with fcsoft_lab.host(H1) as h1:
        core = fcsoft_lab.fabric
        original = core.frame_received

        def broken(link_id, frame, now):
            raise RuntimeError("boom")

        core.frame_received = broken
        try:
            h1.hl.link.send(encode_frame(FcHeader(0x22, 0xFFFFFC, 0, h1.fcid, 1, 0x290000, 0,
                                                  0, 0, 1, 0xFFFF, 0), bytes(8)))
            with trio.fail_after(5):
                while not any(lk.counters["rx_handler_error"]
                              for lk in fcsoft_lab.lab.server.links.values()):
                    await trio.sleep(0.01)
        finally:
            core.frame_received = original
        assert await h1.gid_ft() is not None  # the link survived its frame's failure
