"""Management figures without personal data: for the municipality, and per unit and month.

Only counts, shares and durations leave here: never a case, a person or anything written.
Small groups identify children (one concern in a small kindergarten in May is someone's child),
so a count of fewer than `min_group` (but more than none) is given as null, as is a mean or
share over fewer than `min_group` cases (`STAFETT_PROJECTION_FIGURES_MIN_GROUP`, default 5).

Months are calendar months in the municipality's time zone. Per unit and month, each figure
belongs to the unit and month below. A case's unit is the unit that owns it at that moment
(`models`: where the worry arose, until a handover to a unit of the same kind of service).

| figure | unit | month |
|---|---|---|
| concerns | where the worry arose | the concern's |
| escalations, de-escalations (by level pair, "0-1") | the case's, at the move | the move's |
| cases per level at month end | the case's, at the month's end (this month: now) | each month |
| days from concern to first measure, to the level-0 decision | where the worry arose | the concern's |
| days at each level | the case's, when the stay ended | the stay's end |
| follow-up breaks (by cause), consent withdrawals, reports to child welfare | the case's, then | then |
| deadlines missed (by cause: a break's first stage), and escalated to the unit leader | the case's, then | then |
| system measures | the unit the measure is about | its proposal's |
| feedback after meetings | the unit that called the meeting | the feedback's |
| steps skipped (by level and step of the case's action guide, "0:share") | the case's, at the decision | the decision's |

Feedback is also given per unit (every month), per meeting type, and for the municipality. The
municipality's totals count the same things for all cases together (escalations and
de-escalations as one number each; concerns per unit and month).
A step is skipped when a decision ends its level without the event the step records
(`stafett_contracts.guides.skipped_before_decision`), in the guide the case follows.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import bisect
import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, get_args, get_type_hints
from zoneinfo import ZoneInfo

import msgspec

from stafett_contracts.case import (
    CaseClosed,
    CaseEvent,
    ConcernRaised,
    DeEscalated,
    Escalated,
    LevelDecided,
)
from stafett_contracts.casefile import CaseFile, evolve
from stafett_contracts.guides import case_guide, skipped_before_decision
from stafett_contracts.notify import FollowUpBreakDetected
from stafett_contracts.people import Directory
from stafett_projection.models import decode
from stafett_projection.store import Tx
from stafett_projection.views import guide_book

LEVELS = range(4)
UPWARDS = tuple(f"{a}-{b}" for a in LEVELS for b in LEVELS if a < b)
DOWNWARDS = tuple(f"{a}-{b}" for a in LEVELS for b in LEVELS if a > b)
BREAK_CAUSES: tuple[str, ...] = get_args(get_type_hints(FollowUpBreakDetected)["cause"])
_decode = msgspec.json.Decoder(dict[str, Any]).decode
_TICK = timedelta(microseconds=1)  # the last moment of a month is a tick before the next


class Feedback(msgspec.Struct, frozen=True, kw_only=True):
    """Guardians' and children's feedback after meetings: how many, and the means (1-5)."""

    count: int | None
    mean_rating: float | None
    mean_heard: float | None


class MunicipalFigures(msgspec.Struct, frozen=True, kw_only=True):
    """The municipality's figures, all cases together."""

    min_group: int
    concerns_per_unit_and_month: dict[str, dict[str, int | None]]
    closed_cases: int | None
    share_resolved_at_levels_0_1: float | None
    days_from_concern_to_first_measure: float | None
    days_from_concern_to_level_0_decision: float | None
    days_at_each_level: dict[str, float | None]
    escalations: int | None
    de_escalations: int | None
    follow_up_breaks: dict[str, int | None]
    # The deadlines missed (a break's first stage), by cause, and those escalated to the unit
    # leader, as `UnitMonth` counts them per unit and month.
    deadlines_missed: dict[str, int | None]
    deadlines_escalated: int | None
    consent_withdrawals: int | None
    system_measures: int | None
    child_welfare_reports: int | None
    feedback: Feedback


class UnitMonth(msgspec.Struct, frozen=True, kw_only=True):
    """One unit's figures for one month."""

    unit: str
    month: str  # YYYY-MM
    concerns: int | None
    escalations: dict[str, int | None]  # by level pair: "0-1"
    de_escalations: dict[str, int | None]  # "1-0"
    cases_per_level_at_month_end: dict[str, int | None]
    days_from_concern_to_first_measure: float | None
    days_from_concern_to_level_0_decision: float | None
    days_at_each_level: dict[str, float | None]
    follow_up_breaks: dict[str, int | None]  # by cause
    # The municipality's deadlines missed (a break's first stage), by cause, and how many of
    # them still were not acted on when the unit leader was told.
    deadlines_missed: dict[str, int | None]
    deadlines_escalated: int | None
    consent_withdrawals: int | None
    child_welfare_reports: int | None
    system_measures: int | None
    feedback: Feedback
    steps_skipped: dict[str, int | None] = {}  # by level and step of the guide: "0:share"


class UnitMonthFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Figures per unit and month, and feedback per unit, per meeting type and in all."""

    min_group: int
    time_zone: str
    months: list[UnitMonth]
    feedback_by_unit: dict[str, Feedback]
    feedback_by_meeting_type: dict[str, Feedback]
    feedback: Feedback


class _Small:
    """Suppression of small groups."""

    def __init__(self, min_group: int) -> None:
        self.min_group = min_group

    def count(self, n: int) -> int | None:
        return n if n == 0 or n >= self.min_group else None

    def mean(self, values: list[float]) -> float | None:
        if len(values) < self.min_group:
            return None
        return round(sum(values) / len(values), 2)

    def feedback(self, scores: list[tuple[int, int]]) -> Feedback:
        return Feedback(
            count=self.count(len(scores)),
            mean_rating=self.mean([float(r) for r, _ in scores]),
            mean_heard=self.mean([float(h) for _, h in scores]),
        )


def municipal(tx: Tx, now: datetime, zone: ZoneInfo, min_group: int = 1) -> MunicipalFigures:
    """The municipality's figures (concerns also per unit and month)."""
    small = _Small(min_group)
    per_unit_month: dict[str, Counter[str]] = defaultdict(Counter)
    for unit, raised_at in tx.all("SELECT raised_unit, raised_at FROM cases"):
        per_unit_month[unit][_month(_at(raised_at), zone)] += 1
    closed = tx.all("SELECT closed_level FROM cases WHERE status = 'closed'")
    low = sum(1 for (level,) in closed if level is not None and level <= 1)
    to_measure = [
        _days(_at(r), _at(m))
        for r, m in tx.all(
            "SELECT raised_at, first_measure_at FROM cases WHERE first_measure_at IS NOT NULL"
        )
    ]
    to_decision = [
        _days(_at(r), _at(d))
        for r, d in tx.all(
            "SELECT raised_at, level0_decided_at FROM cases WHERE level0_decided_at IS NOT NULL"
        )
    ]
    at_level: dict[int, list[float]] = defaultdict(list)
    for level, since, until in tx.all("SELECT level, since, until FROM levels"):
        at_level[level].append(_days(_at(since), _at(until) if until else now))
    counts = Counter(
        dict(
            tx.all(
                "SELECT type, COUNT(*) FROM entries WHERE type IN ('Escalated', 'DeEscalated',"
                " 'ConsentWithdrawn', 'SystemMeasureProposed', 'ChildWelfareReportFiled')"
                " GROUP BY type"
            )
        )
    )
    breaks: Counter[str] = Counter()
    missed: Counter[str] = Counter()  # a break's first stage: the deadline missed
    escalated = 0  # told to the unit leader
    for cause, stage, n in tx.all("SELECT cause, stage, COUNT(*) FROM breaks GROUP BY 1, 2"):
        breaks[cause] += n
        if stage == "baton_holder":
            missed[cause] += n
        else:
            escalated += n
    return MunicipalFigures(
        min_group=min_group,
        concerns_per_unit_and_month={
            unit: {month: small.count(n) for month, n in sorted(months.items())}
            for unit, months in sorted(per_unit_month.items())
        },
        closed_cases=small.count(len(closed)),
        share_resolved_at_levels_0_1=(
            round(low / len(closed), 3) if closed and len(closed) >= min_group else None
        ),
        days_from_concern_to_first_measure=small.mean(to_measure),
        days_from_concern_to_level_0_decision=small.mean(to_decision),
        days_at_each_level={str(k): small.mean(v) for k, v in sorted(at_level.items())},
        escalations=small.count(counts["Escalated"]),
        de_escalations=small.count(counts["DeEscalated"]),
        follow_up_breaks={cause: small.count(n) for cause, n in breaks.items()},
        deadlines_missed={cause: small.count(missed[cause]) for cause in BREAK_CAUSES},
        deadlines_escalated=small.count(escalated),
        consent_withdrawals=small.count(counts["ConsentWithdrawn"]),
        system_measures=small.count(counts["SystemMeasureProposed"]),
        child_welfare_reports=small.count(counts["ChildWelfareReportFiled"]),
        feedback=small.feedback([(r, h) for r, h in tx.all("SELECT rating, heard FROM feedback")]),
    )


class _Owners:
    """Which unit owned each case when."""

    def __init__(self, rows: Iterable[tuple[str, str, str]]) -> None:
        self._since: dict[str, list[datetime]] = defaultdict(list)
        self._unit: dict[str, list[str]] = defaultdict(list)
        for case_id, since, unit in rows:  # ordered by case, then time
            self._since[case_id].append(_at(since))
            self._unit[case_id].append(unit)

    def at(self, case_id: str, moment: datetime) -> str | None:
        sinces = self._since.get(case_id)
        if not sinces:
            return None
        index = bisect.bisect_right(sinces, moment) - 1
        return self._unit[case_id][max(index, 0)]


class _Tally:
    """What is counted and measured for one unit in one month."""

    def __init__(self) -> None:
        self.concerns = 0
        self.moves: Counter[str] = Counter()
        self.at_month_end: Counter[int] = Counter()
        self.to_first_measure: list[float] = []
        self.to_level_0_decision: list[float] = []
        self.at_level: dict[int, list[float]] = defaultdict(list)
        self.breaks: Counter[str] = Counter()
        self.missed: Counter[str] = Counter()
        self.escalated = 0
        self.withdrawals = 0
        self.reports = 0
        self.system_measures = 0
        self.feedback: list[tuple[int, int]] = []
        self.skipped: Counter[str] = Counter()

    def figures(self, unit: str, month: str, small: _Small) -> UnitMonth:
        return UnitMonth(
            unit=unit,
            month=month,
            concerns=small.count(self.concerns),
            escalations={pair: small.count(self.moves[pair]) for pair in UPWARDS},
            de_escalations={pair: small.count(self.moves[pair]) for pair in DOWNWARDS},
            cases_per_level_at_month_end={
                str(level): small.count(self.at_month_end[level]) for level in LEVELS
            },
            days_from_concern_to_first_measure=small.mean(self.to_first_measure),
            days_from_concern_to_level_0_decision=small.mean(self.to_level_0_decision),
            days_at_each_level={str(level): small.mean(self.at_level[level]) for level in LEVELS},
            follow_up_breaks={cause: small.count(self.breaks[cause]) for cause in BREAK_CAUSES},
            deadlines_missed={cause: small.count(self.missed[cause]) for cause in BREAK_CAUSES},
            deadlines_escalated=small.count(self.escalated),
            consent_withdrawals=small.count(self.withdrawals),
            child_welfare_reports=small.count(self.reports),
            system_measures=small.count(self.system_measures),
            feedback=small.feedback(self.feedback),
            steps_skipped={step: small.count(n) for step, n in sorted(self.skipped.items())},
        )


_DECISIONS = (LevelDecided, Escalated, DeEscalated, CaseClosed)


def _skipped_steps(tx: Tx, directory: Directory) -> Iterable[tuple[str, datetime, str]]:
    """Each step skipped at a decision: the case, the decision's moment, "level:step"."""
    book = guide_book(tx)
    rows = tx.all(
        "SELECT case_id, body FROM entries WHERE stream = 'CASE' AND case_id IN ("
        " SELECT case_id FROM entries WHERE stream = 'CASE'"
        " AND type IN ('LevelDecided', 'Escalated', 'DeEscalated', 'CaseClosed'))"
        " ORDER BY case_id, seq"
    )
    state: CaseFile | None = None
    for case_id, body in rows:
        event = decode("CASE", body)
        if not isinstance(event, CaseEvent):
            continue
        if isinstance(event, ConcernRaised):
            state = None
        if state is not None and isinstance(event, _DECISIONS):
            followed = case_guide(state, directory, book)
            for step in skipped_before_decision(followed[0], state) if followed else ():
                yield case_id, event.occurred_at, f"{state.level}:{step}"
        state = evolve(state, event)


def per_unit_and_month(
    tx: Tx,
    now: datetime,
    zone: ZoneInfo,
    min_group: int = 1,
    directory: Directory | None = None,
) -> UnitMonthFigures:
    """Each unit's figures for each month from its first concern (or first case) to now."""
    small = _Small(min_group)
    owners = _Owners(tx.all("SELECT case_id, since, unit FROM owners ORDER BY case_id, since"))
    tallies: dict[tuple[str, str], _Tally] = defaultdict(_Tally)

    def tally(unit: str | None, moment: datetime) -> _Tally | None:
        return None if unit is None else tallies[(unit, _month(moment, zone))]

    for _case_id, unit, raised, first_measure, decided in tx.all(
        "SELECT case_id, raised_unit, raised_at, first_measure_at, level0_decided_at FROM cases"
    ):
        raised_at = _at(raised)
        concern = tallies[(unit, _month(raised_at, zone))]
        concern.concerns += 1
        if first_measure is not None:
            concern.to_first_measure.append(_days(raised_at, _at(first_measure)))
        if decided is not None:
            concern.to_level_0_decision.append(_days(raised_at, _at(decided)))
    this_month = _month(now, zone)
    for case_id, since, until, level, from_level in tx.all(
        "SELECT case_id, since, until, level, from_level FROM levels"
    ):
        began = _at(since)
        ended = None if until is None else _at(until)
        if from_level is not None and (moved := tally(owners.at(case_id, began), began)):
            moved.moves[f"{from_level}-{level}"] += 1
        if ended is not None and (stayed := tally(owners.at(case_id, ended), ended)):
            stayed.at_level[level].append(_days(began, ended))
        for month, end in _month_ends(began, ended or now, zone):
            # At the month's last moment (this month's: now), was the case at this level?
            if month == this_month:
                held = began <= now and (ended is None or ended > now)
            else:
                held = began < end and (ended is None or ended >= end)
            owner = owners.at(case_id, min(end - _TICK, now)) if held else None
            if owner is not None:
                tallies[(owner, month)].at_month_end[level] += 1
    for case_id, detected, cause, stage in tx.all(
        "SELECT case_id, detected_at, cause, stage FROM breaks"
    ):
        if found := tally(owners.at(case_id, _at(detected)), _at(detected)):
            found.breaks[cause] += 1
            if stage == "baton_holder":
                found.missed[cause] += 1
            else:
                found.escalated += 1
    for case_id, kind, occurred, body in tx.all(
        "SELECT case_id, type, occurred_at, body FROM entries WHERE type IN"
        " ('ConsentWithdrawn', 'ChildWelfareReportFiled', 'SystemMeasureProposed')"
    ):
        at = _at(occurred)
        if kind == "SystemMeasureProposed":
            if found := tally(_decode(body).get("unit"), at):
                found.system_measures += 1
        elif found := tally(owners.at(case_id, at), at):
            if kind == "ConsentWithdrawn":
                found.withdrawals += 1
            else:
                found.reports += 1
    for case_id, decided_at, step in _skipped_steps(tx, directory or Directory()):
        if found := tally(owners.at(case_id, decided_at), decided_at):
            found.skipped[step] += 1
    by_unit: dict[str, list[tuple[int, int]]] = defaultdict(list)
    by_type: dict[str, list[tuple[int, int]]] = defaultdict(list)
    everyone: list[tuple[int, int]] = []
    for given, rating, heard, unit, meeting_type in tx.all(
        "SELECT f.given_at, f.rating, f.heard, m.leader_service, m.meeting_type FROM feedback f"
        " LEFT JOIN meetings m ON m.meeting_id = f.meeting_id"
    ):
        score = (rating, heard)
        everyone.append(score)
        if unit is not None and (found := tally(unit, _at(given))):
            found.feedback.append(score)
            by_unit[unit].append(score)
        if meeting_type is not None:
            by_type[meeting_type].append(score)
    first_month: dict[str, str] = {}
    for unit, month in tallies:
        first_month[unit] = min(month, first_month.get(unit, month))
    for unit, month in first_month.items():  # every month since, the quiet ones too
        for later in _months_between(month, this_month):
            tallies.setdefault((unit, later), _Tally())
    return UnitMonthFigures(
        min_group=min_group,
        time_zone=zone.key,
        months=[
            tallies[key].figures(key[0], key[1], small)
            for key in sorted(tallies)
            if key[1] <= this_month
        ],
        feedback_by_unit={unit: small.feedback(s) for unit, s in sorted(by_unit.items())},
        feedback_by_meeting_type={t: small.feedback(s) for t, s in sorted(by_type.items())},
        feedback=small.feedback(everyone),
    )


CSV_COLUMNS = (
    "unit",
    "month",
    "concerns",
    *(f"escalations_{p.replace('-', '_')}" for p in UPWARDS),
    *(f"de_escalations_{p.replace('-', '_')}" for p in DOWNWARDS),
    *(f"cases_at_level_{level}_at_month_end" for level in LEVELS),
    "days_from_concern_to_first_measure",
    "days_from_concern_to_level_0_decision",
    *(f"days_at_level_{level}" for level in LEVELS),
    *(f"follow_up_breaks_{cause}" for cause in BREAK_CAUSES),
    *(f"deadlines_missed_{cause}" for cause in BREAK_CAUSES),
    "deadlines_escalated",
    "consent_withdrawals",
    "child_welfare_reports",
    "system_measures",
    "feedback_count",
    "feedback_mean_rating",
    "feedback_mean_heard",
    "steps_skipped",  # "0:share=3 1:evaluate=" (a count withheld is empty)
)


def as_csv(figures: UnitMonthFigures) -> str:
    """The figures per unit and month as CSV, one row each; a figure withheld is empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in figures.months:
        writer.writerow(
            [
                "" if value is None else value
                for value in (
                    row.unit,
                    row.month,
                    row.concerns,
                    *(row.escalations[p] for p in UPWARDS),
                    *(row.de_escalations[p] for p in DOWNWARDS),
                    *(row.cases_per_level_at_month_end[str(level)] for level in LEVELS),
                    row.days_from_concern_to_first_measure,
                    row.days_from_concern_to_level_0_decision,
                    *(row.days_at_each_level[str(level)] for level in LEVELS),
                    *(row.follow_up_breaks[cause] for cause in BREAK_CAUSES),
                    *(row.deadlines_missed[cause] for cause in BREAK_CAUSES),
                    row.deadlines_escalated,
                    row.consent_withdrawals,
                    row.child_welfare_reports,
                    row.system_measures,
                    row.feedback.count,
                    row.feedback.mean_rating,
                    row.feedback.mean_heard,
                    " ".join(
                        f"{step}={'' if n is None else n}" for step, n in row.steps_skipped.items()
                    ),
                )
            ]
        )
    return out.getvalue()


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _days(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 86400


def _month(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m")


def _next(month: str) -> str:
    year, number = int(month[:4]), int(month[5:])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def _months_between(first: str, last: str) -> Iterable[str]:
    month = first
    while month <= last:
        yield month
        month = _next(month)


def _month_ends(start: datetime, end: datetime, zone: ZoneInfo) -> Iterable[tuple[str, datetime]]:
    """Each month from `start`'s to `end`'s, with the moment it ends (the next one begins)."""
    for month in _months_between(_month(start, zone), _month(end, zone)):
        following = _next(month)
        begins = datetime(int(following[:4]), int(following[5:]), 1, tzinfo=zone)
        yield month, begins.astimezone(UTC)
