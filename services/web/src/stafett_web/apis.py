"""The services' HTTP APIs, called as the signed-in person: their access token, their request.

One HTTP client per process. Every call carries the person's bearer token, the request's
correlation id (`X-Correlation-Id`) and its trace context, so one click is one line of work in
every service's log. An answer is decoded into the web app's model of it (`stafett_web.models`);
a refusal becomes an exception that says what the service said:

| the service answers | raised | the page shows |
|---|---|---|
| 401 (the token expired or was refused) | `SignInAgain` | sign-in, then back to the page |
| 403 | `Refused` | the rule's message (for a read: the 403 page) |
| 404 | `NotFound` | the 404 page |
| 400, 422 | `Invalid` | each message next to the field it names |
| 409 | `Conflict` | the rule's message above the form |
| 5xx, no answer, an answer it cannot read | `Unavailable` | try again shortly (503) |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx
import msgspec
import structlog

from stafett_runtime.logging import CORRELATION_HEADER, current_correlation_id
from stafett_runtime.tracing import inject_trace_context
from stafett_web.models import Saved

T = TypeVar("T")
TIMEOUT = httpx.Timeout(15.0, connect=3.0)

log = structlog.get_logger(__name__)


class ServiceError(Exception):
    """A service did not do what was asked; `detail` and `rule` are what it said."""

    def __init__(
        self, service: str, status: int, detail: str, rule: str | None = None, extra: Any = None
    ) -> None:
        super().__init__(detail)
        self.service = service
        self.status = status
        self.detail = detail
        self.rule = rule
        self.extra = extra


class SignInAgain(ServiceError):  # noqa: N818 (named as the service answered)
    pass


class Refused(ServiceError):  # noqa: N818 (named as the service answered)
    pass


class NotFound(ServiceError):  # noqa: N818 (named as the service answered)
    pass


class Invalid(ServiceError):  # noqa: N818 (named as the service answered)
    pass


class Conflict(ServiceError):  # noqa: N818 (named as the service answered)
    pass


class Unavailable(ServiceError):  # noqa: N818 (named as the service answered)
    pass


_BY_STATUS: dict[int, type[ServiceError]] = {
    400: Invalid,
    401: SignInAgain,
    403: Refused,
    404: NotFound,
    409: Conflict,
    413: Invalid,
    422: Invalid,
}


class Services:
    """The consent, case, meeting and projection services, by name."""

    def __init__(self, urls: Mapping[str, str], client: httpx.AsyncClient | None = None) -> None:
        self._urls = dict(urls)
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT)

    async def close(self) -> None:
        await self._client.aclose()

    async def read(
        self,
        service: str,
        path: str,
        token: str,
        into: type[T],
        params: Mapping[str, str | int | None] | None = None,
    ) -> T:
        answer = await self._send("GET", service, path, token, params=params)
        try:
            return msgspec.json.decode(answer.content, type=into)
        except msgspec.DecodeError as error:
            log.error("answer_not_understood", service=service, reason=str(error)[:300])
            raise Unavailable(service, 502, "the service's answer could not be read") from None

    async def download(
        self,
        service: str,
        path: str,
        token: str,
        params: Mapping[str, str | int | None] | None = None,
    ) -> bytes:
        return (await self._send("GET", service, path, token, params=params)).content

    async def command(self, service: str, path: str, token: str, body: Any) -> Saved:
        return await self.post(service, path, token, body, Saved)

    async def post(self, service: str, path: str, token: str, body: Any, into: type[T]) -> T:
        """A command whose answer is not an aggregate's (`Saved`): an erasure's, for one."""
        answer = await self._send("POST", service, path, token, json=body)
        try:
            return msgspec.json.decode(answer.content, type=into)
        except msgspec.DecodeError:
            log.error("answer_not_understood", service=service)
            raise Unavailable(service, 502, "the service's answer could not be read") from None

    async def _send(
        self,
        method: str,
        service: str,
        path: str,
        token: str,
        *,
        params: Mapping[str, str | int | None] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        correlation_id = current_correlation_id()
        if correlation_id:
            headers[CORRELATION_HEADER] = correlation_id
        inject_trace_context(headers)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            answer = await self._client.request(
                method, f"{self._urls[service]}{path}", headers=headers, params=query, json=json
            )
        except httpx.HTTPError as error:
            log.warning("service_unreachable", service=service, reason=type(error).__name__)
            raise Unavailable(service, 503, f"the {service} service does not answer") from None
        if answer.is_success:
            return answer
        raise _error(service, answer)


def _error(service: str, answer: httpx.Response) -> ServiceError:
    detail, rule, extra = f"the {service} service answered {answer.status_code}", None, None
    try:
        said = answer.json()
    except ValueError:
        said = None
    if isinstance(said, dict):
        detail = str(said.get("detail") or detail)
        extra = said.get("extra")
        if isinstance(extra, dict) and isinstance(extra.get("rule"), str):
            rule = extra["rule"]
    kind = _BY_STATUS.get(answer.status_code, Unavailable)
    # Logged without the request's path or body: they may hold ids and typed text.
    log.info("service_refused", service=service, status=answer.status_code, rule=rule)
    return kind(service, answer.status_code, detail, rule, extra)
