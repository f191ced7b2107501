"""A meeting as a calendar file (.ics, RFC 5545) that a guardian or a worker downloads.

Its UID is the one the notify service's emailed invitation carries (`<meeting id>@stafett`), and
its SEQUENCE the meeting's version, so a calendar that already holds the invitation updates that
event instead of adding a second. The person downloading it may see the meeting: the place and
the video link are in it, and a link back to the meeting's page. The `icalendar` library writes
it (escaping, line folding, UTC times), as it writes notify's invitations.
"""

from __future__ import annotations

from datetime import datetime

import icalendar

from stafett_web.models import Meeting


def calendar(meeting: Meeting, summary: str, link: str, now: datetime) -> bytes:
    """The meeting as one VEVENT in a VCALENDAR (METHOD:PUBLISH: a copy, not an invitation)."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Stafett//web//EN")
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    event = icalendar.Event()
    event.add("uid", f"{meeting.id}@stafett")
    event.add("sequence", meeting.version)
    event.add("dtstamp", now)
    event.add("dtstart", meeting.starts_at)
    event.add("dtend", meeting.ends_at)
    event.add("summary", summary)
    event.add("location", meeting.place or meeting.video_link or link)
    event.add("description", link)
    event.add("url", meeting.video_link or link)
    event.add("status", "CANCELLED" if meeting.cancelled else "CONFIRMED")
    cal.add_component(event)
    ics: bytes = cal.to_ical()
    return ics
