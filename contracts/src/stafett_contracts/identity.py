"""Who acts: the person, their role in the municipality, and the service (unit) they act for.

A role here is organisational and comes from the bearer token. Case roles (baton holder,
coordinator) are not claimed by anyone: they follow from the case's events.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Role(StrEnum):
    EMPLOYEE = "employee"  # anyone in a basic service unit, or in a helper service
    UNIT_LEADER = "unit_leader"  # head of a unit: decides at levels 0-1, appoints baton holders
    GUARDIAN = "guardian"  # each parent with parental responsibility
    CHILD = "child"  # the child the case is about
    AUDITOR = "auditor"  # supervisory authority: read-only, with a stated purpose
    ADMINISTRATOR = "administrator"  # configures units, services, retention
    SYSTEM = "system"  # a service acting on its own, e.g. a policy or a timer


# The roles of people who work in a unit: they act for the unit (service) their token names.
STAFF = frozenset({Role.EMPLOYEE, Role.UNIT_LEADER})
# The roles of the people a case is about: they act in their own name, for no service.
FAMILY = frozenset({Role.GUARDIAN, Role.CHILD})


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who did something: every event names its actor (DOMAIN.md rule 9)."""

    person: str  # a person id from the identity provider, never a name
    role: Role
    service: str | None = None  # the unit or helper service acted for; none for guardians
