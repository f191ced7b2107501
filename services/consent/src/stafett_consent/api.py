"""The consent service's HTTP API: parse, look up the facts, call the application, answer.

| endpoint | what |
|---|---|
| POST /consents | give a consent: {case_id, given_by, services, purposes, valid_from, valid_until?, evidence} |
| POST /consents/{id}/scope | change its scope: {services, purposes, valid_until?, expected_version?} |
| POST /consents/{id}/withdraw | withdraw it, wholly or for the services named |
| POST /legal-bases | a unit takes part under a legal basis: {case_id, service, legal_basis, justification} |
| GET /consents/{id}?purpose= | one consent |
| GET /cases/{id}/consents?purpose= | the case's consents and legal bases |
| GET /cases/{id}/access?service=&for_purpose=&at=&purpose= | may `service` see the case for `for_purpose` at `at` (default now), and on what basis |

A command is decided on facts this service looks up, never on the request's say-so: the case
from the CASE stream (404 if there is none), its child from the population register (503 if the
register does not answer), the units from the municipality directory. Every read goes through
the read gate first (`stafett_runtime.reads.CaseReads.admit`): it records the read or its
refusal on the AUDIT stream, and refuses with 403 naming the rule before anything is said;
`purpose` says why the reader reads (required of auditors: 422 without it).

Refusals map to statuses in `stafett_runtime.service.http_app`: invalid input 422 (a field
beyond the limits of `stafett_contracts.inputs`, `service` not a unit id, `at` without a time
zone), NotAllowed 403 naming the rule, unknown consent or case 404, a stale expected_version or a
broken rule 409.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

import msgspec
from litestar import Litestar, Request, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, JSONBody, Parameter
from litestar.types import LifespanHook

from stafett_consent.application import CaseConsents, Consents
from stafett_consent.domain.consent import ChangeScope, Consent, GiveConsent, WithdrawConsent
from stafett_consent.domain.facts import Facts
from stafett_consent.domain.legal_basis import RecordLegalBasis
from stafett_contracts.access import read_access
from stafett_contracts.consent import Purpose
from stafett_contracts.identity import Actor, Role
from stafett_contracts.inputs import ReadPurpose, UnitId, limits, utc_moment
from stafett_runtime.health import Check, CheckResult, Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.reads import StreamCases
from stafett_runtime.service import call, http_app, refusals

ActorRequest = Request[Actor, Any, Any]
StatedPurpose = Annotated[
    str | None,
    Parameter(
        description="why you read: required of auditors, recorded for everyone; at most 500 "
        "characters, no control character",
        **limits(ReadPurpose),
    ),
]


class Saved(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int


class ServiceAccess(msgspec.Struct, frozen=True, kw_only=True):
    """May someone of a service see the case, for a purpose, at a moment: the one access rule's
    answer (stafett_contracts.access) over the case's own record of consents and legal bases."""

    allowed: bool
    rule: str  # the rule that decided
    basis: str | None  # "own unit", "consent <id>", "legal basis: <provision>", ...
    until: datetime | None  # when the cover holding then ends; None: no end known
    reason: str | None  # why not


def create_app(
    consents: Consents,
    kernel: Kernel,
    *,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """The HTTP app in front of `consents`; main.py and the tests each pass their own parts. The
    kernel's NATS connection opens with the app and closes with it."""
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
        dependencies={
            "consents": Provide(lambda: consents, sync_to_thread=False),
            "kernel": Provide(lambda: kernel, sync_to_thread=False),
        },
    )
    return http_app(
        service="consent",
        route_handlers=[routes],
        readiness=readiness,
        kernel=kernel,
        description="Consent as structured data, and whether a service may see a case.",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


# Commands


@post(
    "/consents",
    summary="Record a consent: who, to which services, for what, until when",
    responses=refusals(404),
)
async def give_consent(
    request: ActorRequest,
    consents: NamedDependency[Consents],
    kernel: NamedDependency[Kernel],
    data: JSONBody[GiveConsent],
) -> Saved:
    facts = await _facts(kernel, data.case_id)
    context = kernel.context(request.user)
    consent_id, version = await call(consents.give, data, context, facts)
    return Saved(id=consent_id, version=version)


@post(
    "/consents/{consent_id:uuid}/scope",
    summary="Change which services and purposes a consent covers",
)
async def change_scope(
    request: ActorRequest,
    consents: NamedDependency[Consents],
    kernel: NamedDependency[Kernel],
    consent_id: FromPath[UUID],
    data: JSONBody[ChangeScope],
) -> Saved:
    facts = await _facts(kernel, (await call(consents.consent, consent_id)).case_id)
    context = kernel.context(request.user)
    version = await call(consents.change_scope, consent_id, data, context, facts)
    return Saved(id=consent_id, version=version)


@post(
    "/consents/{consent_id:uuid}/withdraw",
    summary="Withdraw a consent, wholly or for some services",
)
async def withdraw_consent(
    request: ActorRequest,
    consents: NamedDependency[Consents],
    kernel: NamedDependency[Kernel],
    consent_id: FromPath[UUID],
    data: JSONBody[WithdrawConsent],
) -> Saved:
    facts = await _facts(kernel, (await call(consents.consent, consent_id)).case_id)
    context = kernel.context(request.user)
    data = await _sealed(kernel, data, facts)
    version = await call(consents.withdraw, consent_id, data, context, facts)
    return Saved(id=consent_id, version=version)


@post(
    "/legal-bases",
    summary="Record a legal basis for sharing without consent",
    responses=refusals(404),
)
async def record_legal_basis(
    request: ActorRequest,
    consents: NamedDependency[Consents],
    kernel: NamedDependency[Kernel],
    data: JSONBody[RecordLegalBasis],
) -> Saved:
    facts = await _facts(kernel, data.case_id)
    context = kernel.context(request.user)
    data = await _sealed(kernel, data, facts)
    basis_id, version = await call(consents.record_legal_basis, data, context, facts)
    return Saved(id=basis_id, version=version)


# Reads: each through the gate before anything about the case is said.


@get(
    "/consents/{consent_id:uuid}",
    summary="One consent, for those who may read its case",
    responses=refusals(403),
)
async def read_consent(
    request: ActorRequest,
    consents: NamedDependency[Consents],
    kernel: NamedDependency[Kernel],
    consent_id: FromPath[UUID],
    purpose: StatedPurpose = None,
) -> Consent:
    consent = await call(consents.consent, consent_id)
    await kernel.reads().admit(request.user, consent.case_id, "consent", purpose)
    return consent


@get(
    "/cases/{case_id:uuid}/consents",
    summary="The consents and legal bases of a case",
    responses=refusals(403),
)
async def consents_of_case(
    request: ActorRequest,
    consents: NamedDependency[Consents],
    kernel: NamedDependency[Kernel],
    case_id: FromPath[UUID],
    purpose: StatedPurpose = None,
) -> CaseConsents:
    await kernel.reads().admit(request.user, case_id, "consents", purpose)
    return await kernel.open_texts(await call(consents.consents_of_case, case_id))


@get(
    "/cases/{case_id:uuid}/access",
    summary="May a service see the case for a purpose, at a moment?",
    responses=refusals(403),
)
async def access(
    request: ActorRequest,
    kernel: NamedDependency[Kernel],
    case_id: FromPath[UUID],
    service: Annotated[
        str, Parameter(description="the unit that would see the case", **limits(UnitId))
    ],
    for_purpose: Annotated[
        Purpose, Parameter(description="the purpose the service would see the case for")
    ],
    at: Annotated[
        datetime | None,
        Parameter(description="the moment asked about, with its time zone (default now)"),
    ] = None,
    purpose: StatedPurpose = None,
) -> ServiceAccess:
    """May `service` see the case for `for_purpose` at `at` (default now)? And on what basis."""
    asked_at = _moment("at", at)
    admitted = await kernel.reads().admit(request.user, case_id, "access", purpose)
    moment = asked_at or datetime.now(UTC)
    someone = Actor(person="someone", role=Role.EMPLOYEE, service=service)
    answer = read_access(
        admitted.case,
        someone,
        child=None,
        directory=kernel.directory.current(),
        now=moment,
        purpose=str(for_purpose),
    )
    ends = [p.finish for p in answer.periods if p.holds(moment)]
    return ServiceAccess(
        allowed=answer.granted,
        rule=answer.rule,
        basis=answer.basis,
        until=None if not ends or None in ends else max(e for e in ends if e is not None),
        reason=answer.refusal,
    )


def _moment(parameter: str, value: datetime | None) -> datetime | None:
    """The moment a query names, in UTC; 422 naming the parameter if it has no time zone."""
    try:
        return None if value is None else utc_moment(value)
    except ValueError as wrong:
        extra = [{"key": parameter, "message": str(wrong), "source": "query"}]
        raise ValidationException(f"{parameter} {wrong}", extra=extra) from None


C = TypeVar("C", bound=msgspec.Struct)


async def _sealed(kernel: Kernel, command: C, facts: Facts) -> C:
    """The command with its free text about the child (a withdrawal's reason, a legal basis's
    justification) sealed under the child's key, before any rule sees it. The case service made
    the key when the case was raised; this service only seals under it. Sealed in the case's
    context, a retry seals to the same value."""
    case = facts.case
    return await kernel.seal_texts(command, str(case.child_id), context=str(case.id))


async def _facts(kernel: Kernel, case_id: UUID) -> Facts:
    """The case from its events and its child from the register: what a command is decided on."""
    case = await StreamCases(kernel).case(case_id)
    if case is None:
        raise NotFoundException(f"no case {case_id}")
    return Facts(case=case, child=await call(kernel.register.child, case.child_id))


def _store_answers(consents: Consents) -> Check:
    """Ready while the stream answers a read."""

    async def check() -> CheckResult:
        last = await call(consents.recorder.max_notification_id)
        return CheckResult(ok=True, detail=f"last event {last or 0}")

    return check
