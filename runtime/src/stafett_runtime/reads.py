"""Every read of case data, in every service, passes here first: the one access rule decides,
the access log records the decision, and only then is anything said about the case.

    admitted = await reads.admit(request.user, case_id, "meeting", purpose)
    ... show only what admitted.access allows (`stafett_contracts.access.visible`) ...

`admit` reads the case from its events (a `CaseSource`), the case's child from the population
register, the units from the directory, and asks `stafett_contracts.access.read_access`. It
records `CaseAccessed` (granted or refused) before it answers, and refuses with 403 naming the
rule (422 naming `purpose` when an auditor states none). A case that does not exist is 404: case
ids are random, so that says nothing about any child.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID, uuid4

import msgspec
from litestar.exceptions import NotFoundException, ValidationException

from stafett_contracts.access import AUDITOR_STATES_PURPOSE, Access, ReadRules, read_access
from stafett_contracts.case import CaseEvent
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import RegisteredChild
from stafett_runtime.accesslog import AccessLog
from stafett_runtime.contracts import decode_event
from stafett_runtime.directory import DirectorySource
from stafett_runtime.domain import NotAllowed
from stafett_runtime.jetstream.core import Connected
from stafett_runtime.jetstream.layout import TOPIC, StreamLayout
from stafett_runtime.logging import current_correlation_id
from stafett_runtime.register import Register
from stafett_runtime.threads import call

CASE = StreamLayout(stream="CASE", prefix="case")
ENDPOINT_FOR_ROLES = "endpoint-for-roles"


class CaseSource(Protocol):
    async def case(self, case_id: UUID) -> CaseFile | None: ...


class StreamCases:
    """A case read from the CASE stream by direct get, and folded: for any service."""

    def __init__(self, connected: Connected) -> None:
        self._connected = connected

    async def history(self, case_id: UUID) -> list[CaseEvent]:
        messages = await self._connected.core.read_all(CASE.stream, CASE.aggregate_filter(case_id))
        events = [decode_event(m.headers[TOPIC], m.data) for m in messages]
        return [e for e in events if isinstance(e, CaseEvent)]

    async def case(self, case_id: UUID) -> CaseFile | None:
        return fold(await self.history(case_id))


class Admitted(msgspec.Struct, frozen=True, kw_only=True):
    """A granted read: what may be shown (`access`), of which case, about which child."""

    access: Access
    case: CaseFile
    child: RegisteredChild | None


class CaseReads:
    """The gate every read of case data in a service goes through."""

    def __init__(
        self,
        *,
        cases: CaseSource,
        register: Register,
        directory: DirectorySource,
        access_log: AccessLog,
        rules: ReadRules,
    ) -> None:
        self.cases = cases
        self.register = register
        self.directory = directory
        self.access_log = access_log
        self.rules = rules

    async def admit(
        self,
        actor: Actor,
        case_id: UUID,
        what: str,
        purpose: str | None = None,
        *,
        only: Collection[Role] = (),
        case: CaseFile | None = None,
    ) -> Admitted:
        """Decide, record, and refuse or go on. `only`: the roles this read is for at all (an
        access log for guardians and auditors); `case`: the case, when the caller holds it."""
        case = case or await self.cases.case(case_id)
        if case is None:
            raise NotFoundException(f"no case {case_id}")
        child = await call(self.register.child, case.child_id)
        access = read_access(
            case,
            actor,
            child=child,
            directory=self.directory.current(),
            now=datetime.now(UTC),
            purpose=purpose,
            rules=self.rules,
        )
        if access.granted and only and actor.role not in only:
            access = Access(
                granted=False,
                rule=ENDPOINT_FOR_ROLES,
                refusal=f"only {', '.join(only)} may read the {what}",
            )
        await self.access_log.record(
            actor=actor,
            case_id=case_id,
            what=what,
            purpose=purpose,
            access=access,
            correlation_id=current_correlation_id() or uuid4().hex,
        )
        if not access.granted:
            raise _refusal(access)
        return Admitted(access=access, case=case, child=child)


def _refusal(access: Access) -> Exception:
    if access.rule == AUDITOR_STATES_PURPOSE:
        extra: list[dict[str, Any]] = [
            {"key": "purpose", "message": "required of auditors", "source": "query"}
        ]
        return ValidationException(detail=access.refusal or "", extra=extra)
    return NotAllowed(access.refusal or "not allowed", rule=access.rule)
