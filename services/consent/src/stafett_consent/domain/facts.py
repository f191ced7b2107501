"""What the consent service looks up before it decides, and never takes from a request.

The case comes from its own events (the CASE stream, folded once: `stafett_contracts.casefile`),
the case's child from the population register. The municipality directory travels in the
command's `Context`. The application looks them up; the domain only reads them, so it stays pure.
"""

from __future__ import annotations

import msgspec

from stafett_contracts.casefile import CaseFile
from stafett_contracts.people import RegisteredChild


class Facts(msgspec.Struct, frozen=True, kw_only=True):
    """The case a command is about, and the register's record of its child (None: the register
    does not know the child, so nobody can be shown to be their guardian)."""

    case: CaseFile
    child: RegisteredChild | None
