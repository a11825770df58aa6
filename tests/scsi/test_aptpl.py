"""APTPL: persistent reservation state across a new engine instance (a restart), the file
format, damaged files, and the atomic, durable write (docs/behaviour.md 3)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from fcsoft.scsi.pr_state import AptplStateError, load_state
from fcsoft.scsi.sense import SenseKey

from .test_reservations import (
    A1,
    A2,
    B1,
    C1,
    C2,
    CLEAR,
    EX_AC_AR,
    EX_AC_RO,
    I1,
    I2,
    P1,
    P2,
    PREEMPT,
    R_IEK,
    REGISTER,
    REPORT_CAPABILITIES,
    UA_RES_PREEMPTED,
    WR_EX,
    Lu,
    assert_good,
    assert_illegal,
    assert_sense,
    nx,
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "lun0.pr.json"


def restart(path: Path, **kw: Any) -> Lu:
    return Lu(aptpl_path=path, **kw)


def ptpl_a(lu: Lu) -> bool:
    return bool(bytes(lu.prin(A1, REPORT_CAPABILITIES).data)[3] & 0x01)


def test_registrations_and_reservation_survive_restart(path: Path) -> None:
    lu = restart(path)
    lu.register(A1, 0x11, aptpl=True)
    lu.register(B1, 0x22)
    lu.prout(A1, REGISTER, 0x11, 0x11, aptpl=True)  # re-activate (B1's APTPL=0 turned it off)
    lu.prout(C2, R_IEK, 0, 0x33, aptpl=True, all_tg_pt=True)
    assert_good(lu.reserve(B1, 0x22, EX_AC_RO))
    assert lu.gen > 0
    again = restart(path)
    assert again.engine.registrations == lu.engine.registrations
    assert list(again.engine.registrations) == [A1, B1, C2, C1]  # READ KEYS order kept
    assert again.engine.holder == B1 and again.engine.reservation_type == EX_AC_RO
    assert again.read_reservation() == (0x22, 0, EX_AC_RO)
    assert again.gen == 0  # docs/behaviour.md 3: PRGENERATION restarts at 0
    assert again.read_keys() == (0, [0x11, 0x22, 0x33, 0x33])
    assert ptpl_a(again)
    assert [d.all_tg_pt for d in again.full_status()] == [False, False, True, True]


def test_all_registrants_reservation_survives(path: Path) -> None:
    lu = restart(path)
    lu.register(A1, 1, aptpl=True)
    lu.prout(B1, R_IEK, 0, 2, aptpl=True)
    lu.reserve(A1, 1, EX_AC_AR)
    again = restart(path)
    assert again.engine.reservation_type == EX_AC_AR and again.engine.holders == {A1, B1}


def test_aptpl_zero_is_not_kept(path: Path) -> None:
    lu = restart(path)
    lu.register(A1, 1, aptpl=True)
    lu.reserve(A1, 1, WR_EX)
    assert path.exists()
    lu.register(B1, 2)  # APTPL=0 deactivates: the file now says "no registrations"
    doc = json.loads(path.read_text())
    assert doc["aptpl"] is False and doc["registrations"] == [] and doc["reservation"] is None
    assert not ptpl_a(lu)
    again = restart(path)
    assert again.engine.registrations == {} and again.engine.reservation is None
    assert not ptpl_a(again)


def test_never_activated_writes_nothing(path: Path) -> None:
    lu = restart(path)
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    assert not path.exists()
    assert restart(path).engine.registrations == {}


def test_every_state_change_is_written_before_the_command_returns(path: Path) -> None:
    lu = restart(path)
    lu.register(A1, 1, aptpl=True)
    lu.prout(B1, REGISTER, 0, 2, aptpl=True)
    lu.prout(C1, REGISTER, 0, 3, aptpl=True)

    def stored() -> Lu:
        return restart(path)

    lu.reserve(B1, 2, WR_EX)
    assert stored().engine.holder == B1
    assert_good(lu.prout(A1, PREEMPT, 1, 2, EX_AC_RO))
    s = stored()
    assert s.engine.holder == A1 and s.engine.reservation_type == EX_AC_RO
    assert set(s.engine.registrations) == {A1, C1}
    assert_good(lu.release(A1, 1, EX_AC_RO))
    assert stored().engine.reservation is None
    lu.reserve(A1, 1, WR_EX)
    assert_good(lu.move(A1, 1, 9, 2, I2, unreg=True, aptpl=True))
    s = stored()
    assert s.engine.holder == nx(I2, P2) and A1 not in s.engine.registrations
    assert_good(lu.prout(C1, CLEAR, 3))
    s = stored()
    assert s.engine.registrations == {} and ptpl_a(s)  # CLEAR does not change APTPL


def test_register_and_move_aptpl_bit(path: Path) -> None:
    lu = restart(path)
    lu.register(A1, 1)
    lu.reserve(A1, 1, WR_EX)
    assert_good(lu.move(A1, 1, 7, 1, I2, aptpl=True))
    assert ptpl_a(lu)
    assert restart(path).engine.holder == B1


def test_relative_port_ids_come_from_the_current_ports(path: Path) -> None:
    lu = restart(path)
    lu.register(A2, 1, aptpl=True)
    again = restart(path, ports={P1: 1, P2: 7})
    (nexus,) = again.engine.registrations
    assert nexus.target == P2 and nexus.relative_port == 7


def test_file_format(path: Path) -> None:
    lu = restart(path)
    lu.register(A1, 0xAB, aptpl=True)
    lu.reserve(A1, 0xAB, WR_EX)
    doc = json.loads(path.read_text())
    assert doc == {
        "format": "fcsoft-pr-aptpl", "version": 1, "aptpl": True,
        "registrations": [{"initiator": str(I1), "target": str(P1), "relative_port": 1,
                           "key": "0x00000000000000ab", "all_tg_pt": False}],
        "reservation": {"type": 1, "scope": 0,
                        "holder": {"initiator": str(I1), "target": str(P1)}},
    }


GOOD_DOC = {
    "format": "fcsoft-pr-aptpl", "version": 1, "aptpl": True,
    "registrations": [{"initiator": str(I1), "target": str(P1), "relative_port": 1,
                       "key": "0x1", "all_tg_pt": False}],
    "reservation": {"type": 1, "scope": 0, "holder": {"initiator": str(I1), "target": str(P1)}},
}


def damaged(**changes: Any) -> bytes:
    doc = json.loads(json.dumps(GOOD_DOC))
    for dotted, value in changes.items():
        obj = doc
        *parents, last = dotted.split("__")
        for p in parents:
            obj = obj[int(p)] if isinstance(obj, list) else obj[p]
        if value is KeyError:
            del obj[last]
        else:
            obj[last] = value
    return json.dumps(doc).encode()


DAMAGED = {
    "empty": b"",
    "garbage": b"\x00\xffnot json",
    "truncated": json.dumps(GOOD_DOC).encode()[:40],
    "not an object": b"[]",
    "wrong format": damaged(format="something"),
    "future version": damaged(version=2),
    "missing aptpl": damaged(aptpl=KeyError),
    "aptpl not bool": damaged(aptpl=1),
    "registrations not a list": damaged(registrations={}),
    "bad wwn": damaged(registrations__0__initiator="10:00"),
    "zero key": damaged(registrations__0__key="0x0"),
    "key not hex": damaged(registrations__0__key="zz"),
    "key too big": damaged(registrations__0__key="0x1" + "0" * 16),
    "relative port out of range": damaged(registrations__0__relative_port=70000),
    "missing reservation": damaged(reservation=KeyError),
    "bad type": damaged(reservation__type=2),
    "bad scope": damaged(reservation__scope=1),
    "holder not registered": damaged(reservation__holder={"initiator": str(I2),
                                                           "target": str(P1)}),
    "no holder for type 1": damaged(reservation__holder=None),
    "holder for type 7": damaged(reservation__type=7),
    "registrations with aptpl off": damaged(aptpl=False),
}


@pytest.mark.parametrize("content", DAMAGED.values(), ids=DAMAGED.keys())
def test_damaged_file_raises_naming_it(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    with pytest.raises(AptplStateError) as info:
        restart(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert info.value.path == path


def test_duplicate_nexus_is_damage(path: Path) -> None:
    doc = json.loads(json.dumps(GOOD_DOC))
    doc["registrations"].append(dict(doc["registrations"][0], key="0x2"))
    path.write_bytes(json.dumps(doc).encode())
    with pytest.raises(AptplStateError, match="twice"):
        restart(path)


def test_good_document_loads(path: Path) -> None:
    path.write_bytes(json.dumps(GOOD_DOC).encode())
    lu = restart(path)
    assert lu.engine.holder == A1 and lu.engine.registrations == {A1: (1, False)}
    assert lu.gen == 0


def test_unreadable_path_raises(tmp_path: Path) -> None:
    with pytest.raises(AptplStateError):
        load_state(tmp_path)  # a directory


# --- atomic, durable write -----------------------------------------------------------------


class Spy:
    """Records fsync / rename calls and what the final path holds at each rename."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.path = path
        self.events: list[tuple[str, Any]] = []
        self.real_fsync, self.real_rename = os.fsync, os.rename
        self.fail_fsync = False
        self.fail_rename = False
        monkeypatch.setattr(os, "fsync", self.fsync)
        monkeypatch.setattr(os, "rename", self.rename)

    def fsync(self, fd: int) -> None:
        if self.fail_fsync:
            raise OSError(5, "simulated I/O error")
        self.events.append(("fsync", os.path.isdir(f"/proc/self/fd/{fd}")
                            and os.path.realpath(f"/proc/self/fd/{fd}")))
        self.real_fsync(fd)

    def rename(self, src: Any, dst: Any) -> None:
        src, dst = Path(src), Path(dst)
        # the temporary file sits beside the final one and is complete before the rename
        assert src.parent == dst.parent == self.path.parent and dst == self.path
        content = src.read_bytes()
        assert json.loads(content)["format"] == "fcsoft-pr-aptpl"
        self.events.append(("rename", content))
        if self.fail_rename:
            raise OSError(28, "simulated ENOSPC")
        self.real_rename(src, dst)


def final_states(path: Path) -> None:
    """Whatever is at the final path is a complete, loadable state (or nothing)."""
    if path.exists():
        load_state(path)


def test_write_order_fsync_rename_fsync_dir(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch, path)
    lu = restart(path)
    lu.register(A1, 1, aptpl=True)
    kinds = [e[0] for e in spy.events]
    assert kinds == ["fsync", "rename", "fsync"]
    assert spy.events[2][1] == str(path.parent.resolve())  # the directory, after the rename
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


def test_failed_write_leaves_old_file_and_old_state(path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    lu = restart(path)
    lu.register(A1, 1, aptpl=True)
    lu.prout(B1, REGISTER, 0, 2, aptpl=True)
    old = path.read_bytes()
    spy = Spy(monkeypatch, path)
    g = lu.gen
    for fail in ("fail_fsync", "fail_rename"):
        setattr(spy, fail, True)
        r = lu.prout(A1, CLEAR, 1)
        assert_sense(r, SenseKey.HARDWARE_ERROR, 0x44, 0x00)
        setattr(spy, fail, False)
        assert path.read_bytes() == old                # the final path never changed
        assert lu.gen == g and set(lu.engine.registrations) == {A1, B1}  # rolled back
        assert lu.pending(B1) == ()                    # side effects not performed
        assert [p.name for p in path.parent.iterdir()] == [path.name]
    assert_good(lu.prout(A1, CLEAR, 1))
    assert lu.pending(B1) == (UA_RES_PREEMPTED,)
    assert restart(path).engine.registrations == {}


def test_crash_mid_write_never_exposes_a_partial_file(path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lu = restart(path)
    lu.register(A1, 1, aptpl=True)
    old = path.read_bytes()
    real_fdopen = os.fdopen

    class Torn:
        """A file that dies half-way through the write, like a process killed mid-write."""

        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, data: bytes) -> int:
            self.f.write(data[:len(data) // 2])
            self.f.flush()
            final_states(path)
            raise OSError(5, "killed")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Torn(real_fdopen(fd, mode)))
    r = lu.prout(B1, REGISTER, 0, 2, aptpl=True)
    assert_sense(r, SenseKey.HARDWARE_ERROR, 0x44, 0x00)
    assert path.read_bytes() == old
    monkeypatch.undo()
    assert set(restart(path).engine.registrations) == {A1}


def test_aptpl_unsupported_reports_ptpl_c_zero() -> None:
    lu = Lu()
    assert bytes(lu.prin(A1, REPORT_CAPABILITIES).data)[2] & 0x01 == 0
    assert_illegal(lu.prout(A1, REGISTER, 0, 1, aptpl=True), 0x26, field=20, bit=0)


def test_fault_aptpl_not_saved(path: Path) -> None:
    lu = restart(path, fault="aptpl-not-saved")
    lu.register(A1, 1, aptpl=True)
    assert not path.exists()
