"""Queries over the read models: what each endpoint answers, before the access rule is applied.

Synchronous, one read transaction each; the API runs them on worker threads. A case's own state
is never kept in a table here: it is folded from its CASE entries (`case_file`) with the one fold
of a case (`stafett_contracts.casefile`), and what a viewer is shown of it is summarised from the
entries they may see (`casefile.summary`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import msgspec

from stafett_contracts.access import overrides
from stafett_contracts.case import CaseEvent, ChildWelfareReportFiled, LegalBasisNoted
from stafett_contracts.casefile import Basis, CaseFile, CaseSummary, fold
from stafett_contracts.consent import Party
from stafett_contracts.guides import GuideBook, evolve_book
from stafett_contracts.identity import Actor
from stafett_contracts.people import Deadlines, RegisteredChild
from stafett_contracts.personal import Erased, PersonalData
from stafett_projection.models import decode
from stafett_projection.store import Tx

EVALUATIONS_DUE_WITHIN = timedelta(days=7)
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One relay-log entry: the event as its service published it, with where it is stored."""

    stream: str
    seq: int
    type: str
    occurred_at: datetime
    person: str
    role: str
    service: str | None
    event: dict[str, Any]


class CaseHistory(msgspec.Struct, frozen=True, kw_only=True):
    """One snapshot of a case: its case file, the CASE events it is folded from (in stream
    order), and every stream's entries about it (in the order they were appended: within a
    stream by sequence, across streams as the event store appended them; `models`)."""

    case: CaseFile
    events: list[CaseEvent]
    entries: list[Entry]


def case_events(tx: Tx, case_id: str) -> list[CaseEvent]:
    """The case's own events, decoded from its CASE entries, in stream order."""
    rows = tx.all(
        "SELECT body FROM entries WHERE case_id = ? AND stream = 'CASE' ORDER BY seq", (case_id,)
    )
    return [_case_event(body) for (body,) in rows]


def case_file(tx: Tx, case_id: str) -> CaseFile | None:
    """The case as its events tell it; None if there is no such case."""
    return fold(case_events(tx, case_id))


def history(tx: Tx, case_id: str) -> CaseHistory | None:
    """The case file and every entry of the case, from one read: the relay log needs both."""
    rows = tx.all(
        "SELECT stream, seq, type, occurred_at, person, role, service, body FROM entries"
        " WHERE case_id = ? ORDER BY appended, stream, seq",
        (case_id,),
    )
    events = [_case_event(r[7]) for r in rows if r[0] == "CASE"]
    case = fold(events)
    if case is None:
        return None
    entries = [
        Entry(
            stream=r[0],
            seq=r[1],
            type=r[2],
            occurred_at=_at(r[3]),
            person=r[4],
            role=r[5],
            service=r[6],
            event=_decode(r[7]),
        )
        for r in rows
    ]
    return CaseHistory(case=case, events=events, entries=entries)


def guide_book(tx: Tx) -> GuideBook:
    """The action guides published in the municipality (`GuidePublished`, in the CASE stream
    beside the cases; stored as entries of no case), folded in order."""
    rows = tx.all(
        "SELECT body FROM entries WHERE stream = 'CASE' AND type = 'GuidePublished' ORDER BY seq"
    )
    book = GuideBook()
    for (body,) in rows:
        book = evolve_book(book, decode("CASE", body))
    return book


def _case_event(body: str) -> CaseEvent:
    event = decode("CASE", body)
    assert isinstance(event, CaseEvent)
    return event


class Override(msgspec.Struct, frozen=True, kw_only=True):
    """A service let into a case without consent: a legal basis or a report to child welfare
    (DOMAIN.md rule 4), and who recorded it."""

    case_id: UUID
    service: str
    basis: Basis
    provision: str
    since: datetime
    recorded_by: Actor | None = None


def overrides_of(case: CaseFile, events: Iterable[CaseEvent]) -> list[Override]:
    """The case's overrides (`stafett_contracts.access.overrides`), each with its recorder."""
    recorders = {
        (e.service if isinstance(e, LegalBasisNoted) else e.reported_to, e.occurred_at): e.actor
        for e in events
        if isinstance(e, LegalBasisNoted | ChildWelfareReportFiled)
    }
    return [
        Override(
            case_id=case.id,
            service=p.service,
            basis=p.basis,
            provision=p.ref,
            since=p.start,
            recorded_by=recorders.get((p.service, p.start)),
        )
        for p in overrides(case)
    ]


def overridden_cases(tx: Tx) -> list[CaseHistory]:
    """Every case with a legal basis or a report to child welfare (without its other entries)."""
    rows = tx.all(
        "SELECT case_id, body FROM entries WHERE stream = 'CASE' AND case_id IN ("
        " SELECT case_id FROM entries WHERE stream = 'CASE'"
        " AND type IN ('LegalBasisNoted', 'ChildWelfareReportFiled'))"
        " ORDER BY case_id, seq"
    )
    by_case: dict[str, list[CaseEvent]] = defaultdict(list)
    for case_id, body in rows:
        by_case[case_id].append(_case_event(body))
    found = []
    for events in by_case.values():
        case = fold(events)
        if case is not None:
            found.append(CaseHistory(case=case, events=events, entries=[]))
    return found


class HandoverPacket(msgspec.Struct, frozen=True, kw_only=True):
    """What a receiving unit sees at a transition, of the entries it may see."""

    case_id: UUID
    basis: str | None
    state: CaseSummary
    child: PersonalData | None = None  # only for a reader who may know who the child is
    erased: Erased | None = None  # instead, once the child's key is deleted
    measures_tried: list[dict[str, Any]]
    what_worked: list[str]
    next_steps: dict[str, Any]


def handover_packet(visible: list[Entry]) -> dict[str, Any]:
    """What a receiving unit needs: measures tried and how they went, what worked, next steps."""
    measures: dict[str, dict[str, Any]] = {}
    decisions: list[dict[str, Any]] = []
    items: dict[str, dict[str, Any]] = {}
    for entry in visible:
        e = entry.event
        match entry.type:
            case "MeasurePlanned":
                measures[e["measure_id"]] = {
                    "description": e["description"],
                    "responsible": e["responsible"],
                    "service": e["service"],
                    "evaluation_date": e["evaluation_date"],
                    "outcomes": [],
                    "ended": False,
                }
            case "MeasureEvaluated" if e["measure_id"] in measures:
                m = measures[e["measure_id"]]
                m["outcomes"].append({"outcome": e["outcome"], "notes": e["notes"]})
                m["evaluation_date"] = e.get("next_evaluation_date")
            case "MeasureEnded" if e["measure_id"] in measures:
                measures[e["measure_id"]]["ended"] = True
            case "Escalated" | "DeEscalated" | "LevelDecided" | "CaseClosed" | "DecisionRecorded":
                decisions.append({"type": entry.type, "at": entry.occurred_at, **_reason(e)})
            case "ActionItemAssigned":
                items[e["item_id"]] = {
                    "description": e["description"],
                    "owner": e["owner"],
                    "due_on": e["due_on"],
                }
            case "ActionItemCompleted":
                items.pop(e["item_id"], None)
    tried = list(measures.values())
    return {
        "measures_tried": tried,
        "what_worked": [
            m["description"]
            for m in tried
            if m["outcomes"] and m["outcomes"][-1]["outcome"] == "worked"
        ],
        "next_steps": {
            "open_measures": [m for m in tried if not m["ended"]],
            "open_action_items": list(items.values()),
            "last_decision": decisions[-1] if decisions else None,
        },
    }


def _reason(e: dict[str, Any]) -> dict[str, Any]:
    keep = ("reason", "to_level", "level", "kind", "at_level")
    return {k: e[k] for k in keep if k in e}


class ServiceCovered(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    start: datetime = msgspec.field(name="from")
    until: datetime | None
    covered_now: bool


class ConsentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One consent given on the case, and when it covered each service (as the case noted it)."""

    consent_id: str
    given_by: Party
    purposes: list[str]
    valid_from: datetime
    valid_until: datetime
    ended_at: datetime | None
    end_reason: str | None
    services: list[ServiceCovered]


class ConsentStatus(msgspec.Struct, frozen=True, kw_only=True):
    consents: list[ConsentRecord]
    legal_bases: list[Override]
    services_covered_now: list[str]


def consent_status(tx: Tx, case_id: str, now: datetime) -> tuple[CaseFile, ConsentStatus] | None:
    """Who may see the case and until when: the consents given on it (from the consent stream),
    with the periods the case's own record says each covered (the access rule's periods)."""
    events = case_events(tx, case_id)
    case = fold(events)
    if case is None:
        return None
    consents = [
        ConsentRecord(
            consent_id=consent_id,
            given_by=Party(kind=kind, person=party),
            purposes=purposes.split(","),
            valid_from=_at(valid_from),
            valid_until=_at(valid_until),
            ended_at=None if ended_at is None else _at(ended_at),
            end_reason=end_reason,
            services=[
                ServiceCovered(
                    service=p.service, start=p.start, until=p.finish, covered_now=p.holds(now)
                )
                for p in sorted(case.periods, key=lambda p: (p.service, p.start))
                if p.basis == "consent" and p.ref == consent_id
            ],
        )
        for consent_id, kind, party, purposes, valid_from, valid_until, ended_at, end_reason in (
            tx.all(
                "SELECT consent_id, party_kind, party, purposes, valid_from, valid_until, ended_at,"
                " end_reason FROM consents WHERE case_id = ? ORDER BY valid_from, consent_id",
                (case_id,),
            )
        )
    ]
    covered = {case.unit} | {p.service for p in case.periods if p.holds(now)}
    return case, ConsentStatus(
        consents=consents,
        legal_bases=overrides_of(case, events),
        services_covered_now=sorted(covered),
    )


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """One read of the case, or one refused attempt, as the service that answered recorded it."""

    seq: int
    at: datetime
    person: str
    role: str
    service: str | None
    what: str
    purpose: str | None
    outcome: str
    basis: str | None
    refusal: str | None
    rule: str | None  # the access rule that decided
    served_by: str | None  # the service that answered


def access_log(tx: Tx, case_id: str) -> list[Reading]:
    rows = tx.all(
        "SELECT seq, occurred_at, person, role, service, what, purpose, outcome, basis, refusal,"
        " rule, served_by FROM access WHERE case_id = ? ORDER BY seq",
        (case_id,),
    )
    return [
        Reading(
            seq=r[0],
            at=_at(r[1]),
            person=r[2],
            role=r[3],
            service=r[4],
            what=r[5],
            purpose=r[6],
            outcome=r[7],
            basis=r[8],
            refusal=r[9],
            rule=r[10],
            served_by=r[11],
        )
        for r in rows
    ]


class ExportLine(msgspec.Struct, frozen=True, kw_only=True):
    """One line of a case's export: an event with its envelope, where it stands in its stream."""

    stream: str
    seq: int
    subject: str
    event: dict[str, Any]  # as stored: its free text sealed (the API opens it for the reader)


def export_lines(tx: Tx, case_id: str) -> list[ExportLine]:
    """The case's events with their envelopes, in the order they were appended (as the relay
    log)."""
    return [
        ExportLine(stream=stream, seq=seq, subject=subject, event=_decode(body))
        for stream, seq, subject, body in tx.all(
            "SELECT stream, seq, subject, body FROM entries WHERE case_id = ?"
            " ORDER BY appended, stream, seq",
            (case_id,),
        )
    ]


WorkKind = Literal[
    "baton_holder",
    "coordinator",
    "measure_evaluation",
    "action_item",
    "decision_due",  # the level-0 decision (the municipality's `decision_days`)
    "minutes_due",  # a held meeting's minutes (`minutes_days`); `about` is the meeting
    "inactivity_due",  # nothing recorded on the case for `inactivity_days`, soon or already
    "guardian",
    "child",
]


class WorkItem(msgspec.Struct, frozen=True, kw_only=True):
    """One case on a worklist, and why it is there."""

    case_id: str
    kind: WorkKind
    level: int | None = None
    status: str | None = None  # open or closed: for guardians and the child, who see both
    about: str | None = None  # the measure or action item
    due: str | None = None  # a date
    overdue: bool | None = None  # a deadline's date has come (decision, minutes, inactivity)
    # For guardians and the child: the child's name, as the register gives it to them.
    child_name: str | None = None


def worklist(
    tx: Tx, person: str, service: str | None, deadlines: Deadlines, today: date
) -> list[WorkItem]:
    """Cases where the person holds the baton, coordinates, or owns a measure or action item;
    and, of the cases they hold, the deadlines that come due (the municipality's)."""
    items: list[WorkItem] = []
    held: list[str] = []
    for case_id, level, holder_service in tx.all(
        "SELECT case_id, level, holder_service FROM cases WHERE status = 'open' AND holder = ?",
        (person,),
    ):
        if service is not None and holder_service != service:
            continue
        items.append(WorkItem(case_id=case_id, kind="baton_holder", level=level))
        held.append(case_id)
    items += _deadlines(tx, held, deadlines, today)
    for case_id, level, coordinator_service in tx.all(
        "SELECT case_id, level, coordinator_service FROM cases"
        " WHERE status = 'open' AND coordinator = ?",
        (person,),
    ):
        if service is not None and coordinator_service != service:
            continue
        items.append(WorkItem(case_id=case_id, kind="coordinator", level=level))
    for case_id, measure_id, due in tx.all(
        "SELECT m.case_id, m.measure_id, m.evaluation_date FROM measures m JOIN cases c"
        " ON c.case_id = m.case_id WHERE m.responsible = ? AND m.status = 'active'"
        " AND c.status = 'open'",
        (person,),
    ):
        items.append(
            WorkItem(case_id=case_id, kind="measure_evaluation", about=measure_id, due=due)
        )
    for case_id, item_id, due in tx.all(
        "SELECT a.case_id, a.item_id, a.due_on FROM action_items a JOIN cases c"
        " ON c.case_id = a.case_id WHERE a.owner = ? AND a.done = 0 AND c.status = 'open'",
        (person,),
    ):
        items.append(WorkItem(case_id=case_id, kind="action_item", about=item_id, due=due))
    return sorted(items, key=lambda i: (i.due or "9999", i.case_id, i.kind))


def _deadlines(tx: Tx, case_ids: list[str], deadlines: Deadlines, today: date) -> list[WorkItem]:
    """The deadlines of these cases that are not met: the level-0 decision, the minutes of each
    meeting held, and activity on the case once inactivity is within the reminder lead of its
    deadline or past it (as notify's timers count them: `stafett_notify.domain.rules`, where the
    last activity is the newest case or meeting event)."""
    if not case_ids:
        return []
    marks = ",".join("?" * len(case_ids))

    def item(
        case_id: str, kind: WorkKind, level: int, since: str, days: int, about: str | None
    ) -> WorkItem:
        by = (_at(since) + timedelta(days=days)).date()
        return WorkItem(
            case_id=case_id,
            kind=kind,
            level=level,
            about=about,
            due=by.isoformat(),
            overdue=by <= today,
        )

    found = [
        item(case_id, "decision_due", 0, raised, deadlines.at_level(0).decision_days, None)
        for case_id, raised in tx.all(
            f"SELECT case_id, raised_at FROM cases WHERE case_id IN ({marks})"
            " AND level = 0 AND level0_decided_at IS NULL",
            case_ids,
        )
    ]
    levels = dict(tx.all(f"SELECT case_id, level FROM cases WHERE case_id IN ({marks})", case_ids))
    held: dict[tuple[str, str], str] = {}
    for case_id, kind, body in tx.all(
        f"SELECT case_id, type, body FROM entries WHERE case_id IN ({marks}) AND stream ="
        " 'MEETING' AND type IN ('MeetingHeld', 'MinutesRecorded') ORDER BY seq",
        case_ids,
    ):
        event = _decode(body)
        if kind == "MeetingHeld":
            held[(case_id, event["aggregate_id"])] = event["held_at"]
        else:
            held.pop((case_id, event["aggregate_id"]), None)
    found += [
        item(
            case_id,
            "minutes_due",
            levels[case_id],
            at,
            deadlines.at_level(levels[case_id]).minutes_days,
            meeting_id,
        )
        for (case_id, meeting_id), at in held.items()
    ]
    for case_id, last in tx.all(
        f"SELECT case_id, MAX(occurred_at) FROM entries WHERE case_id IN ({marks})"
        " AND stream IN ('CASE', 'MEETING') GROUP BY case_id",
        case_ids,
    ):
        level = deadlines.at_level(levels[case_id])
        inactive = item(
            case_id, "inactivity_due", levels[case_id], last, level.inactivity_days, None
        )
        soon = today + timedelta(days=level.reminder_lead_days)
        if date.fromisoformat(inactive.due or "") <= soon:
            found.append(inactive)
    return found


def children_s_cases(
    tx: Tx, kind: Literal["guardian", "child"], children: Sequence[RegisteredChild]
) -> list[WorkItem]:
    """Every case about the children the register named, oldest first, each with the child's
    name from the register."""
    if not children:
        return []
    names = {str(c.child_id): c.name for c in children}
    rows = tx.all(
        "SELECT case_id, child_id, level, status FROM cases"
        f" WHERE child_id IN ({','.join('?' * len(names))}) ORDER BY raised_at, case_id",
        list(names),
    )
    return [
        WorkItem(case_id=case_id, kind=kind, level=level, status=status, child_name=names[child])
        for case_id, child, level, status in rows
    ]


def unit_overview(tx: Tx, unit: str, today: date) -> dict[str, Any]:
    per_level = {str(level): 0 for level in range(4)}
    for level, count in tx.all(
        "SELECT level, COUNT(*) FROM cases WHERE unit = ? AND status = 'open' GROUP BY level",
        (unit,),
    ):
        per_level[str(level)] = count
    breaks = [
        {"case_id": c, "detected_at": at, "stage": stage, "cause": cause}
        for c, at, stage, cause in tx.all(
            "SELECT b.case_id, b.detected_at, b.stage, b.cause FROM breaks b"
            " JOIN cases c ON c.case_id = b.case_id"
            " WHERE c.unit = ? AND c.status = 'open' AND NOT EXISTS ("
            "  SELECT 1 FROM entries e WHERE e.case_id = b.case_id AND e.stream <> 'NOTIFY'"
            "  AND e.occurred_at > b.last_activity_at)"
            " ORDER BY b.detected_at",
            (unit,),
        )
    ]
    horizon = (today + EVALUATIONS_DUE_WITHIN).isoformat()
    due = [
        {
            "case_id": c,
            "measure_id": m,
            "responsible": r,
            "evaluation_date": d,
            "overdue": d < today.isoformat(),
        }
        for c, m, r, d in tx.all(
            "SELECT m.case_id, m.measure_id, m.responsible, m.evaluation_date FROM measures m"
            " JOIN cases c ON c.case_id = m.case_id WHERE c.unit = ? AND c.status = 'open'"
            " AND m.status = 'active' AND m.evaluation_date <= ? ORDER BY m.evaluation_date",
            (unit, horizon),
        )
    ]
    return {
        "unit": unit,
        "open_cases_per_level": per_level,
        "follow_up_breaks": breaks,
        "evaluations_due": due,
    }


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
