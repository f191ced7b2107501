"""The leader in the loop: the unit leader hears of what the baton holder cannot act on, and the
coordinator of every change in who works on the case (issue 18, item 4). Over a real nats-server
and a real SMTP server; the upstream streams are written by stand-ins, with the contracts' events.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts.identity import Actor, Role
from stafett_notify.testing import (
    CHILD_NAME,
    LEADER,
    T0,
    TEACHER,
    UNIT,
    Clock,
    Envelopes,
    Mailbox,
    Upstreams,
    address,
    assert_no_personal_data,
    make_config,
    notifications,
    run_policies,
)
from stafett_runtime.register import FileRegister

GUARDIAN, PPT_WORKER, COORDINATOR = "mor-1", "ppt-1", "koordinator-1"
PPT_ACTOR = Actor(person=PPT_WORKER, role=Role.EMPLOYEE, service="ppt")
SYSTEM = Actor(person="case", role=Role.SYSTEM, service="case")


def test_a_consent_withdrawn_that_vacates_the_baton_tells_the_unit_leader_and_the_coordinator(
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    mailbox, port = smtp
    config = make_config(port, (LEADER, TEACHER, GUARDIAN, PPT_WORKER, COORDINATOR))
    # Given a case of Lia skole whose baton PPT holds under the guardian's consent, with a
    # coordinator from the health clinic
    case_id, consent_id = uuid4(), uuid4()
    valid_until = T0 + timedelta(days=365)
    given = k.ConsentGiven(
        **envelope(consent_id, T0),
        case_id=case_id,
        child_id=uuid4(),
        given_by=k.Party(kind="guardian", person=GUARDIAN),
        services=("ppt", "helsestasjon"),
        purposes=(k.Purpose.COOPERATION,),
        valid_from=T0,
        valid_until=valid_until,
        evidence=k.Evidence(form="oral", recorded_by=TEACHER),
    )
    upstreams.save(
        c.ConcernRaised(
            **envelope(case_id, T0), child_id=given.child_id, unit=UNIT, concern=f"{CHILD_NAME}"
        ),
        given,
        c.ConsentNoted(
            **envelope(case_id, T0, SYSTEM),
            consent_id=consent_id,
            services=given.services,
            purposes=("cooperation",),
            valid_from=T0,
            valid_until=valid_until,
        ),
        c.CoordinatorAssigned(
            **envelope(case_id, T0), coordinator=COORDINATOR, service="helsestasjon"
        ),
        c.AgencyJoined(**envelope(case_id, T0), service="ppt", basis="consent"),
        c.BatonHolderAppointed(**envelope(case_id, T0), holder=PPT_WORKER, service="ppt"),
    )
    app = notifications(env, config, Clock(T0))
    try:
        run_policies(env, config, register)
        app.deliver()
        mailbox.messages.clear()

        # When the guardian withdraws consent for PPT, and the case lets PPT and its holder go
        later = T0 + timedelta(days=3)
        upstreams.save(
            k.ConsentWithdrawn(
                **envelope(consent_id, later), services=("ppt",), reason="Vi vil ikke mer"
            ),
            c.ConsentLapsed(
                **envelope(case_id, later, SYSTEM),
                consent_id=consent_id,
                services=("ppt",),
                reason="withdrawn",
            ),
            c.AgencyLeft(
                **envelope(case_id, later, SYSTEM), service="ppt", reason="consent_withdrawn"
            ),
            c.BatonVacated(
                **envelope(case_id, later, SYSTEM),
                previous_holder=PPT_WORKER,
                service="ppt",
                reason="consent_withdrawn",
            ),
        )
        run_policies(env, config, register)
        app.deliver()

        # Then Lia skole's leader hears of the withdrawal and of the vacant baton, the
        # coordinator of PPT leaving and of the baton, and nobody hears what was written
        told = sorted(
            f"{m['X-Envelope-To']}: {' '.join(m['Subject'].split(': ', 1)[1].split())}"
            for m in mailbox.messages
        )
        assert told == [
            f"{address(COORDINATOR)}: Who works on a case you coordinate has changed",
            f"{address(COORDINATOR)}: Who works on a case you coordinate has changed",
            f"{address(LEADER)}: A consent was withdrawn in a case in your unit",
            f"{address(LEADER)}: The baton fell vacant in a case in your unit: appoint a new "
            "holder",
        ]
        # (the case's records of the withdrawal give their reason as a fixed word, no free text)
        fixed_words = (c.ConsentLapsed, c.AgencyLeft, c.BatonVacated)
        written = [e for e in upstreams.written if not isinstance(e, fixed_words)]
        assert_no_personal_data(mailbox.messages, written)
    finally:
        app.close()


def test_the_coordinator_is_not_told_of_a_change_they_made_themselves(
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    mailbox, port = smtp
    config = make_config(port, (LEADER, TEACHER, COORDINATOR, PPT_WORKER))
    coordinator = Actor(person=COORDINATOR, role=Role.EMPLOYEE, service=UNIT)
    # Given a case the teacher holds and a colleague coordinates
    case_id = uuid4()
    upstreams.save(
        c.ConcernRaised(**envelope(case_id, T0), child_id=uuid4(), unit=UNIT, concern="Uro"),
        c.BatonHolderAppointed(**envelope(case_id, T0), holder=TEACHER, service=UNIT),
        c.CoordinatorAssigned(**envelope(case_id, T0), coordinator=COORDINATOR, service=UNIT),
    )
    run_policies(env, config, register)
    app = notifications(env, config, Clock(T0))
    try:
        app.deliver()
        mailbox.messages.clear()
        # When the coordinator forms the responsibility group, and the teacher hands the baton
        # to PPT, which accepts
        upstreams.save(
            c.ResponsibilityGroupFormed(
                **envelope(case_id, T0, coordinator),
                members=(c.GroupMember(person=TEACHER, service=UNIT),),
            ),
            c.BatonHandedOver(
                **envelope(case_id, T0, PPT_ACTOR),
                from_person=TEACHER,
                from_service=UNIT,
                to_person=PPT_WORKER,
                to_service="ppt",
            ),
        )
        run_policies(env, config, register)
        app.deliver()
        # Then the coordinator hears of the baton moving only, once
        to_coordinator = [m["Subject"] for m in mailbox.to(address(COORDINATOR))]
        assert len(to_coordinator) == 1
        assert "Who works on a case you coordinate has changed" in to_coordinator[0]
        assert [m["Subject"] for m in mailbox.to(address(TEACHER))] == [
            to_coordinator[0].replace(
                "Who works on a case you coordinate has changed",
                "The baton you offered was accepted",
            )
        ]
    finally:
        app.close()
