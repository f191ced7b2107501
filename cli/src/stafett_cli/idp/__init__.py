"""The development identity provider: OpenID Connect for `stafett up` and the tests.

Anyone may sign in as anyone in the people file (`people`), in a click, to try every role. The
services accept its tokens as they will a real provider's (ID-porten, BankID, MitID, Entra ID):
they find its keys by discovery from its issuer URL, and check its access tokens' audience and
claims (`stafett_runtime.auth`). It speaks the protocol for real, through Authlib (`protocol`):
discovery, JWKS, the authorization code flow with PKCE (S256 required), client authentication,
ID tokens with the nonce, userinfo and logout (`app`). It signs with the data folder's
development key, as `stafett token` does, and its issuer is its own URL.

It is for development only: there is no password, and it binds to this machine unless told
otherwise. Settings, and how `stafett up` runs it: `settings`; docs/identity.md.

    STAFETT_IDP_CLIENTS='[{"client_id": "stafett-web", "client_secret": "s3cret",
        "redirect_uris": ["http://127.0.0.1:8106/auth/callback"]}]' python -m stafett_cli.idp
"""

from __future__ import annotations

import sys

from stafett_cli.idp.settings import Client, DevelopmentProvider, IdpSettings, web_client
from stafett_runtime.settings import SettingsError

__all__ = ["Client", "DevelopmentProvider", "IdpSettings", "main", "web_client"]


def main() -> None:
    # Imported here: `stafett up` imports this package for `DevelopmentProvider` alone.
    import structlog
    import uvicorn

    from stafett_cli.idp.app import create_app
    from stafett_cli.idp.people import write_people_if_missing
    from stafett_runtime.logging import configure_logging

    try:
        settings = IdpSettings.from_env()
    except SettingsError as error:
        print(f"stafett idp: cannot start: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging("idp")
    write_people_if_missing(settings.people_file)
    host, port = settings.listen
    structlog.get_logger(__name__).info(
        "starting", issuer=settings.issuer, people=str(settings.people_file)
    )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )
