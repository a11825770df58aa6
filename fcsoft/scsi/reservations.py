"""Reservations of one logical unit: SPC-4 persistent reservations and SPC-2 RESERVE/RELEASE.

Theory of operation
-------------------
One `ReservationEngine` per LU, shared by every target port of the array (docs/behaviour.md 3:
the LU reached through several ports is one LU). State is keyed by I_T nexus = (initiator WWPN,
target port WWPN); the nexus's relative target port identifier always comes from `ports`
(a `Nexus` whose relative_port disagrees is normalised, so the transport should build its
nexuses from the same mapping, or unit attentions land on a nexus it never asks about).

The engine is sans-IO and synchronous. The LU calls:
- `check(cmd)` before any other command (conflict table in pr_conflicts.py, SPC-2 rules);
- `persistent_reserve_in/out`, `reserve`, `release` for those commands;
- `nexus_lost` / `reset` when the transport loses a nexus or resets the LU/target.
Errors come back as `Result`s: CHECK CONDITION with exact sense, or RESERVATION CONFLICT with
no sense. Internally handlers raise `CheckCondition` or `_Conflict`; the boundary converts.

A PERSISTENT RESERVE OUT runs in three phases, so that it is all-or-nothing:
1. checks that need no state (service action, parameter list length, SPEC_I_PT placement,
   SCOPE/TYPE, APTPL support) - the same answer whoever sends the command;
2. the service action on the in-memory state, collecting its side effects (unit
   attentions, task aborts) instead of performing them; any error restores the snapshot;
3. if APTPL is (or was) active, the new state is written to `aptpl_path` atomically and
   durably; if that fails the snapshot is restored and the command ends HARDWARE ERROR
   44/00. Only then are the side effects performed and GOOD returned.

Where implementations differ we follow SPC-4 as SCST reads it (docs/behaviour.md 3,
docs/behaviour.md 3). Other choices are marked "Choice:" below.

Fault switches (`fault=`) for the check suite of a later issue; None in production:
- "no-ua": persistent-reservation unit attentions (2A/03, 2A/04, 2A/05, 2F/00) are dropped.
- "wrong-generation": unregistering does not increment PRGENERATION (LIO's behaviour).
- "release-keeps-reservation": PR OUT RELEASE answers GOOD (and sends its unit attentions)
  but the reservation stays.
- "preempt-ignores-key": PREEMPT / PREEMPT AND ABORT always take over the reservation and
  remove the holder's registrations, whatever SERVICE ACTION RESERVATION KEY says.
- "no-conflict": `check` never reports a conflict from a persistent reservation.
- "spc2-survives-nexus-loss": `nexus_lost` keeps the SPC-2 reservation.
- "read-keys-short-length": READ KEYS reports in ADDITIONAL LENGTH only the keys that fit the
  allocation length (old LIO).
- "aptpl-not-saved": APTPL state is never written (nothing survives a restart).
- "spc2-no-conflict": an SPC-2 RESERVE(6)/(10) from another nexus takes the reservation
  over instead of conflicting.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from fcsoft.wire.wwn import WWN

from .pr_conflicts import Access, access_class, allowed_for_non_holder
from .pr_data import (
    FC_TRANSPORT_ID_LENGTH,
    PrinAction,
    ProutAction,
    TransportIdError,
    decode_fc_transport_id,
    encode_read_full_status,
    encode_read_keys,
    encode_read_reservation,
    encode_report_capabilities,
)
from .pr_state import (
    PrState,
    PrType,
    Registration,
    Reservation,
    dump_state,
    load_state,
    write_state_atomically,
)
from .sense import (
    COMMANDS_CLEARED_BY_ANOTHER_INITIATOR,
    INVALID_COMMAND_OPERATION_CODE,
    INVALID_FIELD_IN_CDB,
    INVALID_RELEASE_OF_PERSISTENT_RESERVATION,
    PARAMETER_LIST_LENGTH_ERROR,
    REGISTRATIONS_PREEMPTED,
    RESERVATIONS_PREEMPTED,
    RESERVATIONS_RELEASED,
    Asc,
    CheckCondition,
    Sense,
    SenseKey,
    Status,
    illegal_request,
    invalid_field_in_cdb,
    invalid_field_in_parameter_list,
)
from .types import Command, Nexus, Result
from .ua import UnitAttentions

__all__ = ["FAULTS", "PrType", "PrinAction", "ProutAction", "Registration", "Reservation",
           "ReservationEngine"]

FAULTS = frozenset({
    "no-ua", "wrong-generation", "release-keeps-reservation", "preempt-ignores-key",
    "no-conflict", "spc2-survives-nexus-loss", "read-keys-short-length", "aptpl-not-saved",
    "spc2-no-conflict",
})

INTERNAL_TARGET_FAILURE = Asc(0x44, 0x00)


_REGISTERS = (ProutAction.REGISTER, ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY)
_TYPED = (ProutAction.RESERVE, ProutAction.RELEASE, ProutAction.PREEMPT,
          ProutAction.PREEMPT_AND_ABORT)
_PR_TYPES = frozenset(int(t) for t in PrType)
_RESERVE_10, _RELEASE_10 = 0x56, 0x57
_RESERVE_OPS, _RELEASE_OPS = (0x16, _RESERVE_10), (0x17, _RELEASE_10)
# commands another nexus may still send while an SPC-2 reservation is held (SPC-2 5.5.1;
# SPC-4 5.14.3: LIO allows INQUIRY and RELEASE, SPC-2 also names REQUEST SENSE and
# REPORT LUNS, which never conflict in SPC-4 either). RELEASE is decided in release().
_SPC2_ALWAYS = frozenset({0x12, 0x03, 0xA0})
_BASIC_LIST = 24  # length of the basic PROUT parameter list (SPC-4 6.15.3)

_Effect = tuple[str, object, object]  # ("ua", nexus, code) | ("abort", victims, caller)


class _Conflict(Exception):
    """Answer RESERVATION CONFLICT (status 18h, no sense)."""


def _hardware_error() -> CheckCondition:
    return CheckCondition(Sense(SenseKey.HARDWARE_ERROR, INTERNAL_TARGET_FAILURE))


class ReservationEngine:
    """Reservation state and rules for one logical unit (see the module docstring)."""

    def __init__(self, unit_attentions: UnitAttentions,
                 abort_tasks: Callable[[set[Nexus], Nexus], Iterable[Nexus] | None],
                 ports: Mapping[WWN, int], *, aptpl_path: Path | str | None = None,
                 initiator_allowed: Callable[[WWN, WWN], bool] = lambda initiator, port: True,
                 fault: str | None = None) -> None:
        """`abort_tasks(victims, caller)` aborts the outstanding tasks of `victims` except
        the PREEMPT AND ABORT itself (which comes from `caller`); it may return the nexuses
        that really had tasks aborted (they get 2F/00), or None to mean all of `victims`.
        `ports`: target port WWPN -> relative target port identifier, every port of the
        array that can reach this LU. `aptpl_path`: where APTPL state lives (None: APTPL
        not supported). `initiator_allowed(initiator, port)`: LUN masking, asked for
        SPEC_I_PT, ALL_TG_PT and REGISTER AND MOVE destinations. Raises AptplStateError
        when the APTPL file exists but cannot be used."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(sorted(FAULTS))}")
        self._ua = unit_attentions
        self._abort_tasks = abort_tasks
        self._ports = ports
        self._aptpl_path = None if aptpl_path is None else Path(aptpl_path)
        self._initiator_allowed = initiator_allowed
        self.fault = fault
        self._generation = 0  # SPC-4: 0 at power on, whatever APTPL restores
        self._regs: dict[Nexus, Registration] = {}
        self._res: Reservation | None = None
        self._aptpl = False
        self._spc2: Nexus | None = None
        if self._aptpl_path is not None:
            state = load_state(self._aptpl_path, dict(ports))
            if state is not None:
                self._regs = dict(state.registrations)
                self._res = state.reservation
                self._aptpl = state.aptpl

    # --- read-only introspection -------------------------------------------------------

    @property
    def generation(self) -> int:
        """PRGENERATION (32-bit, wrapping)."""
        return self._generation

    @property
    def registrations(self) -> dict[Nexus, Registration]:
        """Registered nexuses -> (key, all_tg_pt), in registration order (a copy)."""
        return dict(self._regs)

    @property
    def reservation(self) -> Reservation | None:
        return self._res

    @property
    def reservation_type(self) -> PrType | None:
        return None if self._res is None else self._res.type

    @property
    def holder(self) -> Nexus | None:
        """The holding nexus; None with no reservation or with types 7/8 (see `holders`)."""
        return None if self._res is None else self._res.holder

    @property
    def holders(self) -> frozenset[Nexus]:
        """Every nexus that holds the reservation (all registrants for types 7/8)."""
        if self._res is None:
            return frozenset()
        if self._res.type.all_registrants:
            return frozenset(self._regs)
        return frozenset((self._res.holder,)) if self._res.holder else frozenset()

    def is_holder(self, nexus: Nexus) -> bool:
        return self._is_holder(self._canonical(nexus))

    @property
    def spc2_holder(self) -> Nexus | None:
        """The nexus holding an SPC-2 RESERVE, if any."""
        return self._spc2

    @property
    def aptpl_active(self) -> bool:
        """PTPL_A: the last valid APTPL bit received was one."""
        return self._aptpl

    # --- helpers -----------------------------------------------------------------------

    def _canonical(self, nexus: Nexus) -> Nexus:
        rtpi = self._ports.get(nexus.target, nexus.relative_port)
        return nexus if rtpi == nexus.relative_port else Nexus(nexus.initiator, nexus.target,
                                                                rtpi)

    def _is_holder(self, nexus: Nexus) -> bool:
        res = self._res
        if res is None:
            return False
        if res.type.all_registrants:
            return nexus in self._regs
        return res.holder == nexus

    def _port_nexuses(self, initiator: WWN) -> list[Nexus]:
        """The nexuses `initiator` has with every port that may reach this LU."""
        return [Nexus(initiator, port, rtpi) for port, rtpi in self._ports.items()
                if self._initiator_allowed(initiator, port)]

    def _bump(self) -> None:
        self._generation = (self._generation + 1) & 0xFFFF_FFFF

    def _ua_to(self, effects: list[_Effect], nexuses: Iterable[Nexus], code: Asc) -> None:
        for n in nexuses:
            effects.append(("ua", n, code))

    def _state(self) -> PrState:
        return PrState(self._aptpl, dict(self._regs), self._res)

    # --- conflict check for every other command -----------------------------------------

    @property
    def nothing_reserved(self) -> bool:
        """No persistent and no SPC-2 reservation: no command can conflict."""
        return self._res is None and self._spc2 is None

    def check(self, cmd: Command) -> Result | None:
        """None when `cmd` may run, else RESERVATION CONFLICT. For every command except PR
        IN/OUT and RESERVE/RELEASE(6/10), which their handlers check themselves."""
        if self.nothing_reserved:
            return None  # nothing to conflict with (the common case)
        nexus = self._canonical(cmd.nexus)
        cdb = cmd.cdb
        access = access_class(cdb)
        if access is Access.DELEGATED:
            return None
        if self._spc2 is not None:
            if self._spc2 == nexus or (cdb and cdb[0] in _SPC2_ALWAYS):
                return None
            return Result(Status.RESERVATION_CONFLICT)
        res = self._res
        if res is None or self._is_holder(nexus) or self.fault == "no-conflict":
            return None
        if allowed_for_non_holder(access, res.type, nexus in self._regs):
            return None
        return Result(Status.RESERVATION_CONFLICT)

    # --- SPC-2 RESERVE / RELEASE (CRH=1, SPC-4 5.14.3; SPC-4 5.14.3) ------------

    def _crh_good(self, nexus: Nexus) -> bool:
        """With registrations present: a RESERVE/RELEASE that completes GOOD, doing nothing."""
        res = self._res
        if res is None:
            return False
        return self._is_holder(nexus) or (nexus in self._regs and res.type >= PrType.WR_EX_RO)

    def reserve(self, cmd: Command) -> Result:
        """RESERVE(6) 16h / RESERVE(10) 56h."""
        return self._spc2_command(cmd, reserve=True)

    def release(self, cmd: Command) -> Result:
        """RELEASE(6) 17h / RELEASE(10) 57h. Releasing what one does not hold is GOOD."""
        return self._spc2_command(cmd, reserve=False)

    def _spc2_command(self, cmd: Command, reserve: bool) -> Result:
        nexus = self._canonical(cmd.nexus)
        cdb = bytes(cmd.cdb)
        if not cdb or cdb[0] not in (_RESERVE_OPS if reserve else _RELEASE_OPS):
            return Result.check(illegal_request(INVALID_COMMAND_OPERATION_CODE, 0).sense)
        if cdb[0] in (_RESERVE_10, _RELEASE_10) and len(cdb) > 1 and cdb[1] & 0x10:
            # Choice: third-party reservations (3RDPTY) are not supported (optional in SPC-2)
            return Result.check(invalid_field_in_cdb(1, 4).sense)
        if self._regs:
            return Result() if self._crh_good(nexus) else Result(Status.RESERVATION_CONFLICT)
        if reserve:
            if self._spc2 is not None and self._spc2 != nexus and \
                    self.fault != "spc2-no-conflict":
                return Result(Status.RESERVATION_CONFLICT)
            self._spc2 = nexus
        elif self._spc2 == nexus:
            self._spc2 = None
        return Result()

    def nexus_lost(self, nexus: Nexus) -> None:
        """I_T nexus loss: its SPC-2 reservation goes (SPC-2 5.5.1); persistent
        registrations and reservations stay (SPC-4 5.14.1, docs/behaviour.md 3)."""
        if self._spc2 == self._canonical(nexus) and self.fault != "spc2-survives-nexus-loss":
            self._spc2 = None

    def reset(self) -> None:
        """LOGICAL UNIT RESET / target reset: the SPC-2 reservation is released. Persistent
        reservations and registrations are not affected by resets (SPC-4 5.14.1)."""
        self._spc2 = None

    # --- PERSISTENT RESERVE IN (SPC-4 6.16) -------------------------------------------------

    def persistent_reserve_in(self, cmd: Command) -> Result:
        """PERSISTENT RESERVE IN; the data is cut to the ALLOCATION LENGTH (never an error)."""
        if self._spc2 is not None:  # docs/behaviour.md 3 / SPC-2 5.5.1: holder included
            return Result(Status.RESERVATION_CONFLICT)
        cdb = bytes(cmd.cdb).ljust(10, b"\0")
        sa = cdb[1] & 0x1F
        alloc = struct.unpack_from(">H", cdb, 7)[0]
        gen, regs, res = self._generation, self._regs, self._res
        if sa == PrinAction.READ_KEYS:
            data = encode_read_keys(gen, [r.key for r in regs.values()])
            if self.fault == "read-keys-short-length":  # old LIO: only what fits is counted
                struct.pack_into(">I", data, 4, min(8 * len(regs), max(0, alloc - 8) // 8 * 8))
        elif sa == PrinAction.READ_RESERVATION:
            key = 0  # types 7/8 report key 0 (SPC-4 6.16.3)
            if res is not None and res.holder is not None and not res.type.all_registrants:
                key = regs[res.holder].key
            data = encode_read_reservation(gen, res, key)
        elif sa == PrinAction.REPORT_CAPABILITIES:
            data = encode_report_capabilities(ptpl_c=self._aptpl_path is not None,
                                              ptpl_a=self._aptpl)
        elif sa == PrinAction.READ_FULL_STATUS:
            data = encode_read_full_status(gen, res, [(n, r, self._is_holder(n))
                                                      for n, r in regs.items()])
        else:
            return Result.check(invalid_field_in_cdb(1, 4).sense)
        return Result(data=bytes(data[:alloc]))

    def persistent_reserve_out(self, cmd: Command) -> Result:
        """PERSISTENT RESERVE OUT; `cmd.data_out` is the parameter list."""
        try:
            self._prout(cmd)
        except _Conflict:
            return Result(Status.RESERVATION_CONFLICT)
        except CheckCondition as e:
            return Result.check(e.sense)
        return Result()

    def _prout(self, cmd: Command) -> None:
        nexus = self._canonical(cmd.nexus)
        if self._spc2 is not None:  # docs/behaviour.md 3 / SPC-2 5.5.1: holder included
            raise _Conflict
        cdb = bytes(cmd.cdb).ljust(10, b"\0")
        # phase 1: what is wrong with the command whoever sends it
        if cdb[1] & 0x1F > ProutAction.REGISTER_AND_MOVE:  # incl. SPC-5 REPLACE LOST RES.
            raise invalid_field_in_cdb(1, 4)
        sa = ProutAction(cdb[1] & 0x1F)
        scope, rtype = cdb[2] >> 4, cdb[2] & 0x0F
        pll = struct.unpack_from(">I", cdb, 5)[0]
        param = bytes(cmd.data_out[:pll])
        if len(param) < pll or pll < _BASIC_LIST:
            raise illegal_request(PARAMETER_LIST_LENGTH_ERROR)
        if sa == ProutAction.REGISTER_AND_MOVE:
            spec_i_pt = all_tg_pt = False
            aptpl, aptpl_byte = bool(param[17] & 0x01), 17
        else:
            spec_i_pt, all_tg_pt = bool(param[20] & 0x08), bool(param[20] & 0x04)
            aptpl, aptpl_byte = bool(param[20] & 0x01), 20
            if spec_i_pt and sa != ProutAction.REGISTER:
                raise invalid_field_in_parameter_list(20, 3)
            if not spec_i_pt and pll != _BASIC_LIST:
                raise illegal_request(PARAMETER_LIST_LENGTH_ERROR)
        if sa in _TYPED and scope != 0:  # docs/behaviour.md 3: a CDB field
            raise invalid_field_in_cdb(2, 7)
        if sa in _TYPED and sa != ProutAction.RELEASE and rtype not in _PR_TYPES:
            raise invalid_field_in_cdb(2, 3)
        # SPC-4 6.15.3: APTPL counts only for REGISTER, R&IEK (byte 20) and R&M (byte 17)
        uses_aptpl = sa in _REGISTERS or sa == ProutAction.REGISTER_AND_MOVE
        if uses_aptpl and aptpl and self._aptpl_path is None:
            raise invalid_field_in_parameter_list(aptpl_byte, 0)
        rk, sark = struct.unpack_from(">QQ", param, 0)
        reg = self._regs.get(nexus)
        # docs/behaviour.md 3: only REGISTER and R&IEK may come from an unregistered
        # nexus; everything else conflicts, reservation or not (SCST)
        if sa not in _REGISTERS and reg is None:
            raise _Conflict

        # phase 2: the service action, all-or-nothing
        before = self._state()
        before_generation = self._generation
        effects: list[_Effect] = []
        try:
            if sa in _REGISTERS:
                self._register(nexus, reg, sa, rk, sark, spec_i_pt, all_tg_pt, param, effects)
                self._aptpl = aptpl
            else:
                assert reg is not None
                if sa == ProutAction.RESERVE:
                    self._reserve(nexus, reg, rk, PrType(rtype))
                elif sa == ProutAction.RELEASE:
                    self._release(nexus, reg, rk, rtype, scope, effects)
                elif sa == ProutAction.CLEAR:
                    self._clear(nexus, reg, rk, effects)
                elif sa == ProutAction.REGISTER_AND_MOVE:
                    self._register_and_move(nexus, reg, rk, sark, bool(param[17] & 0x02),
                                            param, pll)
                    self._aptpl = aptpl
                else:
                    self._preempt(nexus, reg, rk, sark, PrType(rtype), scope,
                                  sa == ProutAction.PREEMPT_AND_ABORT, effects)
            self._normalize_all_tg_pt()
        except BaseException:
            self._restore(before, before_generation)
            raise

        # phase 3: durable before the command returns, then the side effects
        after = self._state()
        if (self._aptpl_path is not None and (after.aptpl or before.aptpl)
                and after != before and self.fault != "aptpl-not-saved"):
            try:
                write_state_atomically(self._aptpl_path, dump_state(after))
            except OSError:
                self._restore(before, before_generation)
                try:  # the rename may have happened before the failure: put the old state back
                    write_state_atomically(self._aptpl_path, dump_state(before))
                except OSError:
                    pass
                raise _hardware_error() from None
        self._perform(effects)

    def _restore(self, state: PrState, generation: int) -> None:
        self._regs = dict(state.registrations)
        self._res = state.reservation
        self._aptpl = state.aptpl
        self._generation = generation

    def _perform(self, effects: list[_Effect]) -> None:
        for kind, a, b in effects:
            if kind == "ua":
                if self.fault != "no-ua":
                    self._ua.establish(a, b)  # type: ignore[arg-type]
            else:
                victims: set[Nexus] = a  # type: ignore[assignment]
                caller: Nexus = b  # type: ignore[assignment]
                aborted = self._abort_tasks(set(victims), caller)
                hit = set(victims) if aborted is None else set(aborted)
                # SAM-5 / SPC-4 5.14.11.5 with TAS=0: the other nexuses whose tasks were
                # aborted learn it from COMMANDS CLEARED BY ANOTHER INITIATOR
                if self.fault != "no-ua":
                    for n in sorted(hit - {caller}, key=str):
                        self._ua.establish(n, COMMANDS_CLEARED_BY_ANOTHER_INITIATOR)

    # --- REGISTER / REGISTER AND IGNORE EXISTING KEY (SPC-4 5.14.7) ---------------------

    def _register(self, nexus: Nexus, reg: Registration | None, sa: ProutAction, rk: int,
                  sark: int, spec_i_pt: bool, all_tg_pt: bool, param: bytes,
                  effects: list[_Effect]) -> None:
        ignore_key = sa == ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY
        if reg is None:
            if not ignore_key and rk != 0:
                raise _Conflict
            if sark != 0:
                # Choice (SPC-4 6.15.3; Elliott on the T10 reflector, 2008): ALL_TG_PT=1 is
                # "the same command through every port". Where the initiator is already
                # registered, REGISTER (RK=0) would conflict, so that port is left alone (as
                # SCST does); REGISTER AND IGNORE EXISTING KEY replaces the key there.
                mine = [nexus]
                if all_tg_pt:
                    mine += [n for n in self._port_nexuses(nexus.initiator)
                             if n.target != nexus.target]
                new = [n for n in mine if n not in self._regs or ignore_key]
                if spec_i_pt:
                    new += self._spec_i_pt_nexuses(nexus, all_tg_pt, param, set(new))
                for n in new:  # all TransportIDs were valid: commit (SPC-4 6.15.3)
                    self._regs[n] = Registration(sark, all_tg_pt)
            # Choice (SPC-4 6.16.2 and SCST): a REGISTER that completes GOOD increments
            # PRGENERATION even when an unregistered nexus registers key 0 (LIO does not)
            self._bump()
            return
        if not ignore_key and rk != reg.key:
            raise _Conflict
        if spec_i_pt:
            # SPC-3 5.6.6 / SCST: SPEC_I_PT from a registered nexus is INVALID FIELD IN CDB
            raise illegal_request(INVALID_FIELD_IN_CDB)
        group = [nexus]
        if all_tg_pt:  # the same command "through every port": siblings it would not conflict on
            group += [n for n, r in self._regs.items()
                      if n.initiator == nexus.initiator and n != nexus
                      and (ignore_key or r.key == reg.key)]
        if sark != 0:
            for n in group:
                self._regs[n] = Registration(sark, all_tg_pt)
            self._bump()
        else:
            self._unregister(group, nexus, effects)
            if self.fault != "wrong-generation":
                self._bump()  # docs/behaviour.md 3: unregistering increments PRGENERATION

    def _spec_i_pt_nexuses(self, nexus: Nexus, all_tg_pt: bool, param: bytes,
                           taken: set[Nexus]) -> list[Nexus]:
        """The nexuses a SPEC_I_PT list adds (SPC-4 6.15.3, SPC-4 6.16.3): validated
        entirely before anything is registered; already-registered ones are skipped."""
        if len(param) < 28:
            raise invalid_field_in_parameter_list(24)
        tpdl = struct.unpack_from(">I", param, 24)[0]
        if 28 + tpdl != len(param):  # LIO / SPC-4 6.16.3
            raise invalid_field_in_parameter_list(24)
        if tpdl % FC_TRANSPORT_ID_LENGTH:  # would cut a TransportID
            raise invalid_field_in_parameter_list(24)
        added: list[Nexus] = []
        seen = set(taken) | set(self._regs)
        for off in range(28, 28 + tpdl, FC_TRANSPORT_ID_LENGTH):
            try:
                initiator = decode_fc_transport_id(param, off)
            except TransportIdError as e:
                raise invalid_field_in_parameter_list(e.offset) from None
            if all_tg_pt:
                targets = self._port_nexuses(initiator)
            elif self._initiator_allowed(initiator, nexus.target):
                targets = [Nexus(initiator, nexus.target, nexus.relative_port)]
            else:
                targets = []
            if not targets:  # LUN masking hides this LU from that initiator
                raise invalid_field_in_parameter_list(off)
            for n in targets:
                if n not in seen and n != nexus:
                    seen.add(n)
                    added.append(n)
        return added

    def _unregister(self, nexuses: list[Nexus], caller: Nexus,
                    effects: list[_Effect]) -> None:
        """Remove registrations; a holder's reservation goes with it (SPC-4 5.14.11.3),
        except an all-registrants one, which lasts while anyone is registered."""
        res = self._res
        for n in nexuses:
            del self._regs[n]
        if res is None:
            return
        if res.type.all_registrants:
            if not self._regs:
                self._res = None
        elif res.holder in nexuses:
            self._res = None
            if res.type.registrants_only:  # SPC-4 5.14.11.3: holder of 5/6 unregisters -> 2A/04
                self._ua_to(effects, (n for n in self._regs if n != caller),
                            RESERVATIONS_RELEASED)

    # --- RESERVE / RELEASE / CLEAR (SPC-4 5.14.9, 5.14.11.2, 5.14.11.6) --------------------

    def _reserve(self, nexus: Nexus, reg: Registration, rk: int, rtype: PrType) -> None:
        if rk != reg.key:
            raise _Conflict
        res = self._res
        if res is not None:
            if self._is_holder(nexus) and res.type == rtype and res.scope == 0:
                return  # the holder asking again for the same: GOOD, nothing changes
            raise _Conflict
        self._res = Reservation(rtype, None if rtype.all_registrants else nexus)

    def _release(self, nexus: Nexus, reg: Registration, rk: int, rtype: int, scope: int,
                 effects: list[_Effect]) -> None:
        res = self._res
        if res is None:
            return  # SPC-4 5.14.11.2: no reservation, GOOD (SCST checks this before the key)
        if rk != reg.key:
            raise _Conflict
        if not self._is_holder(nexus):
            return  # a registered non-holder: GOOD, nothing happens
        if res.type != rtype or res.scope != scope:  # docs/behaviour.md 3
            raise illegal_request(INVALID_RELEASE_OF_PERSISTENT_RESERVATION)
        if self.fault != "release-keeps-reservation":
            self._res = None
        if res.type >= PrType.WR_EX_RO:  # 5/6/7/8: the other registrants are told
            self._ua_to(effects, (n for n in self._regs if n != nexus), RESERVATIONS_RELEASED)

    def _clear(self, nexus: Nexus, reg: Registration, rk: int, effects: list[_Effect]) -> None:
        if rk != reg.key:
            raise _Conflict
        self._ua_to(effects, (n for n in self._regs if n != nexus), RESERVATIONS_PREEMPTED)
        self._regs.clear()
        self._res = None
        self._bump()

    # --- PREEMPT / PREEMPT AND ABORT (SPC-4 5.14.11.4, 5.14.11.5, table 51) ----------------

    def _preempt(self, nexus: Nexus, reg: Registration, rk: int, sark: int, rtype: PrType,
                 scope: int, abort: bool, effects: list[_Effect]) -> None:
        if rk != reg.key:
            raise _Conflict
        res = self._res
        ar = res is not None and res.type.all_registrants
        holder_key = (self._regs[res.holder].key if res is not None and not ar
                      and res.holder is not None else None)
        takes_reservation = res is not None and (sark == holder_key or (ar and sark == 0))
        if self.fault == "preempt-ignores-key" and res is not None:
            takes_reservation = True
            if not ar and holder_key is not None:
                sark = holder_key
        if not takes_reservation:
            # SPC-4 5.14.11.4.3 / 5.14.11.4.4: SERVICE ACTION RESERVATION KEY 0 is only
            # meaningful under an all-registrants reservation; otherwise (no reservation
            # included) it is ILLEGAL REQUEST, INVALID FIELD IN PARAMETER LIST (as LIO)
            if not ar and sark == 0:
                raise invalid_field_in_parameter_list(8)
            # table 51: remove the registrations SARK names; TYPE and SCOPE are ignored
            matched = [n for n, r in self._regs.items() if r.key == sark]
            if not matched:  # SPC-4 5.14.11.4.4: SARK matches no registration
                raise _Conflict
            removed = [n for n in matched if n != nexus]
            for n in removed:
                del self._regs[n]
            self._ua_to(effects, removed, REGISTRATIONS_PREEMPTED)
        else:
            assert res is not None
            if ar and sark == 0:  # every other registration goes, and the old reservation
                matched = [n for n in self._regs if n != nexus]
            else:
                matched = [n for n, r in self._regs.items() if r.key == sark]
            removed = [n for n in matched if n != nexus]
            for n in removed:
                del self._regs[n]
            self._res = Reservation(rtype, None if rtype.all_registrants else nexus, scope)
            self._ua_to(effects, removed, REGISTRATIONS_PREEMPTED)
            if (rtype, scope) != (res.type, res.scope):
                self._ua_to(effects, (n for n in self._regs if n != nexus),
                            RESERVATIONS_RELEASED)
        if abort and matched:
            # SPC-4 5.14.11.5: the tasks of every nexus SARK names are aborted (the caller's
            # own nexus too when it names itself, except this command)
            effects.append(("abort", frozenset(matched), nexus))
        self._bump()

    # --- REGISTER AND MOVE (SPC-4 5.14.8, SPC-4 5.14.8) -----------------------------

    def _register_and_move(self, nexus: Nexus, reg: Registration, rk: int, sark: int,
                           unreg: bool, param: bytes, pll: int) -> None:
        # the checks in the order LIO and SCST make them (SPC-4 5.14.8 gives none)
        if rk != reg.key:
            raise _Conflict
        if sark == 0:  # SPC-4 and LIO: a parameter-list field (SCST says CDB)
            raise invalid_field_in_parameter_list(8)
        tpdl = struct.unpack_from(">I", param, 20)[0]
        if 24 + tpdl != pll or tpdl < FC_TRANSPORT_ID_LENGTH or tpdl % 4:
            raise invalid_field_in_parameter_list(20)
        rtpi = struct.unpack_from(">H", param, 18)[0]
        port = next((p for p, r in self._ports.items() if r == rtpi), None)
        if port is None:
            raise invalid_field_in_parameter_list(18)
        try:
            initiator = decode_fc_transport_id(param, 24)
        except TransportIdError:
            raise invalid_field_in_parameter_list(24) from None
        if initiator == nexus.initiator:  # SPC: not to the caller's own initiator port
            raise invalid_field_in_parameter_list(24)
        if not self._initiator_allowed(initiator, port):
            raise invalid_field_in_parameter_list(24)
        res = self._res
        if res is None:  # docs/behaviour.md 3
            raise illegal_request(INVALID_FIELD_IN_CDB)
        if not self._is_holder(nexus) or res.type.all_registrants:
            raise _Conflict
        dest = Nexus(initiator, port, rtpi)
        old = self._regs.get(dest)
        self._regs[dest] = Registration(sark, old.all_tg_pt if old else False)
        self._res = Reservation(res.type, dest, res.scope)  # TYPE/SCOPE of the CDB ignored
        if unreg:
            del self._regs[nexus]
        self._bump()

    def _normalize_all_tg_pt(self) -> None:
        """Keep the ALL_TG_PT mark truthful (SPC-4 6.16.5: it says the initiator is registered
        through every port with one key): clear it once that stops being so."""
        by_initiator: dict[WWN, list[Nexus]] = {}
        for n in self._regs:
            by_initiator.setdefault(n.initiator, []).append(n)
        for initiator, nexuses in by_initiator.items():
            regs = [self._regs[n] for n in nexuses]
            if not any(r.all_tg_pt for r in regs):
                continue
            wanted = {n.target for n in self._port_nexuses(initiator)}
            if (len({r.key for r in regs}) > 1 or not all(r.all_tg_pt for r in regs)
                    or not wanted <= {n.target for n in nexuses}):
                for n in nexuses:
                    self._regs[n] = Registration(self._regs[n].key, False)
