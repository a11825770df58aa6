"""An initiator developer's test suite against an fcsoft SAN: run it with

    pytest examples/test_initiator_example.py -p trio --trio-mode   (or trio_mode = true)

fcsoft's pytest plugin (installed with the package) provides the `fcsoft_lab` fixture: a
fabric with the arrays of the `fcsoft_config` marker's TOML, running in the test's trio
loop on an ephemeral port. Point your own initiator at `fcsoft_lab.address` (FC frames in
RFC 3643 encapsulation over TCP), or use fcsoft's host library as below.
"""

import struct

import pytest

SAN = """
[fabric]
rscn_coalesce_ms = 10

[[zone]]
name = "cluster"
members = ["10:00:00:00:c9:00:00:01", "10:00:00:00:c9:00:00:02",
           "50:01:43:80:00:00:00:01", "50:01:43:80:00:00:00:02"]

[[array]]
name = "array1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["50:01:43:80:00:00:00:01", "50:01:43:80:00:00:00:02"]

[[array.lun]]
name = "shared"
size = "64MiB"

[[array.host]]
name = "node1"
initiators = ["10:00:00:00:c9:00:00:01"]
luns = { 0 = "shared" }

[[array.host]]
name = "node2"
initiators = ["10:00:00:00:c9:00:00:02"]
luns = { 3 = "shared" }      # the same LU, seen by node2 as LUN 3
"""

NODE1 = "10:00:00:00:c9:00:00:01"
NODE2 = "10:00:00:00:c9:00:00:02"
WRITE_EXCLUSIVE_REGISTRANTS_ONLY = 5


@pytest.mark.fcsoft_config(SAN)
async def test_multipath_sees_one_lu(fcsoft_lab):
    async with fcsoft_lab.host(NODE1) as host:
        paths = await host.discover()
        assert len(paths) == 2  # two target ports of one array
        ids = []
        for path in paths:
            async with host.connect(path.wwpn) as it:
                page83 = await it.inquiry(0, page=0x83)
                ids.append(page83[4:24])  # the first designator: the LU's NAA name
        assert ids[0] == ids[1]


@pytest.mark.fcsoft_config(SAN)
async def test_data_and_reservations_are_shared(fcsoft_lab):
    async with fcsoft_lab.host(NODE1) as n1, fcsoft_lab.host(NODE2) as n2:
        targets = await n1.discover()
        async with n1.connect(targets[0].wwpn) as a, n2.connect(targets[1].wwpn) as b:
            await a.write(lun=0, lba=8, data=b"cluster!" * 64)
            assert await b.read(lun=3, lba=8, blocks=1) == b"cluster!" * 64

            # node1 registers and takes a Write Exclusive - Registrants Only reservation
            await a.test_unit_ready()
            assert (await a.persistent_reserve_out(0, 0, sa_key=0x1111)).good  # REGISTER
            r = await a.persistent_reserve_out(0, 1, key=0x1111,
                                               type=WRITE_EXCLUSIVE_REGISTRANTS_ONLY)
            assert r.good                                                      # RESERVE
            # node2 is not registered: its writes conflict, its reads do not
            cdb = struct.pack(">BBQIBB", 0x8A, 0, 8, 1, 0, 0)  # WRITE(16)
            await b.test_unit_ready(3)
            assert (await b.scsi(3, cdb, data_out=bytes(512))).status == 0x18
            assert await b.read(lun=3, lba=8, blocks=1) == b"cluster!" * 64
