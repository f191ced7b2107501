"""The demo municipality agrees with itself: what its requests assume is what its directory and
register say, so the services (which look those facts up) accept them. The demo's run against
the services is in test_up.py."""

from __future__ import annotations

from datetime import date

from stafett_cli.demo import STEPS, meeting_steps
from stafett_cli.municipality import CHILDREN, DIRECTORY, PEOPLE, registered_children

TODAY = date(2026, 12, 4)


def test_every_unit_is_led_by_a_demo_unit_leader_of_that_unit() -> None:
    for unit_id, unit in DIRECTORY.units.items():
        leader = PEOPLE[unit.leader]
        assert (leader.role, leader.service) == ("unit_leader", unit_id), unit_id


def test_every_demo_person_acts_for_a_unit_in_the_directory_or_for_none() -> None:
    for person in PEOPLE.values():
        assert person.service is None or DIRECTORY.unit(person.service) is not None, person.id


def test_given_the_register_then_jonas_is_15_and_signs_in_himself() -> None:
    jonas = next(c for c in registered_children(TODAY) if c.child_id == CHILDREN["jonas"].child_id)
    assert jonas.age_on(TODAY) == 15
    assert jonas.is_the_child("jonas")
    assert PEOPLE["jonas"].role == "child"


def test_every_child_is_of_the_age_the_demo_says_and_has_a_demo_guardian() -> None:
    for registered in registered_children(TODAY):
        (child,) = [c for c in CHILDREN.values() if c.child_id == registered.child_id]
        assert registered.age_on(TODAY) == child.age, child.key
        for guardian in registered.guardians:
            assert PEOPLE[guardian].role == "guardian", guardian


def test_a_guardian_consents_in_their_own_name_for_their_own_child_and_names_no_child() -> None:
    children = {c.child_id: c for c in registered_children(TODAY)}
    for step in STEPS:
        if step.path != "/consents":
            continue
        given_by = step.body["given_by"]
        assert given_by == {"kind": "guardian", "person": step.actor}
        assert children[CHILDREN[step.case].child_id].is_guardian(step.actor), step.case
        assert "child_id" not in step.body


def test_a_legal_basis_is_recorded_by_the_service_the_provision_empowers() -> None:
    (legal_basis,) = [step for step in STEPS if step.path == "/legal-bases"]
    service = legal_basis.body["service"]
    assert PEOPLE[legal_basis.actor].service == service
    assert DIRECTORY.empowers(legal_basis.body["legal_basis"], service)


def test_every_step_is_taken_by_a_demo_person() -> None:
    for step in [*STEPS, *meeting_steps()]:
        assert step.actor in PEOPLE, step
        assert step.case in CHILDREN, step
