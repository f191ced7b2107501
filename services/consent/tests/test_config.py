"""What a municipality configures for consent, read from the environment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stafett_consent.config import TOLERANCE_VARIABLE, ConsentConfig
from stafett_runtime.settings import SettingsError


def test_consent_not_backdated_by_more_than_five_minutes_unless_configured() -> None:
    assert ConsentConfig.from_env({}).rules.backdating_tolerance == timedelta(minutes=5)
    strict = ConsentConfig.from_env({TOLERANCE_VARIABLE: "0"})
    assert strict.rules.backdating_tolerance == timedelta(0)
    patient = ConsentConfig.from_env({TOLERANCE_VARIABLE: "900"})
    assert patient.rules.backdating_tolerance == timedelta(minutes=15)


def test_a_tolerance_that_is_not_a_whole_number_of_seconds_stops_the_start() -> None:
    for value in ("-1", "5m", "1.5"):
        with pytest.raises(SettingsError, match=TOLERANCE_VARIABLE):
            ConsentConfig.from_env({TOLERANCE_VARIABLE: value})
