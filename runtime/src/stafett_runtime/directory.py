"""The municipality directory: which units exist, which service each belongs to, who leads each,
and which legal provisions let a kind of service take part in a case without consent.

It is a file the municipality keeps (TOML or JSON; `STAFETT_DIRECTORY_FILE`, by default
`$STAFETT_DATA_DIR/directory.toml`), in the shape of `stafett_contracts.people.Directory`:

    municipality = "Eksempel kommune"

    [units.skole-lia]             # the unit's id: the `service` its people's tokens name
    name = "Lia skole"
    kind = "school"               # kindergarten, school, health_clinic, ppt, child_welfare, ...
    leader = "rektor-lia"         # the leader's person id at the identity provider

    [legal_bases]                 # added to the national provisions (people.DEFAULT_LEGAL_BASES)
    "barnevernsloven § 2-3" = ["child_welfare"]

Every service reads the same file. It is read again when it changes; a change that does not
parse is logged and the last good directory stays in force, so a typo never stops a service.
A directory that does not parse at start-up stops the start, naming the line and the reason.
"""

from __future__ import annotations

import json
import os
import threading
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import msgspec
import structlog

from stafett_contracts.people import Directory
from stafett_runtime.settings import SettingsError

FILE_NAME = "directory.toml"

log = structlog.get_logger(__name__)


class DirectorySource(Protocol):
    def current(self) -> Directory: ...


class FixedDirectory:
    """A directory that never changes (tests, and the OpenAPI document)."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def current(self) -> Directory:
        return self._directory


class DirectoryFile:
    """The directory file, read again when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._directory = parse(path)
        self._seen = _stamp(path)

    def current(self) -> Directory:
        with self._lock:
            seen = _stamp(self.path)
            if seen is not None and seen != self._seen:
                self._seen = seen
                try:
                    self._directory = parse(self.path)
                except SettingsError as error:
                    log.error("directory_not_reloaded", reason=str(error))
            return self._directory


def parse(path: Path) -> Directory:
    """The directory in `path`, or a SettingsError naming the file, the line and the reason."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SettingsError(f"the directory file {path} cannot be read: {error.strerror}") from None
    try:
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
        return msgspec.convert(data, Directory)
    except (ValueError, msgspec.ValidationError) as error:
        raise SettingsError(f"the directory file {path} is not valid: {error}") from None


def directory_from_env(environ: Mapping[str, str] = os.environ) -> DirectoryFile:
    def read(name: str) -> str | None:
        return environ.get(name) or None

    data_dir = Path(read("STAFETT_DATA_DIR") or "var")
    return DirectoryFile(Path(read("STAFETT_DIRECTORY_FILE") or data_dir / FILE_NAME).resolve())


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size
