"""The pytest plugin as a user meets it: a separate test project (pytester) that uses only
the documented API (the README example), with pytest-trio's trio_mode and without it."""

from __future__ import annotations

pytest_plugins = ["pytester"]

INI = """
[pytest]
trio_mode = true
"""

README_EXAMPLE = '''
import pytest

TOML_TEXT = """
[fabric]
rscn_coalesce_ms = 10

[[array]]
name = "a1"
node_wwn = "50:01:43:80:00:00:00:00"
ports = ["50:01:43:80:00:00:00:01", "50:01:43:80:00:00:00:02"]

[[array.lun]]
name = "data"
size = "16MiB"

[[array.lun]]
name = "more"
size = "16MiB"

[[array.host]]
name = "h1"
initiators = ["10:00:00:00:c9:00:00:01"]
luns = { 0 = "data" }
"""


@pytest.mark.fcsoft_config(TOML_TEXT)
async def test_x(fcsoft_lab):
    async with fcsoft_lab.host("10:00:00:00:c9:00:00:01") as host:
        targets = await host.discover()                 # visible target ports: .wwpn, .port_id
        assert len(targets) == 2
        async with host.connect(targets[0].wwpn) as it:  # PLOGI + PRLI: one I_T nexus
            luns = await it.report_luns()
            assert luns == [0]
            await it.write(lun=0, lba=0, data=b"x" * 512)
            assert await it.read(lun=0, lba=0, blocks=1) == b"x" * 512
            result = await it.scsi(0, bytes.fromhex("5e00000000000000ff00"), data_in_len=255)
            assert result.good  # PERSISTENT RESERVE IN, READ KEYS


async def test_default_is_the_builtin_lab(fcsoft_lab):
    async with fcsoft_lab.host("10:00:00:00:c9:00:00:02") as host:
        targets = await host.discover()
        assert sorted(str(t.wwpn) for t in targets) == [
            "50:01:43:80:00:00:00:01", "50:01:43:80:00:00:00:02"]
        async with host.connect(targets[0].wwpn) as it:
            assert await it.report_luns() == [0, 1, 2]


@pytest.mark.fcsoft_config("lab.toml")
async def test_config_from_a_path(fcsoft_lab):
    assert [a.name for a in fcsoft_lab.config.arrays] == ["disk_shelf"]


@pytest.mark.fcsoft_config(TOML_TEXT)
async def test_run_time_changes(fcsoft_lab):
    async with fcsoft_lab.host("10:00:00:00:c9:00:00:01") as host:
        assert fcsoft_lab.logged_in("10:00:00:00:c9:00:00:01")
        # zoning: put the host alone in a zone, and it sees no target any more
        fcsoft_lab.set_zones({"lonely": ["10:00:00:00:c9:00:00:01"]})
        assert await host.discover() == []
        fcsoft_lab.set_zones(None)
        assert len(await host.discover()) == 2
        # LUN maps: map another LU at LUN 5 while the lab runs
        fcsoft_lab.scsi().map_lun("h1", 5, "more")
        async with host.connect("50:01:43:80:00:00:00:02") as it:
            assert await it.report_luns() == [0, 5]
'''

LAB_TOML = """
[[array]]
name = "disk_shelf"
node_wwn = "50:01:43:80:00:00:01:00"
ports = ["50:01:43:80:00:00:01:01"]
[[array.lun]]
name = "d"
size = "1MiB"
"""


def test_readme_example_and_api(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(test_user=README_EXAMPLE)
    (pytester.path / "lab.toml").write_text(LAB_TOML)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_bad_marker_config_fails_the_test_with_the_config_error(pytester):
    pytester.makeini(INI)
    pytester.makepyfile(test_bad='''
import pytest

@pytest.mark.fcsoft_config("[fabric]\\ncolour = 'blue'\\n")
async def test_bad(fcsoft_lab):
    pass
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*<fcsoft_config marker>: fabric.colour: unknown key*"])


def test_shipped_example_runs(pytester):
    """examples/test_initiator_example.py, run as a user would."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "test_initiator_example.py"
    pytester.makeini(INI)
    pytester.makepyfile(test_example=example.read_text())
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_lab_tests_run_without_trio_mode(pytester):
    """No trio_mode and no @pytest.mark.trio: the plugin marks fcsoft_lab's tests itself."""
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_plain='''
async def test_uses_the_lab(fcsoft_lab):
    async with fcsoft_lab.host("10:00:00:00:c9:00:00:01") as host:
        assert len(await host.discover()) == 2


def test_sync_test_untouched():
    assert True
''')
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
