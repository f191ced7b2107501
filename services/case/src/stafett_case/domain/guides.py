"""Publishing action guides (DOMAIN.md: the administrator configures action guides), pure.

The municipality's guides are one aggregate in the CASE stream, beside the cases: the guide book
(`stafett_contracts.guides.GUIDE_BOOK_ID`), whose one event is `GuidePublished`. Only an
administrator publishes (`administrator-publishes-guides`, asked before anything else). Each
publication is the next version of that service's guide (the guide Stafett ships is version 1);
publishing the guide already in force decides nothing, so a retry changes nothing. Cases keep
the versions they were opened under (`ConcernRaised.guides`): nothing here touches a case.
"""

from __future__ import annotations

import msgspec

from stafett_contracts.envelope import Event
from stafett_contracts.guides import GUIDE_BOOK_ID, Guide, GuideBook, GuidePublished
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import Context, NotAllowed, envelope

ADMINISTRATOR_PUBLISHES = "administrator-publishes-guides"


class PublishGuide(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Publish `guide` as the next version of its service's guide (parsed and checked by
    `stafett_contracts.guides.parse` before it gets here)."""

    guide: Guide


def may_publish(actor: Actor) -> None:
    if actor.role != Role.ADMINISTRATOR:
        raise NotAllowed(
            "only an administrator publishes an action guide", rule=ADMINISTRATOR_PUBLISHES
        )


def refuse_strangers(book: GuideBook | None, command: PublishGuide, context: Context) -> None:
    may_publish(context.actor)


def decide(book: GuideBook | None, command: PublishGuide, context: Context) -> list[Event]:
    refuse_strangers(book, command, context)
    book = book or GuideBook()
    service = command.guide.service
    in_force = book.in_force().get(service, 0)
    if book.guide(service, in_force) == command.guide:
        return []  # already the guide in force: a retry, or nothing new
    return [
        GuidePublished(
            **envelope(context, GUIDE_BOOK_ID, book.version + 1),
            service=service,
            version=in_force + 1,
            guide=command.guide,
        )
    ]
