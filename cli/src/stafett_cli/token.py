"""`stafett token`: a bearer token for trying the local services' HTTP APIs.

Outside production no identity provider runs, so the token is signed with the development key
that the services read from the same environment (STAFETT_DATA_DIR or STAFETT_DEV_KEY_FILE,
STAFETT_TOKEN_ISSUER, STAFETT_TOKEN_AUDIENCE), and they accept it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from stafett_runtime.auth import DevelopmentKey, TokenError, TokenSettings, identity


def development_token(
    person: str,
    role: str,
    service: str | None,
    ttl: timedelta,
    environ: Mapping[str, str] = os.environ,
) -> str:
    """A token naming the person, role and service; TokenError if that is no valid identity."""
    settings = TokenSettings.from_env(environ)
    if settings.jwks_url:
        raise TokenError(
            "STAFETT_JWKS_URL is set, so the services accept only the identity provider's tokens"
        )
    actor = identity(person, role, service)
    key = DevelopmentKey.load_or_create(settings.dev_key_file)
    return key.mint(actor, ttl, issuer=settings.issuer, audience=settings.audience)
