"""Server-side sessions: the browser holds only a random id; what it stands for stays here.

The cookie is HttpOnly (no script reads it), SameSite=Lax (another site's form does not carry
it), Secure when the public URL is https, and lives eight hours. Signing in gives the session a
new id, so an id planted in a browser before (session fixation) is worth nothing after. Sessions
are kept in a folder (`STAFETT_WEB_SESSION_STORE`), so a restarted web app keeps everyone
signed in, or in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from litestar.types import Empty, Message, ScopeSession
from litestar.utils.dataclass import extract_dataclass_items

from stafett_runtime.periodic import Periodic
from stafett_web.settings import MEMORY, WebSettings

COOKIE = "stafett_session"
LASTS = 8 * 3600  # seconds a session lives without a new sign-in
STORE = "sessions"
NEW_ID = "_new_session_id"  # set in a session to give it a new id when the answer is sent


class _RenewableSessions(ServerSideSessionBackend):
    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        earlier = connection.cookies.get(self.config.key)
        if scope_session == {} and not earlier:
            return  # a visitor with nothing to keep gets no session (and no cookie)
        if not (isinstance(scope_session, dict) and scope_session.pop(NEW_ID, False)):
            await super().store_in_message(scope_session or Empty, message, connection)
            return
        store = self.config.get_store_from_app(connection.scope["app"])
        if earlier:
            await self.delete(earlier, store=store)
        session_id = self.generate_session_id()
        await self.set(
            session_id, self.serialize_data(scope_session, connection.scope), store=store
        )
        cookie = dict(
            extract_dataclass_items(self.config, exclude_none=True, include=Cookie.__dict__.keys())
        )
        MutableScopeHeaders.from_message(message).add(
            "Set-Cookie",
            Cookie(value=session_id, key=self.config.key, **cookie).to_header(header=""),
        )


class SessionConfig(ServerSideSessionConfig):
    _backend_class = _RenewableSessions


def session_config(settings: WebSettings) -> SessionConfig:
    return SessionConfig(
        key=COOKIE,
        store=STORE,
        max_age=LASTS,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
        exclude=["^/static/", "^/health/"],
    )


def session_store(settings: WebSettings) -> Store:
    if settings.session_store == MEMORY:
        return MemoryStore()
    folder = Path(settings.session_store)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)  # sessions hold access tokens
    return FileStore(folder, create_directories=True)  # made again if someone removes it


class ForgetEndedSessions(Periodic):
    """Deletes the sessions that have ended, so the folder does not grow without end."""

    name = "forget-ended-sessions"

    def __init__(self, store: Store, interval: float = 3600.0) -> None:
        super().__init__(interval)
        self._store = store

    async def round(self) -> None:
        if isinstance(self._store, FileStore | MemoryStore):
            await self._store.delete_expired()
