"""The development outbox keeps each message readable by its owner only.

Given the outbox of `stafett up`, when the notify service sends it a message, then the message
is kept as an .eml file with mode 0600, in a folder with mode 0700: the messages name people
and link to children's cases.
"""

from __future__ import annotations

import smtplib
import stat
import time
from email.message import EmailMessage
from pathlib import Path

from stafett_cli.outbox import Outbox


def test_a_message_in_the_development_outbox_is_readable_by_its_owner_only(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "mail")
    outbox.start()
    try:
        message = EmailMessage()
        message["From"] = "stafett@example.org"
        message["To"] = "mor-1@example.org"
        message["Subject"] = "Nytt i saken S-1"
        message.set_content("Se saken: https://stafett.example/cases/1")
        with smtplib.SMTP(outbox.host, outbox.port) as smtp:
            smtp.send_message(message)
        deadline = time.monotonic() + 10
        while not (kept := list(outbox.folder.glob("*.eml"))):
            assert time.monotonic() < deadline, "the message was not kept"
            time.sleep(0.02)
    finally:
        outbox.stop()
    (mail,) = kept
    assert stat.S_IMODE(mail.stat().st_mode) == 0o600
    assert stat.S_IMODE(outbox.folder.stat().st_mode) == 0o700
    assert b"Nytt i saken S-1" in mail.read_bytes()
