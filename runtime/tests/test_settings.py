"""A service's settings come from its environment; a bad value stops it with a clear message."""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.settings import Settings, SettingsError
from stafett_runtime.testing import NatsTestServer


def test_an_empty_environment_gives_the_local_development_defaults() -> None:
    settings = Settings.from_env("case", environ={})

    assert settings == Settings(
        service="case",
        nats_url="nats://127.0.0.1:4222",
        http_host="127.0.0.1",
        http_port=8000,
        log_level="INFO",
        log_format="json",
    )
    assert settings.nats_user is None
    assert settings.nats_password is None
    assert settings.nats_creds is None
    assert settings.nats_tls_ca is None


def test_every_variable_is_read() -> None:
    environ = {
        "NATS_URL": "tls://nats.stafett.svc:4222",
        "NATS_USER": "case",
        "NATS_PASSWORD": "s3cret",
        "NATS_CREDS": "/run/secrets/case.creds",
        "NATS_TLS_CA": "/run/secrets/ca.pem",
        "NATS_INBOX_PREFIX": "_INBOX.case",
        "NATS_STREAM_REPLICAS": "3",
        "STAFETT_HTTP_HOST": "0.0.0.0",
        "STAFETT_HTTP_PORT": "8081",
        "STAFETT_LOG_LEVEL": "debug",
        "STAFETT_LOG_FORMAT": "Console",
        "STAFETT_BLOCKING_WORKERS": "64",
    }

    settings = Settings.from_env("case", environ)

    assert settings == Settings(
        service="case",
        nats_url="tls://nats.stafett.svc:4222",
        nats_user="case",
        nats_password="s3cret",
        nats_creds="/run/secrets/case.creds",
        nats_tls_ca="/run/secrets/ca.pem",
        nats_inbox_prefix="_INBOX.case",
        nats_stream_replicas=3,
        http_host="0.0.0.0",
        http_port=8081,
        log_level="DEBUG",
        log_format="console",
        blocking_workers=64,
    )


def test_an_empty_variable_counts_as_unset() -> None:
    settings = Settings.from_env("case", {"NATS_URL": "", "NATS_USER": "", "STAFETT_HTTP_PORT": ""})

    assert settings.nats_url == "nats://127.0.0.1:4222"
    assert settings.nats_user is None
    assert settings.http_port == 8000


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("STAFETT_HTTP_PORT", "eighty", "an integer from 1 to 65535"),
        ("STAFETT_HTTP_PORT", "0", "1 to 65535"),
        ("STAFETT_HTTP_PORT", "65536", "1 to 65535"),
        ("STAFETT_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("STAFETT_LOG_FORMAT", "xml", "json, console"),
        ("STAFETT_BLOCKING_WORKERS", "0", "a whole number from 1 to 1024"),
        ("STAFETT_BLOCKING_WORKERS", "many", "a whole number from 1 to 1024"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_the_value_and_what_is_allowed(
    variable: str, value: str, allowed: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env("case", {variable: value})

    message = str(refused.value)
    assert variable in message
    assert repr(value) in message
    assert allowed in message


def test_the_password_is_not_shown_when_settings_are_logged() -> None:
    settings = Settings.from_env("case", {"NATS_USER": "case", "NATS_PASSWORD": "s3cret"})

    assert "s3cret" not in repr(settings)
    assert "nats_user='case'" in repr(settings)


def test_the_eventsourcing_environment_selects_the_jetstream_store_and_its_server() -> None:
    settings = Settings.from_env("case", {"NATS_URL": "nats://nats:4222"})

    assert settings.eventsourcing_env() == {
        "PERSISTENCE_MODULE": "stafett_runtime.jetstream",
        "NATS_URL": "nats://nats:4222",
        "SIGNER": "case",  # its events are signed in the service's name
    }


def test_the_signing_key_is_the_one_named_or_one_per_service_in_the_data_folder() -> None:
    named = Settings.from_env("case", {"STAFETT_SIGNING_KEY_FILE": "/run/secrets/case.pem"})
    in_data = Settings.from_env("case", {"STAFETT_DATA_DIR": "/var/stafett"})

    assert named.eventsourcing_env()["SIGNING_KEY_FILE"] == "/run/secrets/case.pem"
    assert in_data.signing_key_file == "/var/stafett/event-keys/case.pem"
    assert Settings.from_env("case", {}).signing_key_file is None  # a key of the process's own


def test_the_eventsourcing_environment_carries_the_credentials_that_are_set() -> None:
    settings = Settings.from_env(
        "case", {"NATS_CREDS": "/run/secrets/case.creds", "NATS_TLS_CA": "/run/secrets/ca.pem"}
    )

    assert settings.eventsourcing_env() == {
        "PERSISTENCE_MODULE": "stafett_runtime.jetstream",
        "NATS_URL": "nats://127.0.0.1:4222",
        "NATS_CREDS": "/run/secrets/case.creds",
        "NATS_TLS_CA": "/run/secrets/ca.pem",
        "SIGNER": "case",
    }


def test_an_application_given_the_eventsourcing_environment_stores_its_events_in_jetstream(
    shared_nats_server: NatsTestServer,
) -> None:
    settings = Settings.from_env("case", {"NATS_URL": shared_nats_server.url})

    app = Application[UUID](env={**settings.eventsourcing_env(), "NATS_STREAM": "SETTINGS_TEST"})
    try:
        assert isinstance(app.factory, JetStreamFactory)
        concern = Aggregate()
        app.save(concern)
        assert app.repository.get(concern.id).id == concern.id
    finally:
        app.close()


def test_the_nats_options_name_every_server_of_a_cluster_and_the_services_own_inbox() -> None:
    environ = {
        "NATS_URL": "nats://n1:4222, nats://n2:4222",
        "NATS_USER": "case",
        "NATS_PASSWORD": "s3cret",
        "NATS_INBOX_PREFIX": "_INBOX.case",
    }

    options = Settings.from_env("case", environ).nats_options("case-keys")

    assert options == {
        "servers": ["nats://n1:4222", "nats://n2:4222"],
        "name": "case-keys",
        "user": "case",
        "password": "s3cret",
        "inbox_prefix": "_INBOX.case",
    }


@pytest.mark.parametrize("replicas", ["0", "6", "three"])
def test_stream_replicas_outside_what_jetstream_allows_are_refused(replicas: str) -> None:
    with pytest.raises(SettingsError, match="NATS_STREAM_REPLICAS"):
        Settings.from_env("case", {"NATS_STREAM_REPLICAS": replicas})
