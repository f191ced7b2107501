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

    [retention]                   # how long closed cases are kept (DOMAIN.md rule 10)
    closed_case_years = 5         # the default; 0 shreds once the archive has them

    [deadlines]                   # in days; each has a default (people.Deadlines)
    decision_days = 28            # level 0: a decision within this of the concern
    evaluation_overdue_days = 0   # a measure not evaluated this long after its date
    inactivity_days = 14          # nothing recorded on a case for this long
    minutes_days = 7              # a meeting held without minutes for this long
    escalation_days = 7           # a break still not acted on this long later: the unit leader
    reminder_lead_days = 3        # a reminder this long before an evaluation or due date

    [deadlines.levels.3]          # a level's own, where it differs
    inactivity_days = 30

Every service reads the same file. It is read again when it changes; a change that does not
parse is logged and the last good directory stays in force, so a typo never stops a service.
A directory that does not parse at start-up stops the start, naming the line and the reason
(for a value the directory does not take, the line of its key in a TOML file).
"""

from __future__ import annotations

import json
import os
import re
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
    except ValueError as error:  # both parsers name the line
        raise SettingsError(f"the directory file {path} is not valid: {error}") from None
    try:
        return msgspec.convert(data, Directory)
    except msgspec.ValidationError as error:
        line = _line_of(raw.decode(), str(error)) if path.suffix == ".toml" else None
        where = "" if line is None else f" (line {line})"
        raise SettingsError(f"the directory file {path} is not valid{where}: {error}") from None


def _line_of(toml: str, message: str) -> int | None:
    """The line of a TOML file that a validation error's path (`at `$.a.b``) points to: the key
    it names, or the nearest table or key above it in the path."""
    found = re.search(r"(at `key` in|at) `\$\.([^`]*)`", message)
    if found is None:
        return None
    # A table's key or a list's index shows as `[...]`, a bad key as `key` in its table: any key
    # matches either.
    wanted = re.sub(r"\[[^\]]*\]", ".*", found.group(2)).split(".")
    wanted += ["*"] if found.group(1) != "at" else []
    table: list[str] = []
    best: tuple[int, int] | None = None  # (how much of the path, line)
    for number, line in enumerate(toml.splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if text.startswith("["):
            table = _keys(text.strip("[]"))
            here = table
        elif "=" in text:
            here = table + _keys(text.split("=", 1)[0])
        else:
            continue
        matches = len(here) <= len(wanted) and all(
            w in ("*", h) for h, w in zip(here, wanted[: len(here)], strict=True)
        )
        shared = len(here) if matches else 0
        if shared and (best is None or shared > best[0]):
            best = (shared, number)
    return None if best is None else best[1]


def _keys(dotted: str) -> list[str]:
    return [key.strip().strip('"').strip("'") for key in dotted.split(".")]


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
