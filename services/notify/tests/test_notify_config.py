"""The notify settings and its contact directory: read once at start-up, refused with a clear
message. Unit leaders are not among them: they are the municipality directory's."""

from __future__ import annotations

from pathlib import Path

import pytest

from stafett_contracts.notify import Channel
from stafett_notify.config import NotifyConfig, new_secret, secret_problem
from stafett_runtime.settings import SettingsError


def test_a_toml_contact_directory_gives_addresses_and_channels(tmp_path: Path) -> None:
    directory = tmp_path / "contacts.toml"
    directory.write_text(
        '[contacts."rektor-1"]\nemail = "rektor@lia.example"\n'
        '[contacts.ppt]\nwebhook = "https://ppt.example/hook"\nemail = "post@ppt.example"\n'
        f'webhook_secret = "{new_secret()}"\n'
    )
    config = NotifyConfig.from_env({"STAFETT_NOTIFY_DIRECTORY": str(directory)})
    found = config.contacts
    assert found.address("rektor-1", Channel.EMAIL) == "rektor@lia.example"
    assert found.channels_for("ppt") == [Channel.EMAIL, Channel.WEBHOOK]
    assert found.address("ppt", Channel.WEBHOOK) == "https://ppt.example/hook"
    assert found.channels_for("nobody") == [Channel.EMAIL]
    assert found.address("nobody", Channel.EMAIL) is None  # fails visibly when sent
    assert "secret" not in repr(config)


def test_without_a_directory_development_mail_goes_to_a_local_domain() -> None:
    config = NotifyConfig.from_env({})
    assert config.contacts.address("laerer-1", Channel.EMAIL) == "laerer-1@stafett.localhost"
    assert (config.smtp.host, config.smtp.port) == ("127.0.0.1", 1025)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("STAFETT_NOTIFY_MAX_ATTEMPTS", "soon", "STAFETT_NOTIFY_MAX_ATTEMPTS"),
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


def contacts_file(tmp_path: Path, ppt: str) -> dict[str, str]:
    directory = tmp_path / "contacts.toml"
    directory.write_text(f'[contacts.ppt]\nwebhook = "https://ppt.example/hook"\n{ppt}')
    return {"STAFETT_NOTIFY_DIRECTORY": str(directory)}


def test_each_webhook_contact_signs_with_its_own_secret(tmp_path: Path) -> None:
    secret = new_secret()
    config = NotifyConfig.from_env(contacts_file(tmp_path, f'webhook_secret = "{secret}"\n'))

    assert config.contacts.webhook_secrets() == {"https://ppt.example/hook": secret}
    assert secret not in repr(config)
    assert secret not in repr(config.contacts)


def test_a_webhook_contact_without_a_secret_is_refused_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="'ppt' has no webhook_secret") as refused:
        NotifyConfig.from_env(contacts_file(tmp_path, ""))
    assert "STAFETT_NOTIFY_DEV_WEBHOOK_SECRETS=generate" in str(refused.value)


def test_in_development_a_webhook_contact_without_a_secret_gets_a_generated_one(
    tmp_path: Path,
) -> None:
    environ = {**contacts_file(tmp_path, ""), "STAFETT_NOTIFY_DEV_WEBHOOK_SECRETS": "generate"}

    secret = NotifyConfig.from_env(environ).contacts.webhook_secrets()["https://ppt.example/hook"]

    assert secret_problem(secret) is None
    assert NotifyConfig.from_env(environ).contacts.webhook_secrets() != {
        "https://ppt.example/hook": secret
    }  # random, never a default


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("dev-webhook-secret", "begins with whsec_"),
        ("whsec_not base64!", "base64"),
        ("whsec_c2hvcnQ=", "24 to 64 bytes"),
    ],
)
def test_a_webhook_secret_that_cannot_sign_is_refused_saying_why(
    tmp_path: Path, secret: str, why: str
) -> None:
    with pytest.raises(SettingsError, match=why):
        NotifyConfig.from_env(contacts_file(tmp_path, f'webhook_secret = "{secret}"\n'))


def test_the_one_shared_webhook_secret_of_before_is_refused_naming_what_replaced_it() -> None:
    with pytest.raises(SettingsError, match="webhook_secret in the contact directory"):
        NotifyConfig.from_env({"STAFETT_NOTIFY_WEBHOOK_SECRET": "dev-webhook-secret"})


@pytest.mark.parametrize(
    ("variable", "in_the_directory"),
    [
        ("STAFETT_NOTIFY_LEAD_DAYS", "reminder_lead_days"),
        ("STAFETT_NOTIFY_INACTIVITY_DAYS", "inactivity_days"),
        ("STAFETT_NOTIFY_ESCALATION_DAYS", "escalation_days"),
    ],
)
def test_a_deadline_set_in_the_environment_is_refused_naming_its_place_in_the_directory(
    variable: str, in_the_directory: str
) -> None:
    # The municipality's deadlines are in one place, the directory file every service reads
    with pytest.raises(SettingsError, match=rf"{variable} is no longer read.*`{in_the_directory}`"):
        NotifyConfig.from_env({variable: "14"})
