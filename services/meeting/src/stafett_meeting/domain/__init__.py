"""The pure meeting domain: commands, the Meeting aggregate and its rules (meeting.py), decided on
the case as its events tell it (`stafett_contracts.casefile`), and the roster a client reads of
that case (roster.py)."""

from stafett_meeting.domain.meeting import Meeting, MeetingContext, as_seen, decide, evolve, fold
from stafett_meeting.domain.roster import Roster, roster_of

__all__ = [
    "Meeting",
    "MeetingContext",
    "Roster",
    "as_seen",
    "decide",
    "evolve",
    "fold",
    "roster_of",
]
