"""The consent service's HTTP API: parse, build the Context, call the application, answer.

Refusals map to statuses in `stafett_runtime.service.http_app`: invalid input 422, NotAllowed
403, unknown consent 404, a stale expected_version or a broken rule 409.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from litestar import Litestar, Request, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import ValidationException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.types import LifespanHook

from stafett_consent.application import CaseConsents, Consents
from stafett_consent.domain.consent import ChangeScope, Consent, GiveConsent, WithdrawConsent
from stafett_consent.domain.coverage import Access
from stafett_consent.domain.legal_basis import RecordLegalBasis
from stafett_contracts.consent import Purpose
from stafett_contracts.identity import Actor
from stafett_runtime.auth import TokenVerifier
from stafett_runtime.domain import Context
from stafett_runtime.health import Check, CheckResult, Readiness
from stafett_runtime.logging import current_correlation_id
from stafett_runtime.service import call, http_app

ActorRequest = Request[Actor, Any, Any]


class Saved(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int


def create_app(
    consents: Consents,
    verifier: TokenVerifier,
    *,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """The HTTP app in front of `consents`; main.py and the tests each pass their own parts."""
    readiness = Readiness()
    readiness.add("event store", _store_answers(consents))
    routes = Router(
        path="/",
        route_handlers=[
            give_consent,
            change_scope,
            withdraw_consent,
            record_legal_basis,
            read_consent,
            consents_of_case,
            access,
        ],
        dependencies={"consents": Provide(lambda: consents, sync_to_thread=False)},
    )
    return http_app(
        service="consent",
        route_handlers=[routes],
        readiness=readiness,
        verifier=verifier,
        description="Consent as structured data, and whether a service may see a case.",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


@post("/consents")
async def give_consent(
    request: ActorRequest, consents: NamedDependency[Consents], data: JSONBody[GiveConsent]
) -> Saved:
    consent_id, version = await call(consents.give, data, _context(request))
    return Saved(id=consent_id, version=version)


@post("/consents/{consent_id:uuid}/scope")
async def change_scope(
    request: ActorRequest,
    consents: NamedDependency[Consents],
    consent_id: FromPath[UUID],
    data: JSONBody[ChangeScope],
) -> Saved:
    version = await call(consents.change_scope, consent_id, data, _context(request))
    return Saved(id=consent_id, version=version)


@post("/consents/{consent_id:uuid}/withdraw")
async def withdraw_consent(
    request: ActorRequest,
    consents: NamedDependency[Consents],
    consent_id: FromPath[UUID],
    data: JSONBody[WithdrawConsent],
) -> Saved:
    version = await call(consents.withdraw, consent_id, data, _context(request))
    return Saved(id=consent_id, version=version)


@post("/legal-bases")
async def record_legal_basis(
    request: ActorRequest, consents: NamedDependency[Consents], data: JSONBody[RecordLegalBasis]
) -> Saved:
    basis_id, version = await call(consents.record_legal_basis, data, _context(request))
    return Saved(id=basis_id, version=version)


@get("/consents/{consent_id:uuid}")
async def read_consent(consents: NamedDependency[Consents], consent_id: FromPath[UUID]) -> Consent:
    return await call(consents.consent, consent_id)


@get("/cases/{case_id:uuid}/consents")
async def consents_of_case(
    consents: NamedDependency[Consents], case_id: FromPath[UUID]
) -> CaseConsents:
    return await call(consents.consents_of_case, case_id)


@get("/cases/{case_id:uuid}/access")
async def access(
    consents: NamedDependency[Consents],
    case_id: FromPath[UUID],
    service: FromQuery[str],
    purpose: FromQuery[Purpose],
    at: FromQuery[datetime | None] = None,
) -> Access:
    """May `service` see the case for `purpose` at `at` (default now)? And on what basis."""
    if at is not None and at.tzinfo is None:
        raise ValidationException(
            "at needs a time zone", extra=[{"key": "at", "message": "add Z or an offset"}]
        )
    return await call(consents.may_see, case_id, service, purpose, at or datetime.now(UTC))


def _context(request: ActorRequest) -> Context:
    return Context(
        actor=request.user,
        now=datetime.now(UTC),
        correlation_id=current_correlation_id() or uuid4().hex,
    )


def _store_answers(consents: Consents) -> Check:
    """Ready while the stream answers a read."""

    async def check() -> CheckResult:
        last = await call(consents.recorder.max_notification_id)
        return CheckResult(ok=True, detail=f"last event {last or 0}")

    return check
