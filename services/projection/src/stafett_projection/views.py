"""Queries over the read models: what each endpoint answers, before authorisation is applied.

Synchronous, one read transaction each; the API runs them on worker threads.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from stafett_projection.access import CaseFacts, Decision, Period
from stafett_projection.store import Tx

EVALUATIONS_DUE_WITHIN = timedelta(days=7)
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One relay-log entry: the event as its service published it, with where it is stored."""

    stream: str
    seq: int
    type: str
    occurred_at: str
    person: str
    role: str
    service: str | None
    event: dict[str, Any]


class CaseState(msgspec.Struct, frozen=True, kw_only=True):
    """The case as its own events leave it, as of a moment (folded from the case stream)."""

    status: str = "open"
    level: int = 0
    unit: str | None = None
    holder: str | None = None
    holder_service: str | None = None
    coordinator: str | None = None
    coordinator_service: str | None = None
    services: tuple[str, ...] = ()
    active_measures: tuple[str, ...] = ()


def facts(tx: Tx, case_id: str) -> tuple[CaseFacts, str | None] | None:
    """The facts the access rules need, and the sealed personal data; None if no such case."""
    row = tx.one("SELECT raised_unit, raised_at, sealed FROM cases WHERE case_id = ?", (case_id,))
    if row is None:
        return None
    parties = tx.all("SELECT party_kind, party FROM consents WHERE case_id = ?", (case_id,))
    coverage: dict[str, list[Period]] = defaultdict(list)
    for service, start, finish, basis, basis_id, purposes in tx.all(
        "SELECT v.service, v.start, v.finish, v.basis, v.basis_id, c.purposes FROM coverage v"
        " LEFT JOIN consents c ON c.consent_id = v.basis_id WHERE v.case_id = ?"
        " ORDER BY v.start",
        (case_id,),
    ):
        label = f"consent {basis_id}" if basis == "consent" else basis
        given_for = None if purposes is None else frozenset(purposes.split(","))
        coverage[service].append(Period(start, finish, label, given_for))
    return (
        CaseFacts(
            case_id=case_id,
            raised_unit=row[0],
            raised_at=row[1],
            guardians=frozenset(p for k, p in parties if k == "guardian"),
            children=frozenset(p for k, p in parties if k == "child"),
            coverage={s: tuple(p) for s, p in coverage.items()},
        ),
        row[2],
    )


def entries(tx: Tx, case_id: str, as_of: str | None = None) -> list[Entry]:
    """Every entry of the case in order (up to `as_of`), before authorisation."""
    sql = (
        "SELECT stream, seq, type, occurred_at, person, role, service, body FROM entries"
        " WHERE case_id = ?"
    )
    params: list[Any] = [case_id]
    if as_of is not None:
        sql += " AND occurred_at <= ?"
        params.append(as_of)
    rows = tx.all(sql + " ORDER BY occurred_at, stream, seq", params)
    return [
        Entry(
            stream=r[0],
            seq=r[1],
            type=r[2],
            occurred_at=r[3],
            person=r[4],
            role=r[5],
            service=r[6],
            event=_decode(r[7]),
        )
        for r in rows
    ]


def facts_and_entries(
    tx: Tx, case_id: str, as_of: str | None = None
) -> tuple[CaseFacts, str | None, list[Entry]] | None:
    """`facts` and `entries` from one snapshot, in one read: the relay log needs both."""
    found = facts(tx, case_id)
    return None if found is None else (*found, entries(tx, case_id, as_of))


def visible(all_entries: list[Entry], decision: Decision) -> list[Entry]:
    """The entries from the periods the decision lets the caller see."""
    if decision.periods is None:
        return all_entries
    return [e for e in all_entries if decision.shows(e.occurred_at)]


def state_of(all_entries: list[Entry]) -> CaseState:
    """Fold the case stream's entries: the state at the last of them (time travel)."""
    s: dict[str, Any] = {"services": [], "measures": []}
    for entry in all_entries:
        if entry.stream != "CASE":
            continue
        e = entry.event
        match entry.type:
            case "ConcernRaised":
                s.update(unit=e["unit"], services=[e["unit"]])
            case "Escalated" | "DeEscalated":
                s["level"] = e["to_level"]
            case "LevelDecided":
                s["level"] = e["level"]
            case "CaseClosed":
                s["status"] = "closed"
            case "CaseReopened":
                s["status"] = "open"
            case "BatonHolderAppointed":
                s.update(holder=e["holder"], holder_service=e["service"])
            case "BatonHandedOver":
                s.update(holder=e["to_person"], holder_service=e["to_service"])
            case "BatonVacated":
                s.update(holder=None, holder_service=None)
            case "CoordinatorAssigned":
                s.update(coordinator=e["coordinator"], coordinator_service=e["service"])
            case "AgencyJoined" if e["service"] not in s["services"]:
                s["services"].append(e["service"])
            case "AgencyLeft" if e["service"] in s["services"]:
                s["services"].remove(e["service"])
            case "MeasurePlanned":
                s["measures"].append(e["description"])
    measures = tuple(s.pop("measures"))
    s["services"] = tuple(s["services"])
    return CaseState(**s, active_measures=measures)


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


def consent_status(tx: Tx, case_id: str, now: str) -> dict[str, Any]:
    consents = []
    for row in tx.all(
        "SELECT consent_id, party_kind, party, purposes, valid_from, valid_until, ended_at,"
        " end_reason FROM consents WHERE case_id = ? ORDER BY valid_from, consent_id",
        (case_id,),
    ):
        services = [
            {
                "service": s,
                "from": start,
                "until": finish,
                "covered_now": Period(start, finish, "").holds(now),
            }
            for s, start, finish in tx.all(
                "SELECT service, start, finish FROM coverage WHERE basis_id = ?"
                " ORDER BY service, start",
                (row[0],),
            )
        ]
        consents.append(
            {
                "consent_id": row[0],
                "given_by": {"kind": row[1], "person": row[2]},
                "purposes": row[3].split(","),
                "valid_from": row[4],
                "valid_until": row[5],
                "ended_at": row[6],
                "end_reason": row[7],
                "services": services,
            }
        )
    legal = [
        {"service": s, "from": start, "basis": basis}
        for s, start, basis in tx.all(
            "SELECT service, start, basis FROM coverage WHERE case_id = ? AND basis <> 'consent'"
            " ORDER BY start",
            (case_id,),
        )
    ]
    covered = sorted(
        {
            s
            for s, start, finish in tx.all(
                "SELECT service, start, finish FROM coverage WHERE case_id = ?", (case_id,)
            )
            if Period(start, finish, "").holds(now)
        }
    )
    return {"consents": consents, "legal_bases": legal, "services_covered_now": covered}


def access_log(tx: Tx, case_id: str) -> list[dict[str, Any]]:
    names = (
        "seq",
        "at",
        "person",
        "role",
        "service",
        "what",
        "purpose",
        "outcome",
        "basis",
        "refusal",
    )
    return [
        dict(zip(names, row, strict=True))
        for row in tx.all(
            "SELECT seq, occurred_at, person, role, service, what, purpose, outcome, basis,"
            " refusal FROM access WHERE case_id = ? ORDER BY seq",
            (case_id,),
        )
    ]


def export_lines(tx: Tx, case_id: str) -> str:
    """The case's events with their envelopes, one JSON object a line, in stream order."""
    lines = [
        f'{{"stream":{json.dumps(stream)},"seq":{seq},"subject":{json.dumps(subject)},'
        f'"event":{body}}}\n'
        for stream, seq, subject, body in tx.all(
            "SELECT stream, seq, subject, body FROM entries WHERE case_id = ?"
            " ORDER BY occurred_at, stream, seq",
            (case_id,),
        )
    ]
    return "".join(lines)


def case_status(tx: Tx, case_id: str) -> str | None:
    row = tx.one("SELECT status FROM cases WHERE case_id = ?", (case_id,))
    return None if row is None else str(row[0])


def archive_document(case_id: str, child: Any, visible: list[Entry], state: CaseState) -> str:
    """The relay log as a readable document for the pupil's file (markdown)."""
    lines = [f"# Relay log of case {case_id}", ""]
    if child is not None:
        lines += [f"Child: {_child(child)}", ""]
    lines += [
        f"Status: {state.status}, level {state.level}, unit {state.unit}.",
        f"Services taking part at the end: {', '.join(state.services) or 'none'}.",
        "",
        "| when (UTC) | what | who | details |",
        "|---|---|---|---|",
    ]
    for entry in visible:
        details = "; ".join(
            f"{k}: {_cell(v)}"
            for k, v in entry.event.items()
            if k not in _ENVELOPE and v not in (None, [], ())
        )
        who = f"{entry.person} ({entry.role}{', ' + entry.service if entry.service else ''})"
        lines.append(f"| {entry.occurred_at[:19]} | {entry.type} | {who} | {details} |")
    return "\n".join(lines) + "\n"


_ENVELOPE = {
    "type",
    "schema_version",
    "event_id",
    "aggregate_id",
    "aggregate_version",
    "occurred_at",
    "actor",
    "correlation_id",
    "causation_id",
    "case_id",
    "personal_data",
}


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def _child(child: Any) -> str:
    if getattr(child, "erased", False):
        return "personal data erased"
    parts = [child.name]
    if child.birth_date:
        parts.append(f"born {child.birth_date}")
    return ", ".join(parts)


def worklist(tx: Tx, person: str, service: str | None) -> list[dict[str, Any]]:
    """Cases where the person holds the baton, coordinates, or owns a measure or action item."""
    items: list[dict[str, Any]] = []
    for case_id, level, holder_service in tx.all(
        "SELECT case_id, level, holder_service FROM cases WHERE status = 'open' AND holder = ?",
        (person,),
    ):
        if service is not None and holder_service != service:
            continue
        items.append({"case_id": case_id, "kind": "baton_holder", "level": level, "due": None})
    for case_id, level in tx.all(
        "SELECT case_id, level FROM cases WHERE status = 'open' AND coordinator = ?", (person,)
    ):
        items.append({"case_id": case_id, "kind": "coordinator", "level": level, "due": None})
    for case_id, measure_id, due in tx.all(
        "SELECT m.case_id, m.measure_id, m.evaluation_date FROM measures m JOIN cases c"
        " ON c.case_id = m.case_id WHERE m.responsible = ? AND m.status = 'active'"
        " AND c.status = 'open'",
        (person,),
    ):
        items.append(
            {"case_id": case_id, "kind": "measure_evaluation", "about": measure_id, "due": due}
        )
    for case_id, item_id, due in tx.all(
        "SELECT a.case_id, a.item_id, a.due_on FROM action_items a JOIN cases c"
        " ON c.case_id = a.case_id WHERE a.owner = ? AND a.done = 0 AND c.status = 'open'",
        (person,),
    ):
        items.append({"case_id": case_id, "kind": "action_item", "about": item_id, "due": due})
    return sorted(items, key=lambda i: (i["due"] or "9999", i["case_id"], i["kind"]))


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


def figures(tx: Tx, now: datetime, min_group: int = 1) -> dict[str, Any]:
    """Management figures without personal data: counts, shares and durations only.

    Small groups identify children (one concern in a small kindergarten in May is someone's
    child), so a count of fewer than `min_group` (but more than none) is given as null, as is a
    mean or share over fewer than `min_group` cases.
    """

    def count(n: int) -> int | None:
        return n if n == 0 or n >= min_group else None

    def mean(values: list[float]) -> float | None:
        return round(sum(values) / len(values), 2) if values and len(values) >= min_group else None

    per_unit_month: dict[str, dict[str, int | None]] = defaultdict(dict)
    for unit, month, n in tx.all(
        "SELECT raised_unit, substr(raised_at, 1, 7), COUNT(*) FROM cases"
        " GROUP BY raised_unit, substr(raised_at, 1, 7)"
    ):
        per_unit_month[unit][month] = count(n)
    closed = tx.all("SELECT closed_level FROM cases WHERE status = 'closed'")
    low = sum(1 for (level,) in closed if level is not None and level <= 1)
    to_measure = [
        (_at(m) - _at(r)).total_seconds() / 86400
        for r, m in tx.all(
            "SELECT raised_at, first_measure_at FROM cases WHERE first_measure_at IS NOT NULL"
        )
    ]
    at_level: dict[int, list[float]] = defaultdict(list)
    for level, since, until in tx.all("SELECT level, since, until FROM levels"):
        end = _at(until) if until else now
        at_level[level].append((end - _at(since)).total_seconds() / 86400)
    counts = Counter(
        dict(
            tx.all(
                "SELECT type, COUNT(*) FROM entries WHERE type IN ('Escalated', 'DeEscalated',"
                " 'ConsentWithdrawn', 'SystemMeasureProposed', 'ChildWelfareReportFiled')"
                " GROUP BY type"
            )
        )
    )
    breaks = dict(tx.all("SELECT cause, COUNT(*) FROM breaks GROUP BY cause"))
    fb = tx.one("SELECT COUNT(*), AVG(rating), AVG(heard) FROM feedback")
    feedback_count = fb[0] if fb else 0
    shown = feedback_count >= min_group
    return {
        "min_group": min_group,
        "concerns_per_unit_and_month": dict(per_unit_month),
        "closed_cases": count(len(closed)),
        "share_resolved_at_levels_0_1": (
            round(low / len(closed), 3) if closed and len(closed) >= min_group else None
        ),
        "days_from_concern_to_first_measure": mean(to_measure),
        "days_at_each_level": {str(k): mean(v) for k, v in sorted(at_level.items())},
        "escalations": count(counts["Escalated"]),
        "de_escalations": count(counts["DeEscalated"]),
        "follow_up_breaks": {cause: count(n) for cause, n in breaks.items()},
        "consent_withdrawals": count(counts["ConsentWithdrawn"]),
        "system_measures": count(counts["SystemMeasureProposed"]),
        "child_welfare_reports": count(counts["ChildWelfareReportFiled"]),
        "feedback": {
            "count": count(feedback_count),
            "mean_rating": round(float(fb[1]), 2) if shown and fb and fb[1] is not None else None,
            "mean_heard": round(float(fb[2]), 2) if shown and fb and fb[2] is not None else None,
        },
    }


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)
