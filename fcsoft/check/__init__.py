"""`fcsoft check`: a conformance suite for any FC array port, over the wire only.

It logs in as up to three initiators (A, B, C) and optionally an outsider (an initiator the
LUN is not mapped to), connects each to one target port, and runs the cases of the `cases` package
against one LUN: every PERSISTENT RESERVE OUT service action and reservation type, the
PERSISTENT RESERVE IN layouts, the access matrix, ownership and preemption, PRGENERATION,
unit attentions, SPC-2 RESERVE/RELEASE with CRH, and LUN masking. It is destructive: it
writes to the LUN and clears its reservations.

    summary = await run_check(CheckOptions(fabric=("127.0.0.1", 3225), target=WWN(...),
                                           lun=0, initiators=(WWN(...), WWN(...), WWN(...))))

`runner.py` is the engine (logins, isolation, expectations, report), `junit.py` writes
JUnit XML, `commands.py` builds the CDBs; the CLI is fcsoft/hosttools/check.py.
"""

from __future__ import annotations

from .runner import CannotRun, Case, CaseResult, CheckOptions, Summary, run_check

__all__ = ["CannotRun", "Case", "CaseResult", "CheckOptions", "Summary", "run_check"]
