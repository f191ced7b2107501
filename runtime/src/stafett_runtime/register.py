"""The population register: who a child is, their birth date, and who their guardians are.

Stafett never takes these from a request. Every service asks the `Register` port, with the case's
own child id or the verified person of a token. The port blocks (it may ask over the network):
call it from a worker thread, as the application is called (`await call(register.child, id)`).

- `child(child_id)`: the register's record of a child, by their pseudonymous child id;
- `by_national_id(national_id)`: the same, by national id (a concern names the child so);
- `children_of(person)`: the children a person has parental responsibility for, and the child
  who is that person (a guardian finds their children's cases; a child, their own).

Two adapters:

- `FileRegister`, for development and tests: a JSON or TOML file (`{"children": [...]}`, each a
  `stafett_contracts.people.RegisteredChild`), read again whenever it changes. `stafett up`
  keeps it at `<data>/register.json`, and the demo fills it.
- `HttpRegister`, for production: the municipality's register gateway, which speaks to the
  national register (Folkeregisteret in Norway, through the municipality's integration platform
  with Maskinporten; CPR in Denmark) and keeps the pseudonyms. Its interface, JSON over HTTPS
  with a bearer token:

  | request | answer |
  |---|---|
  | GET {base}/children/{child_id} | 200 with a RegisteredChild, or 404 |
  | GET {base}/children?national_id={id} | 200 with a list of 0 or 1 RegisteredChild |
  | GET {base}/people/{person}/children | 200 with a list of RegisteredChild |

  Answers are cached for `STAFETT_REGISTER_CACHE_SECONDS` (default 60): a change of custody
  reaches Stafett within that time.

| variable | meaning |
|---|---|
| STAFETT_REGISTER_URL | the gateway's base URL (production) |
| STAFETT_REGISTER_TOKEN | the bearer token for the gateway |
| STAFETT_REGISTER_FILE | the development file, default `$STAFETT_DATA_DIR/register.json` |
"""

from __future__ import annotations

import os
import tempfile
import threading
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import httpx
import msgspec
from cachetools import TTLCache

from stafett_contracts.people import RegisteredChild
from stafett_runtime.settings import SettingsError

FILE_NAME = "register.json"


class RegisterUnavailableError(RuntimeError):
    """The register did not answer: nothing can be decided that needs it (503)."""


class Register(Protocol):
    def child(self, child_id: UUID) -> RegisteredChild | None: ...
    def by_national_id(self, national_id: str) -> RegisteredChild | None: ...
    def children_of(self, person: str) -> list[RegisteredChild]: ...


class RegisterFile(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    children: list[RegisteredChild] = []


class FileRegister:
    """The register as a file, read again when it changes (development and tests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._children: dict[UUID, RegisteredChild] = {}

    def child(self, child_id: UUID) -> RegisteredChild | None:
        return self._current().get(child_id)

    def by_national_id(self, national_id: str) -> RegisteredChild | None:
        wanted = _digits(national_id)
        return next((c for c in self._current().values() if _digits(c.national_id) == wanted), None)

    def children_of(self, person: str) -> list[RegisteredChild]:
        return [
            c for c in self._current().values() if c.is_guardian(person) or c.is_the_child(person)
        ]

    def add(self, *children: RegisteredChild) -> None:
        """Write children into the file (replacing any with the same child id); only readable
        by its owner, as it names children."""
        with self._lock:
            known = dict(self._read())
            known.update({c.child_id: c for c in children})
            data = msgspec.json.format(
                msgspec.json.encode(RegisterFile(children=list(known.values()))), indent=2
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".register-")
            with os.fdopen(descriptor, "wb") as file:  # mkstemp makes it 0600
                file.write(data + b"\n")
            os.replace(temporary, self.path)
            self._seen = None

    def _current(self) -> dict[UUID, RegisteredChild]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                return {}
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen != self._seen:
                self._children = self._read()
                self._seen = seen
            return self._children

    def _read(self) -> dict[UUID, RegisteredChild]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            data = tomllib.loads(raw.decode()) if self.path.suffix == ".toml" else raw
            parsed = (
                msgspec.json.decode(data, type=RegisterFile)
                if isinstance(data, bytes)
                else msgspec.convert(data, RegisterFile)
            )
        except (ValueError, msgspec.ValidationError) as error:
            raise SettingsError(f"the register file {self.path} is not valid: {error}") from None
        return {c.child_id: c for c in parsed.children}


class HttpRegister:
    """The municipality's register gateway (see the module's table), with a short cache."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        cache_seconds: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=5.0, transport=transport
        )
        self._cache: TTLCache[str, object] = TTLCache(maxsize=10_000, ttl=cache_seconds)

    def child(self, child_id: UUID) -> RegisteredChild | None:
        key = f"child {child_id}"
        if key not in self._cache:
            raw = self._fetch(f"/children/{child_id}", {}, missing_ok=True)
            self._cache[key] = None if raw is None else _decode(raw, RegisteredChild)
        found = self._cache[key]
        return found if isinstance(found, RegisteredChild) else None

    def by_national_id(self, national_id: str) -> RegisteredChild | None:
        found = self._list("/children", {"national_id": national_id})
        return found[0] if found else None

    def children_of(self, person: str) -> list[RegisteredChild]:
        return self._list(f"/people/{_path_segment(person)}/children", {})

    def close(self) -> None:
        self._http.close()

    def _list(self, path: str, params: Mapping[str, str]) -> list[RegisteredChild]:
        key = f"{path}?{sorted(params.items())}"
        if key not in self._cache:
            raw = self._fetch(path, params)
            self._cache[key] = _decode(raw or b"[]", list[RegisteredChild])
        found = self._cache[key]
        return list(found) if isinstance(found, list) else []

    def _fetch(
        self, path: str, params: Mapping[str, str], missing_ok: bool = False
    ) -> bytes | None:
        try:
            answer = self._http.get(path, params=params)
        except httpx.HTTPError as error:
            raise RegisterUnavailableError(f"the register did not answer: {error}") from None
        if answer.status_code == 404 and missing_ok:
            return None
        if answer.status_code != 200:
            raise RegisterUnavailableError(f"the register answered {answer.status_code}")
        return answer.content


def _decode(raw: bytes, shape: Any) -> object:
    try:
        found: object = msgspec.json.decode(raw, type=shape)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise RegisterUnavailableError(f"the register's answer is not valid: {error}") from None
    return found


def register_from_env(environ: Mapping[str, str] = os.environ) -> Register:
    """The gateway when STAFETT_REGISTER_URL is set; otherwise the development file."""

    def read(name: str) -> str | None:
        return environ.get(name) or None

    url = read("STAFETT_REGISTER_URL")
    if url is not None:
        if not url.startswith(("https://", "http://")):
            raise SettingsError(f"STAFETT_REGISTER_URL={url!r}: expected an http(s) URL")
        seconds = read("STAFETT_REGISTER_CACHE_SECONDS") or "60"
        try:
            cache = float(seconds)
        except ValueError:
            raise SettingsError(
                f"STAFETT_REGISTER_CACHE_SECONDS={seconds!r}: expected seconds"
            ) from None
        return HttpRegister(url, read("STAFETT_REGISTER_TOKEN"), cache)
    data_dir = Path(read("STAFETT_DATA_DIR") or "var")
    return FileRegister(Path(read("STAFETT_REGISTER_FILE") or data_dir / FILE_NAME).resolve())


def _digits(national_id: str) -> str:
    return national_id.replace("-", "")


def _path_segment(text: str) -> str:
    return httpx.URL(path=text).raw_path.decode().replace("/", "%2F")
