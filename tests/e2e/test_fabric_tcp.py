"""The fabric end to end over TCP on 127.0.0.1, driven by the initiator library
(fabric issue: registration order, zoning, RSCN on login and link loss, anti-spoofing)."""

from __future__ import annotations

import trio

from fcsoft.initiator import open_host
from fcsoft.wire import ns
from fcsoft.wire.els import RscnAddressFormat
from fcsoft.wire.encap import encode_frame
from fcsoft.wire.header import FcType, RCtl, make_header
from fcsoft.wire.wwn import WWN

H1 = "10:00:00:00:c9:00:00:01"
H2 = "10:00:00:00:c9:00:00:02"
H3 = "10:00:00:00:c9:00:00:03"
T1 = "50:01:43:80:00:00:00:01"

ZONED = f"""
[fabric]
rscn_coalesce_ms = 20

[[zone]]
name = "h1_t1"
members = ["{H1}", "{T1}"]

[[zone]]
name = "h2_only"
members = ["{H2}"]
"""


async def test_libfc_registration_order_and_name_server(start_lab):
    lab = await start_lab()
    async with open_host(lab.address, H1, symbolic_name="host one") as h1:
        rec = lab.fabric.port(H1)
        assert rec is not None and rec.fcid == h1.fcid
        assert rec.ns_session and rec.fc4_types == {FcType.FCP}
        assert rec.fc4_features == {FcType.FCP: ns.FcpFeatures.INITIATOR}
        assert rec.symbolic_port_name == b"host one"
        assert lab.fabric.db.symbolic_node_names[h1.wwnn] == b"host one"
        assert rec.scr_function == 3
        # the fabric's LS_ACC: F_Port with NPIV assignment, the domain from the config
        fp = h1.fabric_parameters
        assert fp is not None and fp.from_f_port
        assert h1.fcid >> 16 == 1


async def test_two_hosts_see_each_other_with_default_allow(start_lab):
    lab = await start_lab()
    async with open_host(lab.address, H1) as h1, open_host(lab.address, H2) as h2:
        assert h1.fcid != h2.fcid
        seen = await h1.discover(targets_only=False)
        assert [t.wwpn for t in seen] == [h2.wwpn]
        assert (await h2.gid_ft()) == sorted([h1.fcid, h2.fcid]) or \
            (await h2.gid_ft()) == [h1.fcid]


async def test_zoning_decides_visibility(start_lab):
    lab = await start_lab(ZONED)
    async with open_host(lab.address, H1) as h1, open_host(lab.address, H2) as h2, \
            open_host(lab.address, T1, symbolic_name="array port",
                      ) as t1:
        await t1.ct(0x021F, ns.RffIdRequest(t1.fcid, FcType.FCP,
                                            ns.FcpFeatures.TARGET).encode())
        targets = await h1.discover()
        assert [t.wwpn for t in targets] == [WWN(T1)]
        assert await h2.discover() == []  # h2 shares no zone with anyone
        # run-time zoning change: h2 joins the target's zone
        lab.fabric.set_zoning({"h1_t1": [WWN(H1), WWN(T1)], "h2_t1": [WWN(H2), WWN(T1)]},
                              trio.current_time())
        pages = await h2.next_rscn()
        assert t1.fcid in {p.affected_id for p in pages}
        assert [t.wwpn for t in await h2.discover()] == [WWN(T1)]


async def test_rscn_on_login_and_on_dropped_connection(start_lab):
    lab = await start_lab("[fabric]\nrscn_coalesce_ms = 20\n")
    async with open_host(lab.address, H1) as h1:
        async with open_host(lab.address, H2) as h2:
            pages = await h1.next_rscn()
            assert [(p.affected_id, p.address_format) for p in pages] == \
                [(h2.fcid, RscnAddressFormat.PORT)]
            gone = h2.fcid
            # drop the TCP connection without LOGO
            await h2.hl.link.stream.aclose()
        pages = await h1.next_rscn()
        assert [p.affected_id for p in pages] == [gone]
        assert lab.fabric.port(H2) is None
        # the N_Port_ID and WWPN are free again at once (docs/behaviour.md 2)
        async with open_host(lab.address, H2) as again:
            assert lab.fabric.port(H2).fcid == again.fcid


async def test_npiv_vports_each_log_in_and_register(start_lab):
    lab = await start_lab()
    async with open_host(lab.address, H1) as h1:
        v1 = await h1.add_vport("c0:50:76:00:00:00:00:01")
        v2 = await h1.add_vport("c0:50:76:00:00:00:00:02")
        assert len({h1.fcid, v1.fcid, v2.fcid}) == 3
        assert {v1.fcid >> 8, v2.fcid >> 8} == {h1.fcid >> 8}  # same area: same F_Port
        assert sorted(await h1.gid_ft()) == sorted([h1.fcid, v1.fcid, v2.fcid])
        await v1.logout()
        assert lab.fabric.port("c0:50:76:00:00:00:00:01") is None
        assert lab.fabric.port("c0:50:76:00:00:00:00:02") is not None


async def test_spoofed_s_id_is_dropped(start_lab):
    lab = await start_lab()
    async with open_host(lab.address, H1) as h1, open_host(lab.address, H2) as h2:
        # h2 sends a frame pretending to be h1, addressed to h1
        spoof = make_header(RCtl.UNSOLICITED_COMMAND, h1.fcid, h1.fcid, FcType.FCP,
                            ox_id=0x4242)
        h2.hl.link.send(encode_frame(spoof, bytes(32)))
        # and a frame to an N_Port_ID nobody has
        h2.hl.link.send(encode_frame(make_header(RCtl.UNSOLICITED_COMMAND, 0x01FF00, h2.fcid,
                                                 FcType.FCP), bytes(32)))
        # a round trip on the same link proves both frames were processed before it
        await h2.gpn_ft()
        c = lab.fabric.counters
        assert c["discard_s_id_not_assigned_on_link"] == 1
        assert c["discard_unknown_d_id"] == 1


async def test_frames_routed_between_zoned_ports(start_lab):
    lab = await start_lab()
    async with open_host(lab.address, H1) as h1, open_host(lab.address, H2) as h2:
        got = trio.Event()
        seen = []

        def unsolicited(frame):
            seen.append(frame)
            got.set()

        h2.hl.exchanges._unsolicited = unsolicited
        inquiry = bytes(12) + b"\x12" + bytes(19)  # an FCP_CMND carrying INQUIRY
        data = encode_frame(make_header(RCtl.UNSOLICITED_COMMAND, h2.fcid, h1.fcid, FcType.FCP,
                                        ox_id=0x77), inquiry)
        h1.hl.link.send(data)
        with trio.fail_after(5):
            await got.wait()
        assert bytes(seen[0].raw) == data  # forwarded unchanged


async def test_watch_targets_rediscovers_on_rscn(start_lab):
    lab = await start_lab("[fabric]\nrscn_coalesce_ms = 10\n")
    async with open_host(lab.address, H1) as h1:
        seen = []
        async with trio.open_nursery() as n:
            async def watch():
                async for targets in h1.watch_targets():
                    seen.append([str(t.wwpn) for t in targets])
                    if seen[-1] == [T1]:
                        n.cancel_scope.cancel()

            n.start_soon(watch)
            await trio.sleep(0.05)
            async with open_host(lab.address, T1) as t1:
                await t1.ct(0x021F, ns.RffIdRequest(t1.fcid, FcType.FCP,
                                                    ns.FcpFeatures.TARGET).encode())
                with trio.fail_after(5):
                    await trio.sleep_forever()  # until watch() saw the target
        assert seen[0] == [] and seen[-1] == [T1]


async def test_nexus_follows_a_target_port_that_logged_in_again(fcsoft_lab):
    """A target port logged out by the switch comes back with a new N_Port_ID; the host's
    RSCN marks its I_T nexus, and the next command finds the port again and logs in."""
    array_port = "50:01:43:80:00:00:00:01"
    async with fcsoft_lab.host(H1) as host, host.connect(array_port) as it:
        await it.test_unit_ready()
        await it.write(0, 3, b"z" * 512)
        old = it.target_fcid
        seen = host.rscn_count
        assert fcsoft_lab.logout(array_port)
        port = next(p for p in fcsoft_lab.array().ports if str(p.wwpn) == array_port)
        with trio.fail_after(10):
            while not (port.ready and port.fcid != old and host.rscn_count > seen):
                await trio.sleep(0.01)
        await it.test_unit_ready()  # the array saw the old session end: a unit attention
        assert await it.read(0, 3, 1) == b"z" * 512
        assert it.target_fcid == port.fcid != old
