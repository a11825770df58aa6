"""The conformance cases of `fcsoft check`, in the order they run.

Each case is a small async function of a `Context` (runner.py) registered with `@case`, or
generated from a table (one case per reservation type, per access-matrix cell). A, B and C
are the --initiators in order, O the --outsider; each registers its own key (runner.KEYS).
Every case starts on a clean LU: nothing registered, nothing reserved, no unit attention
pending.

What is expected comes from CONTRACT section 3 and ../shared/reference/scsi-target.md:
section 2 (service actions, PRGENERATION 2.9, SPC-2 and CRH 2.12, unit attentions 2.13,
where to follow SPC/SCST 2.17), section 6 (layouts) and section 7 (conflict tables). The
section is named beside each rule below. Where implementations differ and neither the
contract nor the reference settles it, the case accepts either answer (and says so).

Groups: pr-in, pr-out, access, ownership, prgeneration, ua, spc2, masking.

Each group is a module here (base.py holds the registry and shared names); this module
imports them in the order the cases run.
"""

from __future__ import annotations

# the order of these imports is the order the cases run
# isort: off
from . import pr_in, registration, reservation, preemption, access, ua, spc2, masking  # noqa: F401
# isort: on
from .base import CASES, add, case

__all__ = ["CASES", "add", "case"]
