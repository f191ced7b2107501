"""The notify service's watch is caught up without a lock held across a read of the store.

A read of an upstream stream may wait on NATS; another request (a reader of notifications, the
courier's round) catching up meanwhile must not wait behind it, and every event is folded into
the watch once, in order.
"""

from __future__ import annotations

import threading
from collections import Counter
from uuid import UUID, uuid4

import pytest

from stafett_contracts import case as c
from stafett_contracts.envelope import Event
from stafett_notify.domain.facts import Watch
from stafett_notify.testing import (
    LEADER,
    T0,
    TEACHER,
    UNIT,
    Clock,
    Envelopes,
    Mailbox,
    Upstreams,
    make_config,
    notifications,
)
from stafett_runtime.testing import HeldRead, store_read_held


def test_a_catch_up_whose_store_read_waits_holds_up_no_other_and_each_event_is_folded_once(
    env: dict[str, str],
    upstreams: Upstreams,
    envelope: Envelopes,
    smtp: tuple[Mailbox, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a case's events in the CASE stream
    case_id = uuid4()
    upstreams.save(
        c.ConcernRaised(**envelope(case_id, T0), child_id=uuid4(), unit=UNIT, concern="Uro"),
        c.BatonHolderAppointed(**envelope(case_id, T0), holder=TEACHER, service=UNIT),
    )
    app = notifications(env, make_config(smtp[1], (LEADER, TEACHER)), Clock())
    folded: Counter[UUID] = Counter()
    take_in = Watch.take_in

    def counted(watch: Watch, event: Event) -> None:
        folded[event.event_id] += 1
        take_in(watch, event)

    monkeypatch.setattr(Watch, "take_in", counted)
    try:
        with store_read_held(monkeypatch, "CASE") as read:
            # And a catch-up whose read of the CASE stream waits (on a slow server, say)
            first = threading.Thread(target=app.catch_up, name=HeldRead.THREAD)
            first.start()
            assert read.holding.wait(30)
            # When another catches up meanwhile
            other = threading.Thread(target=app.catch_up)
            other.start()
            other.join(timeout=30)
            # Then it is not held up by the first
            assert not other.is_alive(), "the second catch-up waited behind the first one's read"
            # And once the first read returns, what it read (already folded) is not folded again
            read.release.set()
            first.join(timeout=30)
        assert folded == {event.event_id: 1 for event in upstreams.written}
    finally:
        app.close()
