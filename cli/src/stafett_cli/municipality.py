"""The demo municipality: its units and their leaders, its people, and its children.

`stafett up` writes its directory (`directory_toml`) into a data folder that has none, so the
services know the units and who leads each; `stafett up --demo` adds its children to the
development register (`registered_children`) and raises their cases. Change the directory file
to try another municipality: the services read it again when it changes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from stafett_contracts.people import Directory, RegisteredChild, ServiceKind, Unit

MUNICIPALITY = "Stafett demokommune"


@dataclass(frozen=True)
class Person:
    id: str
    role: str
    service: str | None
    title: str


PEOPLE = {
    p.id: p
    for p in (
        Person("styrer-solsikke", "unit_leader", "barnehage-solsikke", "kindergarten head"),
        Person("ped-solsikke", "employee", "barnehage-solsikke", "pedagogical leader"),
        Person("styrer-lia", "unit_leader", "barnehage-lia", "kindergarten head"),
        Person("ped-lia", "employee", "barnehage-lia", "pedagogical leader"),
        Person("rektor-lia", "unit_leader", "skole-lia", "headteacher"),
        Person("laerer-lia", "employee", "skole-lia", "class teacher"),
        Person("rektor-fjell", "unit_leader", "skole-fjell", "headteacher"),
        Person("laerer-fjell", "employee", "skole-fjell", "class teacher"),
        Person("koordinator-fjell", "employee", "skole-fjell", "coordinator"),
        Person("leder-helsestasjon", "unit_leader", "helsestasjon-sentrum", "clinic head"),
        Person("helsesykepleier", "employee", "helsestasjon-sentrum", "public health nurse"),
        Person("leder-ppt", "unit_leader", "ppt", "head of PPT"),
        Person("ppt-radgiver", "employee", "ppt", "PPT adviser"),
        Person("leder-barnevern", "unit_leader", "barnevern", "head of child welfare"),
        Person("barnevern-saksbehandler", "employee", "barnevern", "child welfare officer"),
        Person("leder-bup", "unit_leader", "bup", "head of BUP"),
        Person("bup-psykolog", "employee", "bup", "psychologist"),
        Person("mor-emma", "guardian", None, "Emma's mother"),
        Person("mor-noah", "guardian", None, "Noah's mother"),
        Person("far-sara", "guardian", None, "Sara's father"),
        Person("mor-jonas", "guardian", None, "Jonas's mother"),
        Person("mor-liam", "guardian", None, "Liam's mother"),
        Person("far-ella", "guardian", None, "Ella's father"),
        Person("jonas", "child", None, "Jonas, 15"),
        Person("tilsyn-1", "auditor", None, "county supervisor"),
        Person("admin-kommune", "administrator", None, "municipal administrator"),
    )
}

# Each unit: its name, the service it belongs to, and its leader (one of PEOPLE).
UNITS: dict[str, tuple[str, ServiceKind, str]] = {
    "barnehage-solsikke": ("Solsikken barnehage", ServiceKind.KINDERGARTEN, "styrer-solsikke"),
    "barnehage-lia": ("Lia barnehage", ServiceKind.KINDERGARTEN, "styrer-lia"),
    "skole-lia": ("Lia skole", ServiceKind.SCHOOL, "rektor-lia"),
    "skole-fjell": ("Fjell skole", ServiceKind.SCHOOL, "rektor-fjell"),
    "helsestasjon-sentrum": (
        "Helsestasjonen Sentrum",
        ServiceKind.HEALTH_CLINIC,
        "leder-helsestasjon",
    ),
    "ppt": ("Pedagogisk-psykologisk tjeneste (PPT)", ServiceKind.PPT, "leder-ppt"),
    "barnevern": ("Barneverntjenesten", ServiceKind.CHILD_WELFARE, "leder-barnevern"),
    "bup": (
        "Barne- og ungdomspsykiatrisk poliklinikk (BUP)",
        ServiceKind.CHILD_PSYCHIATRY,
        "leder-bup",
    ),
}

DIRECTORY = Directory(
    municipality=MUNICIPALITY,
    units={
        unit: Unit(name=name, kind=kind, leader=leader)
        for unit, (name, kind, leader) in UNITS.items()
    },
)


@dataclass(frozen=True)
class Child:
    """A demo child: whose case it is (`key`), and what the register says of them."""

    key: str
    name: str
    age: int
    guardians: tuple[str, ...]
    person: str | None = None  # the child's own sign-in, for a child old enough to read

    @property
    def child_id(self) -> UUID:
        """The child's pseudonym in the register: the same in every demo data folder."""
        return uuid5(NAMESPACE_URL, f"stafett-demo:child:{self.key}")


CHILDREN = {
    c.key: c
    for c in (
        Child("emma", "Emma Solberg", 4, ("mor-emma",)),
        Child("noah", "Noah Berg", 9, ("mor-noah",)),
        Child("sara", "Sara Lunde", 4, ("far-sara",)),
        Child("jonas", "Jonas Fjeld", 15, ("mor-jonas",), person="jonas"),
        Child("liam", "Liam Dahl", 1, ("mor-liam",)),
        Child("ella", "Ella Strand", 10, ("far-ella",)),
    )
}


def registered_children(today: date) -> list[RegisteredChild]:
    """The demo children as the register knows them, each of their age on `today`."""
    registered = []
    for number, child in enumerate(CHILDREN.values(), 1):
        born = _years_before(today, child.age) - timedelta(days=30 * number)
        registered.append(
            RegisteredChild(
                child_id=child.child_id,
                national_id=_synthetic_national_id(born, number),
                name=child.name,
                birth_date=born,
                person=child.person,
                guardians=child.guardians,
            )
        )
    return registered


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _synthetic_national_id(born: date, number: int) -> str:
    # The month plus 80 marks a synthetic national id (Skatteetaten's Tenor test data): it can
    # never be a real person's.
    return f"{born:%d}{born.month + 80:02d}{born:%y}{number:05d}"


def directory_toml() -> str:
    """The demo municipality's directory, as the file the services read."""
    lines = [
        "# The municipality directory: each unit, the service it belongs to, and its leader.",
        "# Written by `stafett up` for the demo municipality; edit it to try another (the",
        "# services read it again when it changes). See stafett_runtime.directory.",
        "",
        f"municipality = {_toml_string(DIRECTORY.municipality)}",
    ]
    for unit_id, unit in DIRECTORY.units.items():
        lines += [
            "",
            f"[units.{unit_id}]",
            f"name = {_toml_string(unit.name)}",
            f"kind = {_toml_string(unit.kind)}",
            f"leader = {_toml_string(unit.leader)}",
        ]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string
