"""What a municipality configures for consent, read from the environment at start-up.

| variable | default | meaning |
|---|---|---|
| STAFETT_CONSENT_CHILD_AGE | 15 | the age from which a child consents alone |
| STAFETT_CONSENT_CHILD_AGE_BY_SERVICE | none | higher ages, e.g. `bup=16,helsestasjon=16` |
| STAFETT_CONSENT_VALIDITY_MONTHS | 12 | a consent's length when it names no end; at most 3x this |
| STAFETT_CONSENT_BACKDATING_TOLERANCE_SECONDS | 300 | how long before now a consent may begin |
| STAFETT_CONSENT_EXPIRY_INTERVAL | 60 | seconds between two rounds of the expiry timer |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

import msgspec

from stafett_consent.domain.consent import ConsentRules
from stafett_runtime.settings import SettingsError

TOLERANCE_VARIABLE = "STAFETT_CONSENT_BACKDATING_TOLERANCE_SECONDS"


class ConsentConfig(msgspec.Struct, frozen=True, kw_only=True):
    rules: ConsentRules
    expiry_interval: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ConsentConfig:
        def read(name: str) -> str | None:
            return environ.get(name) or None

        rules = ConsentRules(
            child_age=_number("STAFETT_CONSENT_CHILD_AGE", read("STAFETT_CONSENT_CHILD_AGE"), 15),
            child_age_by_service=_ages(read("STAFETT_CONSENT_CHILD_AGE_BY_SERVICE")),
            validity_months=_number(
                "STAFETT_CONSENT_VALIDITY_MONTHS", read("STAFETT_CONSENT_VALIDITY_MONTHS"), 12
            ),
            backdating_tolerance=timedelta(
                seconds=_number(
                    TOLERANCE_VARIABLE, read(TOLERANCE_VARIABLE), 300, zero_allowed=True
                )
            ),
        )
        interval = read("STAFETT_CONSENT_EXPIRY_INTERVAL")
        try:
            seconds = 60.0 if interval is None else float(interval)
        except ValueError:
            seconds = 0.0
        if seconds <= 0:
            raise SettingsError(
                f"STAFETT_CONSENT_EXPIRY_INTERVAL={interval!r}: expected a positive number"
            )
        return cls(rules=rules, expiry_interval=seconds)


def _number(variable: str, value: str | None, default: int, zero_allowed: bool = False) -> int:
    if value is None:
        return default
    if not value.isdigit() or (int(value) == 0 and not zero_allowed):
        least = "a whole number" if zero_allowed else "a positive whole number"
        raise SettingsError(f"{variable}={value!r}: expected {least}")
    return int(value)


def _ages(value: str | None) -> dict[str, int]:
    variable = "STAFETT_CONSENT_CHILD_AGE_BY_SERVICE"
    ages: dict[str, int] = {}
    for pair in (value or "").split(","):
        if pair.strip():
            service, _, age = pair.partition("=")
            ages[service.strip()] = _number(variable, age.strip(), 0)
    return ages
