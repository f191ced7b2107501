"""The development outbox: an SMTP server inside `stafett up` that keeps every message as a file.

The notify service sends real email over SMTP. On a developer's machine there is no mail server,
so `stafett up` runs this one unless STAFETT_NOTIFY_SMTP_HOST or _SMTP_PORT names a real one:
each message lands in `<data>/mail/` as an .eml file that any mail program opens, calendar
invitation included. It accepts mail only on the loopback interface and relays nothing. The
messages name people and link to cases: each file is readable by its owner only (0600), in a
folder of the owner's only (0700) when the outbox makes it.
"""

from __future__ import annotations

import itertools
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from stafett_runtime.natsserver import free_port


class _Keeper:
    """aiosmtpd's handler: write each message it is given to a file of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._numbers = itertools.count(len(list(folder.glob("*.eml"))) + 1)

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        to = re.sub(r"[^A-Za-z0-9@._-]", "_", ",".join(envelope.rcpt_tos))[:80]
        name = f"{stamp}-{next(self._numbers):05d}-{to}.eml"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        with os.fdopen(os.open(self.folder / name, flags, 0o600), "wb") as file:
            file.write(envelope.original_content or b"")
        return "250 kept in the development outbox"


class Outbox:
    def __init__(self, folder: Path, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.host = host
        self.port = 0
        self._controller: Controller | None = None

    def start(self) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.port = free_port()
        self._controller = Controller(_Keeper(self.folder), hostname=self.host, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
