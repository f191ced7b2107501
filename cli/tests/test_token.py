"""`stafett token` prints a development token that the services, reading the same environment,
accept; an identity no service would accept gets no token."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import TokenVerifier


def stafett_token(environ: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stafett_cli.main", "token", *arguments],
        env={**os.environ, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"STAFETT_DATA_DIR": str(tmp_path), "STAFETT_TOKEN_AUDIENCE": "stafett-local"}


def test_a_printed_token_is_accepted_by_a_service_with_the_same_environment(
    environ: dict[str, str],
) -> None:
    minted = stafett_token(
        environ, "--person", "p-1001", "--role", "employee", "--service", "solbakken-skole"
    )

    assert minted.returncode == 0, minted.stderr
    verifier = TokenVerifier.from_env(environ)
    actor = asyncio.run(verifier.verify(minted.stdout.strip()))
    assert actor == Actor(person="p-1001", role=Role.EMPLOYEE, service="solbakken-skole")


def test_the_token_says_which_data_folders_key_signed_it(environ: dict[str, str]) -> None:
    minted = stafett_token(environ, "--person", "p-2001", "--role", "guardian")

    key_file = Path(environ["STAFETT_DATA_DIR"]).resolve() / "dev-signing-key.pem"
    assert minted.stderr.strip() == (
        f"signed with the development key of the data folder {key_file.parent} ({key_file})"
    )


def test_a_token_is_minted_for_the_development_issuer_the_services_trust(
    environ: dict[str, str],
) -> None:
    # Given services that trust a real provider and the development key, for its own audience
    environ["STAFETT_TRUSTED_ISSUERS"] = json.dumps(
        [
            {"issuer": "https://idporten.example", "claims": {"person": "pid"}},
            {"issuer": "dev-key", "audience": "stafett-dev", "development_key": True},
        ]
    )

    minted = stafett_token(environ, "--person", "p-2001", "--role", "guardian")

    verifier = TokenVerifier.from_env(environ)
    assert asyncio.run(verifier.verify(minted.stdout.strip())) == Actor(
        person="p-2001", role=Role.GUARDIAN
    )


def test_an_unknown_role_is_refused_naming_the_roles(environ: dict[str, str]) -> None:
    minted = stafett_token(environ, "--person", "p-1001", "--role", "headmaster")

    assert minted.returncode == 2
    assert minted.stdout == ""
    assert "invalid choice: 'headmaster'" in minted.stderr
    assert "'unit_leader'" in minted.stderr


def test_an_employee_without_a_service_is_refused(environ: dict[str, str]) -> None:
    minted = stafett_token(environ, "--person", "p-1001", "--role", "employee")

    assert minted.returncode == 2
    assert minted.stdout == ""
    assert "role employee must name the service acted for" in minted.stderr


def test_no_development_token_is_printed_where_the_services_trust_an_identity_provider(
    environ: dict[str, str],
) -> None:
    environ["STAFETT_JWKS_URL"] = "https://login.kommune.example/jwks.json"

    minted = stafett_token(environ, "--person", "p-2001", "--role", "guardian")

    assert minted.returncode == 2
    assert minted.stdout == ""
    assert "the services trust no development key" in minted.stderr
