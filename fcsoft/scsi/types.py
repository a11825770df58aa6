"""What the transport (fcsoft.target) and the SCSI layer (fcsoft.scsi) hand each other.

The SCSI layer is sans-IO and synchronous: the target port builds a `Command` for each
FCP_CMND, asks `LogicalUnit.precheck` before any data moves (unit attentions, reservation
conflicts, CDB errors all answer without a data phase), collects the data-out bytes if the
command has them, then calls `LogicalUnit.execute` and sends back the `Result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fcsoft.wire.wwn import WWN

from .sense import Sense, Status


@dataclass(frozen=True, slots=True)
class Nexus:
    """An I_T nexus (SAM-5 4.6): initiator port and target port, by WWPN. The relative
    target port identifier (1-based, per array) goes with the target port."""

    initiator: WWN
    target: WWN
    relative_port: int = 1
    # computed once: every command looks its nexus up several times (maps, reservations)
    _hash: int = field(init=False, repr=False, compare=False, default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash",
                           hash((self.initiator, self.target, self.relative_port)))

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return f"{self.initiator}->{self.target}"


@dataclass(slots=True)
class Command:
    """One SCSI command as the SCSI layer sees it."""

    nexus: Nexus
    lun: int  # the LUN number the initiator addressed
    cdb: bytes
    data_out: bytes | memoryview = b""  # write data, when the command has a data-out phase
    expected_length: int = 0  # FCP_DL: the most data the initiator will take or give
    task_tag: int = 0  # OX_ID on FC: identifies the task for ABORT TASK / PREEMPT AND ABORT
    task_attribute: int = 0  # SIMPLE, HEAD OF QUEUE, ORDERED, ACA
    # the transport already put the write data where it belongs (a data_out_sink took it as
    # it arrived): execute checks and answers, but writes nothing again
    data_in_place: bool = False
    # what the logical unit made of the CDB in its precheck (its handler and the CDB padded
    # to full length), so that execute need not decode and check it again
    decoded: object = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Deferral:
    """How a command is to be run when it may not run at once on the event loop: in a worker
    thread (it does blocking file I/O), and/or with its completion held back `delay`
    seconds after it ran (a latency injected by a test). The transport decides how; the
    SCSI layer only says which."""

    thread: bool = False
    delay: float = 0.0


@dataclass(slots=True)
class Result:
    """The outcome of a command: status, data-in (for reads), sense (for CHECK CONDITION).

    `data` may be longer than expected_length; the transport truncates and reports the
    residual (SAM-5: allocation length truncation is the transport's to report).
    """

    status: Status = Status.GOOD
    data: bytes | bytearray | memoryview = b""
    sense: Sense | None = None
    # set when the command moved data out but the LU used less/more than was sent
    data_out_used: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @classmethod
    def check(cls, sense: Sense) -> Result:
        return cls(Status.CHECK_CONDITION, sense=sense)

    @property
    def good(self) -> bool:
        return self.status == Status.GOOD


GOOD = Result()  # shared: a GOOD with no data (never mutate it)
RESERVATION_CONFLICT = Result(Status.RESERVATION_CONFLICT)
