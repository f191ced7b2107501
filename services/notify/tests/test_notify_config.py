"""The notify settings and its contact directory: read once at start-up, refused with a clear
message. Unit leaders are not among them: they are the municipality directory's."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from stafett_contracts.notify import Channel
from stafett_notify.config import NotifyConfig
from stafett_runtime.settings import SettingsError


def test_a_toml_contact_directory_gives_addresses_and_channels(tmp_path: Path) -> None:
    directory = tmp_path / "contacts.toml"
    directory.write_text(
        '[contacts."rektor-1"]\nemail = "rektor@lia.example"\n'
        '[contacts.ppt]\nwebhook = "https://ppt.example/hook"\nemail = "post@ppt.example"\n'
    )
    config = NotifyConfig.from_env(
        {"STAFETT_NOTIFY_DIRECTORY": str(directory), "STAFETT_NOTIFY_LEAD_DAYS": "5"}
    )
    found = config.contacts
    assert found.address("rektor-1", Channel.EMAIL) == "rektor@lia.example"
    assert found.channels_for("ppt") == [Channel.EMAIL, Channel.WEBHOOK]
    assert found.address("ppt", Channel.WEBHOOK) == "https://ppt.example/hook"
    assert found.channels_for("nobody") == [Channel.EMAIL]
    assert found.address("nobody", Channel.EMAIL) is None  # fails visibly when sent
    assert config.timers.lead == timedelta(days=5)
    assert "secret" not in repr(config)


def test_without_a_directory_development_mail_goes_to_a_local_domain() -> None:
    config = NotifyConfig.from_env({})
    assert config.contacts.address("laerer-1", Channel.EMAIL) == "laerer-1@stafett.localhost"
    assert (config.smtp.host, config.smtp.port) == ("127.0.0.1", 1025)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("STAFETT_NOTIFY_INACTIVITY_DAYS", "soon", "STAFETT_NOTIFY_INACTIVITY_DAYS"),
        ("STAFETT_NOTIFY_DIRECTORY", "/no/such/file.json", "STAFETT_NOTIFY_DIRECTORY"),
    ],
)
def test_a_setting_it_cannot_use_is_refused_by_name(variable: str, value: str, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        NotifyConfig.from_env({variable: value})


def test_a_directory_with_an_unknown_field_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "directory.json"
    directory.write_text('{"contacts": {"a": {"phone": "123"}}}')
    with pytest.raises(SettingsError, match="phone"):
        NotifyConfig.from_env({"STAFETT_NOTIFY_DIRECTORY": str(directory)})


def test_a_contact_directory_that_still_names_unit_leaders_is_refused(tmp_path: Path) -> None:
    # Given a contact directory from before: it names skole-lia's leader in a `units` table
    directory = tmp_path / "contacts.toml"
    directory.write_text('[units.skole-lia]\nleader = "rektor-1"\n')
    # When the service starts with it, then it is refused: leaders are the municipality's fact
    with pytest.raises(SettingsError, match="municipality directory") as refused:
        NotifyConfig.from_env({"STAFETT_NOTIFY_DIRECTORY": str(directory)})
    assert "STAFETT_DIRECTORY_FILE" in str(refused.value)
    assert "STAFETT_NOTIFY_DIRECTORY" in str(refused.value)
