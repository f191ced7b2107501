"""The people file: whom the development identity provider lets anyone sign in as.

A JSON file (default `$STAFETT_DATA_DIR/people.json`, or STAFETT_IDP_PEOPLE_FILE) that the
provider writes from the demo municipality (`stafett_cli.municipality.PEOPLE`) where there is
none. Edit it to try other people: the provider reads it again when it changes, and a file it
cannot use is shown on the login page, naming the entry and what is wrong, until it is fixed.

    {"people": [
      {"person": "rektor-lia", "role": "unit_leader", "service": "skole-lia",
       "title": "headteacher", "unit": "Lia skole"},
      {"person": "mor-emma", "role": "guardian", "title": "Emma's mother"}
    ]}

| field | meaning |
|---|---|
| `person` | the person id the tokens name (`sub`) |
| `role` | employee, unit_leader, guardian, child, auditor, administrator or system |
| `service` | the unit acted for: employee and unit_leader need one; guardian, child, auditor none |
| `title` | what the login page says of them ("headteacher") |
| `unit` | the unit's name on the login page (optional) |
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

import msgspec

from stafett_cli.datafolder import write_private
from stafett_cli.municipality import PEOPLE, UNITS
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import TokenError, identity

FILE_NAME = "people.json"


class Person(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Someone to sign in as, and what the login page says of them."""

    person: str
    role: Role
    service: str | None = None
    title: str = ""
    unit: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(person=self.person, role=self.role, service=self.service)


class PeopleFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    people: tuple[Person, ...]


class PeopleFileError(RuntimeError):
    """The people file cannot be used; the message names the file and what is wrong."""


def people_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the people file is: STAFETT_IDP_PEOPLE_FILE, or in the data folder."""
    named = environ.get("STAFETT_IDP_PEOPLE_FILE") or None
    data_dir = Path(environ.get("STAFETT_DATA_DIR") or "var")
    return Path(named or data_dir / FILE_NAME).resolve()


def demo_people() -> PeopleFile:
    """The demo municipality's people, each with their unit's name."""
    return PeopleFile(
        people=tuple(
            Person(
                person=p.id,
                role=Role(p.role),
                service=p.service,
                title=p.title,
                unit=UNITS[p.service][0] if p.service in UNITS else None,
            )
            for p in PEOPLE.values()
        )
    )


def write_people_if_missing(path: Path) -> None:
    """The demo municipality's people, where there is no people file yet.

    Readable by its owner only, like the register: in a real deployment a list of people and
    their roles is personal data."""
    if not path.exists():
        write_private(path, msgspec.json.format(msgspec.json.encode(demo_people())).decode())


class People:
    """The people file, read again when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._read: tuple[tuple[int, int], dict[str, Person]] | None = None

    def everyone(self) -> list[Person]:
        """Everyone in the file, in its order; PeopleFileError if it cannot be used."""
        return list(self._by_id().values())

    def find(self, person: str) -> Person | None:
        """The person with this id, if the file lists them; PeopleFileError as `everyone`."""
        return self._by_id().get(person)

    def _by_id(self) -> dict[str, Person]:
        try:
            stat = self.path.stat()
        except OSError as error:
            raise PeopleFileError(f"{self.path}: {error.strerror}") from None
        version = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._read is None or self._read[0] != version:
                self._read = (version, _parse(self.path))
            return self._read[1]


def _parse(path: Path) -> dict[str, Person]:
    try:
        listed = msgspec.json.decode(path.read_bytes(), type=PeopleFile)
    except OSError as error:
        raise PeopleFileError(f"{path}: {error.strerror}") from None
    except msgspec.DecodeError as error:  # ValidationError too: it names the entry and field
        raise PeopleFileError(f"{path}: {error}") from None
    people: dict[str, Person] = {}
    for number, person in enumerate(listed.people):
        try:
            identity(person.person, person.role, person.service)
        except TokenError as error:
            raise PeopleFileError(f"{path}: people[{number}] ({person.person}): {error}") from None
        if person.person in people:
            raise PeopleFileError(f"{path}: {person.person} is listed more than once")
        people[person.person] = person
    return people
