"""The web app on its own: its identity provider and the services are stand-ins
(`stafett_web.testing`), so each test says exactly what the services answer and reads what the
app sent them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient

from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.directory import FixedDirectory
from stafett_runtime.settings import Settings
from stafett_runtime.testing import TEST_DIRECTORY
from stafett_web.app import create_app
from stafett_web.settings import WebSettings
from stafett_web.testing import CLIENT_ID, ISSUER, SERVICE_URLS, WEB, Browser, Provider, Services


@pytest.fixture
def key(tmp_path: Path) -> DevelopmentKey:
    return DevelopmentKey.load_or_create(tmp_path / "dev-signing-key.pem")


@pytest.fixture
def provider(key: DevelopmentKey) -> Provider:
    return Provider(key)


@pytest.fixture
def services() -> Services:
    return Services()


@pytest.fixture
def settings() -> WebSettings:
    return WebSettings(
        server=Settings(service="web"),
        public_url=WEB,
        issuer=ISSUER,
        client_id=CLIENT_ID,
        service_urls=SERVICE_URLS,
        session_store="memory",
        secret="0123456789abcdef" * 4,
    )


@pytest.fixture
def browser(
    settings: WebSettings, key: DevelopmentKey, provider: Provider, services: Services
) -> Iterator[Browser]:
    app = create_app(
        settings,
        verifier=TokenVerifier(key.public_key),
        directory=FixedDirectory(TEST_DIRECTORY),
        services_client=httpx.AsyncClient(transport=services.transport),
        provider_client={"transport": provider.transport},
    )
    with TestClient(app, base_url=WEB) as client:
        client.follow_redirects = False
        yield Browser(client, provider)
