"""The contracts are the wire format: it changes only on purpose, and never carries a name."""

from __future__ import annotations

import inspect
from pathlib import Path

import msgspec
import msgspec.inspect as mi
import pytest

from stafett_contracts import export
from stafett_contracts.catalogue import (
    AUDIT_EVENTS,
    CASE_EVENTS,
    CONSENT_EVENTS,
    EVENTS,
    MEETING_EVENTS,
    NOTIFY_EVENTS,
)
from stafett_contracts.envelope import Event, private_fields, topic_of, type_name
from stafett_contracts.personal import PersonalData

CONTRACTS = Path(export.__file__).resolve().parents[2]
ALL = sorted(EVENTS.values(), key=topic_of)


def test_the_catalogue_names_every_event_of_case_and_consent() -> None:
    assert {type_name(c) for c in CASE_EVENTS} >= {
        "ConcernRaised",
        "Escalated",
        "CoordinatorAssigned",
        "BatonHandedOver",
        "ChildWelfareReportFiled",
        "CaseClosed",
        "CaseReopened",
    }
    assert {type_name(c) for c in CONSENT_EVENTS} == {
        "ConsentGiven",
        "ConsentScopeChanged",
        "ConsentWithdrawn",
        "ConsentExpired",
        "LegalBasisRecorded",
    }
    assert topic_of(EVENTS["case.ConcernRaised@1"]) == "case.ConcernRaised@1"


def test_the_catalogue_names_every_event_of_meeting_notify_and_audit() -> None:
    assert {type_name(c) for c in MEETING_EVENTS} == {
        "MeetingScheduled",
        "ParticipantInvited",
        "MeetingRescheduled",
        "MeetingCancelled",
        "MeetingHeld",
        "MinutesRecorded",
        "DecisionRecorded",
        "ActionItemAssigned",
        "ActionItemCompleted",
        "FeedbackGiven",
        "CaseRosterNoted",
    }
    assert {type_name(c) for c in NOTIFY_EVENTS} == {
        "NotificationRequested",
        "NotificationSent",
        "NotificationFailed",
        "ReminderScheduled",
        "FollowUpBreakDetected",
        "CalendarInvitationPrepared",
        "DeliveryAttempted",
        "DeliveryAttemptFailed",
    }
    assert {type_name(c) for c in AUDIT_EVENTS} == {
        "CaseAccessed",
        "ArchiveDelivered",
        "ArchiveDeliveryFailed",
    }


def test_the_committed_schemas_are_those_of_the_code() -> None:
    assert export.main(["--check", "--dir", str(CONTRACTS)]) == 0, (
        "schemas are out of date: run python -m stafett_contracts.export"
    )


@pytest.mark.parametrize("cls", ALL, ids=topic_of)
def test_a_golden_file_decodes_and_encodes_again_as_it_was(cls: type[Event]) -> None:
    """Evolution adds fields with defaults, and nothing else (ARCHITECTURE.md section 3): an old
    event encodes again to exactly its old JSON, in its old order, plus only the fields added
    since it was written, at their defaults."""
    golden = (CONTRACTS / "golden" / export.file_name(cls)).read_bytes()
    event = msgspec.json.decode(golden, type=cls)
    again = msgspec.json.decode(msgspec.json.encode(event))
    old = msgspec.json.decode(golden)
    assert list(again)[: len(old)] == list(old)
    assert {k: again[k] for k in old} == old
    defaults = {f.name: f.default for f in msgspec.structs.fields(cls)}
    added = {k: v for k, v in again.items() if k not in old}
    assert all(k in defaults and defaults[k] == v for k, v in added.items()), added


@pytest.mark.parametrize("cls", ALL, ids=topic_of)
def test_every_event_is_frozen_keyword_only_and_typed_by_name(cls: type[Event]) -> None:
    config = cls.__struct_config__
    assert config.frozen
    assert config.tag_field == "type"
    assert config.tag == cls.__name__
    parameters = inspect.signature(cls).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    wire = msgspec.json.decode(msgspec.json.encode(export.example_of(cls)))
    assert list(wire)[:2] == ["type", "schema_version"]


def reachable_types(t: mi.Type, seen: set[type] | None = None) -> set[type]:
    seen = set() if seen is None else seen
    match t:
        case mi.StructType() if t.cls not in seen:
            seen.add(t.cls)
            for field in t.fields:
                reachable_types(field.type, seen)
        case mi.Metadata():
            reachable_types(t.type, seen)
        case mi.UnionType():
            for member in t.types:
                reachable_types(member, seen)
        case mi.VarTupleType() | mi.ListType():
            reachable_types(t.item_type, seen)
    return seen


@pytest.mark.parametrize("cls", ALL, ids=topic_of)
def test_no_event_can_carry_a_childs_identifying_data_in_clear(cls: type[Event]) -> None:
    # DOMAIN.md rule 8: only the sealed form may stand in an event.
    reachable = reachable_types(mi.type_info(cls))
    assert PersonalData not in reachable
    names = {f.name for s in reachable for f in msgspec.structs.fields(s)}
    assert not names & {"name", "birth_date", "national_id", "fodselsnummer", "address"}


# Fields that hold prose by their name. Each is sealed under the child's key (`PrivateText`,
# "x-sealed" in the schema), unless it is a fixed word (a Literal or an enum) or one of these:
PROSE = {
    *("concern", "description", "summary", "view", "note", "notes", "reason", "minutes"),
    *("agenda", "comment", "purpose", "grounds", "justification", "task", "child_view"),
}
NOT_ABOUT_THE_CHILD = {
    ("DecisionRefused", "reason"),  # the case service's own refusal, naming the rule it broke
    ("NotificationRequested", "reason"),  # a code: meeting.scheduled, reminder.evaluation, ...
    ("CaseAccessed", "purpose"),  # the reader's stated purpose for the access log (docs/access.md)
}


def _free_strings(t: mi.Type) -> bool:
    match t:
        case mi.StrType():
            return True
        case mi.Metadata():
            return _free_strings(t.type)
        case mi.UnionType():
            return any(_free_strings(member) for member in t.types)
        case mi.VarTupleType() | mi.ListType():
            return _free_strings(t.item_type)
    return False


@pytest.mark.parametrize("cls", ALL, ids=topic_of)
def test_no_event_can_carry_free_text_about_a_child_in_clear(cls: type[Event]) -> None:
    # DOMAIN.md rules 8 and 10: free text about a child is sealed, so erasing the key erases it.
    for struct in reachable_types(mi.type_info(cls)):
        info = mi.type_info(struct)
        assert isinstance(info, mi.StructType)
        sealed = private_fields(struct)
        clear = {
            f.name
            for f in info.fields
            if f.name in PROSE and f.name not in sealed and _free_strings(f.type)
        }
        assert clear <= {field for name, field in NOT_ABOUT_THE_CHILD if name == struct.__name__}
