"""The conformance cases of `fcsoft check`, in the order they run.

Each case is a small async function of a `Context` (runner.py) registered with `@case`, or
generated from a table (one case per reservation type, per access-matrix cell). A, B and C
are the --initiators in order, O the --outsider; each registers its own key (runner.KEYS).
Every case starts on a clean LU: nothing registered, nothing reserved, no unit attention
pending.

What is expected comes from SPC-4 and SBC-4 (reservations 5.14: registering 5.14.7, REGISTER
AND MOVE 5.14.8, reserving 5.14.9, releasing 5.14.11.2, preempting 5.14.11.4, clearing
5.14.11.6, SPC-2 reservations and CRH 5.14.3, the access table of 5.14.1 with SBC-4's;
PERSISTENT RESERVE IN 6.15, PERSISTENT RESERVE OUT 6.16; unit attentions SAM-5 5.14) and,
where implementations of SPC-4 differ, from docs/behaviour.md section 3. The section is named
beside each rule below. Where implementations differ and neither settles it, the case
accepts either answer (and says so).

Groups: pr-in, pr-out, access, ownership, prgeneration, ua, spc2, masking, multiport.

Each group is a module here (base.py holds the registry and shared names); this module
imports them in the order the cases run.
"""

from __future__ import annotations

# the order of these imports is the order the cases run
# isort: off
from . import pr_in, registration, reservation, preemption, access, ua, spc2, masking, \
    multiport  # noqa: F401
# isort: on
from .base import CASES, add, case

__all__ = ["CASES", "add", "case"]
