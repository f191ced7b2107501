"""What `stafett status` says is due under DOMAIN.md rule 10: closed cases waiting to be
delivered to the archive (with the attempts that failed, what the archive did the last time, and
when the next attempt is: the projection records each failed attempt on AUDIT as
`ArchiveDeliveryFailed`), and children due for shredding, and when.

Read from the streams with the same ledger the case service's retention timer decides with
(`stafett_contracts.retention`), under the retention of the municipality directory the services
read (STAFETT_DIRECTORY_FILE, or directory.toml in the data folder; the default when there is
none), so what it shows is what the timer will do.
"""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from stafett_cli.streams import TOPIC, Store
from stafett_contracts.envelope import Event
from stafett_contracts.people import Retention
from stafett_contracts.retention import AUDIT_TOPICS, CASE_TOPICS, RetentionLedger
from stafett_runtime.contracts import decode_event
from stafett_runtime.directory import directory_from_env
from stafett_runtime.jetstream.layout import StreamLayout
from stafett_runtime.settings import SettingsError


def ledger(store: Store) -> RetentionLedger:
    """The retention ledger of what the CASE and AUDIT streams hold now."""
    found = RetentionLedger()
    names = {info.config.name for info in store.event_streams()}
    for stream, topics in (("CASE", CASE_TOPICS), ("AUDIT", AUDIT_TOPICS)):
        if stream not in names:
            continue
        layout = StreamLayout(stream, stream.lower())
        for topic in topics:
            for message in store.read(stream, layout.type_filter(topic)):
                event = decode_event(message.headers[TOPIC], message.data)
                if isinstance(event, Event):
                    found.take_in(event)
    return found


def directory_retention() -> tuple[Retention, str]:
    """The municipality's retention, and where it comes from, in words."""
    try:
        directory = directory_from_env()
    except SettingsError as error:
        return Retention(), f"the default ({error})"
    return directory.current().retention, f"the directory {directory.path}"


def print_retention(store: Store, console: Console, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    retention, source = directory_retention()
    found = ledger(store)
    years = retention.closed_case_years
    console.print(
        f"retention: closed cases are kept {years} year{'s' * (years != 1)} ({source})",
        soft_wrap=True,
        highlight=False,
    )

    waiting = found.awaiting_archive()
    table = Table(title="closed cases awaiting archive delivery", title_justify="left")
    for column in ("case", "child", "closed at", "failed attempts", "last error", "next attempt"):
        table.add_column(column, justify="right" if column == "failed attempts" else "left")
    for case in waiting:
        named = "" if case.child_id is None else str(case.child_id)
        table.add_row(
            str(case.case_id),
            named,
            _moment(case.closed_at),
            str(case.attempts_failed),
            case.last_error or "",
            "" if case.next_attempt_at is None else _moment(case.next_attempt_at),
        )
    if waiting:
        console.print(table)
    else:
        console.print("closed cases awaiting archive delivery: none")

    schedule = found.schedule(retention)
    table = Table(title="children due for shredding", title_justify="left")
    for column in ("child", "cases", "due at", "state"):
        table.add_column(column, justify="right" if column == "cases" else "left")
    for child in schedule:
        if child.awaiting_archive:
            state = f"waits for the archive ({len(child.awaiting_archive)} cases)"
        else:
            state = "due now" if child.due(now) else "kept until then"
        table.add_row(str(child.child_id), str(len(child.cases)), _moment(child.due_at), state)
    if schedule:
        console.print(table)
    else:
        console.print("children due for shredding: none")


def _moment(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
