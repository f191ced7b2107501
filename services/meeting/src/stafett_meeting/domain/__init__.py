"""The pure meeting domain: commands, the Meeting aggregate and its rules (meeting.py), and the
roster of a case that the rules consult (roster.py)."""

from stafett_meeting.domain.meeting import Meeting, as_seen, decide, fold
from stafett_meeting.domain.roster import Roster, fold_roster

__all__ = ["Meeting", "Roster", "as_seen", "decide", "fold", "fold_roster"]
