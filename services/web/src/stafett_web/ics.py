"""A meeting as a calendar file (.ics, RFC 5545) that a guardian or a worker downloads.

Its UID is the one the notify service's emailed invitation carries (`<meeting id>@stafett`), and
its SEQUENCE the meeting's version, so a calendar that already holds the invitation updates that
event instead of adding a second. The person downloading it may see the meeting: the place and
the video link are in it, and a link back to the meeting's page.
"""

from __future__ import annotations

from datetime import UTC, datetime

from stafett_web.models import Meeting


def calendar(meeting: Meeting, summary: str, link: str, now: datetime) -> bytes:
    """The meeting as one VEVENT in a VCALENDAR (METHOD:PUBLISH: a copy, not an invitation)."""
    location = meeting.place or meeting.video_link or link
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Stafett//web//EN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{meeting.id}@stafett",
        f"SEQUENCE:{meeting.version}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(meeting.starts_at)}",
        f"DTEND:{_utc(meeting.ends_at)}",
        f"SUMMARY:{_text(summary)}",
        f"LOCATION:{_text(location)}",
        f"DESCRIPTION:{_text(link)}",
        f"URL:{meeting.video_link or link}",
        f"STATUS:{'CANCELLED' if meeting.cancelled else 'CONFIRMED'}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(f"{_fold(line)}\r\n" for line in lines).encode()


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newlines escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next, after a space (RFC 5545 3.1)."""
    data = line.encode()
    if len(data) <= 75:
        return line
    parts, start = [], 0
    while start < len(data):
        end = min(start + (75 if start == 0 else 74), len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:  # never split a character
            end -= 1
        parts.append(data[start:end].decode())
        start = end
    return "\r\n ".join(parts)
