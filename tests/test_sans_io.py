"""The protocol core is sans-IO (STYLE.md, DEVELOPERS.md): fcsoft.wire, fabric, target and
scsi import no trio, no socket layer and no clock. Checked on the source, so that a
forbidden import anywhere in those packages (even one never executed) fails the suite."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "fcsoft"
CORE = ("wire", "fabric", "target", "scsi")
FORBIDDEN = {"trio", "socket", "asyncio", "selectors", "time", "datetime", "threading",
             "fcsoft.server", "fcsoft.initiator"}
FILES = sorted(p for pkg in CORE for p in (ROOT / pkg).rglob("*.py"))


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_core_packages_exist():
    assert len(FILES) > 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_io_or_clock_imports(path):
    bad = {n for n in imports(path)
           if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_only_the_entry_points_import_the_command_line():
    """fcsoft.cli is the top layer: nothing below it imports it (the host tools and `check`
    raise fcsoft.errors.UserError, which lives below them all)."""
    users = sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
                   if p.name not in ("cli.py", "__main__.py")
                   and any(n == "fcsoft.cli" or n.startswith("fcsoft.cli.")
                           for n in imports(p)))
    assert users == []
