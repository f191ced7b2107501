"""`stafett token`: a bearer token for trying the local services' HTTP APIs.

Outside production the services trust the development key (`stafett_runtime.tokens`), so the token
is signed with the key they read from the same environment (STAFETT_DEV_KEY_FILE, or
dev-signing-key.pem in STAFETT_DATA_DIR), for the development issuer and audience they trust:
the entry of STAFETT_TRUSTED_ISSUERS with `development_key`, or else STAFETT_TOKEN_ISSUER and
STAFETT_TOKEN_AUDIENCE. A service of another data folder refuses it, so `signed_with` says which
key signed it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from stafett_runtime.settings import SettingsError
from stafett_runtime.tokens import DevelopmentKey, TokenError, TokenSettings, identity


def development_token(
    person: str,
    role: str,
    service: str | None,
    ttl: timedelta,
    environ: Mapping[str, str] = os.environ,
) -> str:
    """A token naming the person, role and service; TokenError if that is no valid identity, or
    if the services trust no development key."""
    settings = _settings(environ)
    issuer = settings.development_issuer
    if issuer is None:
        raise TokenError(
            "the services trust no development key (STAFETT_JWKS_URL or "
            "STAFETT_TRUSTED_ISSUERS names their identity providers), so they accept only the "
            "identity providers' tokens"
        )
    actor = identity(person, role, service)
    key = DevelopmentKey.load_or_create(settings.dev_key_file)
    return key.mint(actor, ttl, issuer=issuer.issuer, audience=issuer.audience)


def signed_with(environ: Mapping[str, str] = os.environ) -> str:
    """Which key `development_token` signs with: services of another data folder refuse it."""
    key_file = _settings(environ).dev_key_file
    return f"signed with the development key of the data folder {key_file.parent} ({key_file})"


def _settings(environ: Mapping[str, str]) -> TokenSettings:
    try:
        return TokenSettings.from_env(environ)
    except SettingsError as error:
        raise TokenError(str(error)) from None
