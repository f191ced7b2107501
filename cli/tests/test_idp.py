"""The development identity provider speaks OpenID Connect as a real one does, and the services
accept its tokens as they will a real provider's.

The whole flow runs against the provider as `stafett up` runs it (`python -m stafett_cli.idp`),
with Authlib's own client; the refusals run against it in-process, with a clock the test moves.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import msgspec
import pytest
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.discovery import OpenIDProviderMetadata
from litestar.testing import TestClient

from stafett_cli.idp import Client, DevelopmentProvider, IdpSettings, web_client
from stafett_cli.idp.app import create_app
from stafett_cli.idp.people import People, demo_people, write_people_if_missing
from stafett_cli.idp.protocol import CODE_LIFETIME
from stafett_cli.token import development_token
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey, TokenError, TokenVerifier
from stafett_runtime.natsserver import free_port
from stafett_runtime.settings import SettingsError

CALLBACK = "http://127.0.0.1:8106/auth/callback"
SIGNED_OUT = "http://127.0.0.1:8106/"
SECRET = "web-secret-for-tests"
WEB = Client(
    client_id="stafett-web",
    client_secret=SECRET,
    redirect_uris=(CALLBACK,),
    post_logout_redirect_uris=(SIGNED_OUT,),
)
with warnings.catch_warnings():
    # Authlib warns that plain httpx will give way to its successor; it is what is installed.
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Client

HEADTEACHER = Actor(person="rektor-lia", role=Role.UNIT_LEADER, service="skole-lia")


class LoginPage(HTMLParser):
    """What a browser sees of the login page: the form's hidden fields, its buttons, legends."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}
        self.people: list[str] = []
        self.legends: list[str] = []
        self.scripts = 0
        self._in_legend = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        fields = dict(attrs)
        if tag == "input" and fields.get("type") == "hidden":
            self.hidden[fields["name"] or ""] = fields["value"] or ""
        if tag == "button" and fields.get("name") == "person":
            self.people.append(fields["value"] or "")
        self._in_legend = tag == "legend"
        self.scripts += tag == "script"

    def handle_data(self, data: str) -> None:
        if self._in_legend and data.strip():
            self.legends.append(data.strip())
            self._in_legend = False


def code_from(response: httpx.Response) -> str:
    assert response.status_code == 302, response.text
    return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]


# --- the provider as a process, and Authlib's client ------------------------------------------


class RunningProvider:
    def __init__(self, data_dir: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        self.data_dir = data_dir
        provider = DevelopmentProvider(url=self.url, clients=(WEB,))
        self.environ = {"STAFETT_DATA_DIR": str(data_dir)}
        self.process = subprocess.Popen(
            list(provider.command),
            env={**os.environ, **self.environ, **provider.environment()},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.trusted_by_services = provider.trusted_by_services(self.environ)
        deadline = time.monotonic() + 30
        while not self._ready():
            assert self.process.poll() is None, self.process.communicate()[1]
            assert time.monotonic() < deadline, "the provider did not become ready"
            time.sleep(0.1)
        self.metadata = httpx.get(f"{self.url}/.well-known/openid-configuration").json()

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=15)


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProvider]:
    provider = RunningProvider(tmp_path_factory.mktemp("data"))
    yield provider
    provider.stop()


def sign_in_with_authlib(running: RunningProvider, person: str) -> tuple[dict[str, Any], str]:
    """The web app's part by Authlib's client; the browser's part (open the login page, click a
    person) by hand. The token response, and the nonce sent."""
    client = OAuth2Client(
        client_id=WEB.client_id,
        client_secret=SECRET,
        redirect_uri=CALLBACK,
        scope="openid profile",
        code_challenge_method="S256",
    )
    verifier, nonce = generate_token(48), generate_token(20)
    url, state = client.create_authorization_url(
        running.metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    page = LoginPage(httpx.get(url).text)
    assert person in page.people
    chosen = httpx.post(
        running.metadata["authorization_endpoint"], data={**page.hidden, "person": person}
    )
    token = client.fetch_token(
        running.metadata["token_endpoint"],
        authorization_response=chosen.headers["Location"],
        state=state,
        code_verifier=verifier,
    )
    return dict(token), nonce


def test_discovery_describes_a_provider_that_requires_pkce_with_s256(
    running: RunningProvider,
) -> None:
    metadata = OpenIDProviderMetadata(running.metadata)

    metadata.validate()  # every rule of OpenID Connect Discovery 1.0, as Authlib checks them
    assert metadata["issuer"] == running.url
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["end_session_endpoint"] == f"{running.url}/logout"


def test_the_jwks_publishes_the_data_folders_development_key(running: RunningProvider) -> None:
    keys = httpx.get(running.metadata["jwks_uri"]).json()["keys"]

    development = DevelopmentKey.load_or_create(running.data_dir / "dev-signing-key.pem")
    assert development.public_jwk() in keys
    assert {key["alg"] for key in keys} == {"RS256", "ES256"}


def test_a_guardian_signs_in_with_the_code_flow_and_pkce(running: RunningProvider) -> None:
    token, nonce = sign_in_with_authlib(running, "mor-emma")

    # The ID token is for the web app, carries its nonce, and is signed with a key of the JWKS
    keys = jwt.PyJWKClient(running.metadata["jwks_uri"])
    id_token = token["id_token"]
    claims = jwt.decode(
        id_token,
        keys.get_signing_key_from_jwt(id_token),
        algorithms=["RS256"],
        audience=WEB.client_id,
        issuer=running.url,
    )
    assert claims["nonce"] == nonce
    assert (claims["sub"], claims["role"]) == ("mor-emma", "guardian")

    # The access token is accepted by a service that trusts this issuer, found by discovery
    verifier = TokenVerifier.from_env(running.trusted_by_services)
    access = token["access_token"]
    assert asyncio.run(verifier.verify(access)) == Actor(person="mor-emma", role=Role.GUARDIAN)

    # And userinfo says who it names
    userinfo = httpx.get(
        running.metadata["userinfo_endpoint"], headers={"Authorization": f"Bearer {access}"}
    )
    assert userinfo.json() == {"sub": "mor-emma", "name": "Emma's mother", "role": "guardian"}


def test_the_services_accept_the_providers_tokens_and_stafett_tokens_alike(
    running: RunningProvider,
) -> None:
    # Given the services as `stafett up` configures them beside the provider
    verifier = TokenVerifier.from_env({**running.environ, **running.trusted_by_services})

    # When a headteacher signs in, and a developer mints a token with `stafett token`
    token, _ = sign_in_with_authlib(running, "rektor-lia")
    minted = development_token(
        "rektor-lia", "unit_leader", "skole-lia", timedelta(minutes=5), running.environ
    )

    # Then both name the same headteacher to every service
    assert asyncio.run(verifier.verify(token["access_token"])) == HEADTEACHER
    assert asyncio.run(verifier.verify(minted)) == HEADTEACHER


# --- refusals, in-process ----------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> IdpSettings:
    public = Client(client_id="cli-tool", redirect_uris=("http://127.0.0.1:9000/done",))
    clients = msgspec.json.encode([WEB, public]).decode()
    environ = {
        "STAFETT_DATA_DIR": str(tmp_path),
        "STAFETT_IDP_URL": "http://127.0.0.1:8100",
        "STAFETT_IDP_CLIENTS": clients,
    }
    settings = IdpSettings.from_env(environ)
    write_people_if_missing(settings.people_file)
    return settings


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def idp(settings: IdpSettings, clock: Clock) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(settings, clock), base_url=settings.url) as client:
        client.follow_redirects = False
        yield client


def authorization(verifier: str, **changes: str) -> dict[str, str]:
    parameters = {
        "response_type": "code",
        "client_id": WEB.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid profile",
        "state": "state-1",
        "nonce": generate_token(16),
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return {name: value for name, value in {**parameters, **changes}.items() if value}


def choose(idp: TestClient[Any], person: str, verifier: str, **changes: str) -> httpx.Response:
    page = idp.get("/authorize", params=authorization(verifier, **changes))
    assert page.status_code == 200, page.text
    return idp.post("/authorize", data={**LoginPage(page.text).hidden, "person": person})


def redeem(idp: TestClient[Any], code: str, verifier: str, **changes: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "code_verifier": verifier,
    }
    return idp.post("/token", data={**form, **changes}, auth=(WEB.client_id, SECRET))


VERIFIER = "v" * 43


def test_a_wrong_pkce_verifier_is_refused_and_spends_the_code(idp: TestClient[Any]) -> None:
    code = code_from(choose(idp, "laerer-lia", VERIFIER))

    wrong = redeem(idp, code, "w" * 43)
    right_too_late = redeem(idp, code, VERIFIER)

    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    assert wrong.json()["error_description"] == "Code challenge failed."
    assert right_too_late.json()["error"] == "invalid_grant"


def test_a_code_is_redeemed_once(idp: TestClient[Any]) -> None:
    code = code_from(choose(idp, "laerer-lia", VERIFIER))

    first = redeem(idp, code, VERIFIER)
    again = redeem(idp, code, VERIFIER)

    assert first.status_code == 200
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_a_code_older_than_its_lifetime_is_refused(idp: TestClient[Any], clock: Clock) -> None:
    code = code_from(choose(idp, "laerer-lia", VERIFIER))

    clock.now += CODE_LIFETIME + 1

    assert redeem(idp, code, VERIFIER).json()["error"] == "invalid_grant"


def test_a_redirect_uri_not_registered_gets_a_page_and_no_redirect(idp: TestClient[Any]) -> None:
    response = idp.get(
        "/authorize", params=authorization(VERIFIER, redirect_uri="https://elsewhere.example/cb")
    )

    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "https://elsewhere.example/cb is not supported by client" in response.text


def test_a_code_is_not_redeemed_for_another_redirect_uri(idp: TestClient[Any]) -> None:
    code = code_from(choose(idp, "laerer-lia", VERIFIER))

    response = redeem(idp, code, VERIFIER, redirect_uri="http://127.0.0.1:8106/other")

    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid 'redirect_uri' in request.",
    }


@pytest.mark.parametrize(
    "changes",
    [{"code_challenge": "", "code_challenge_method": ""}, {"code_challenge_method": "plain"}],
)
def test_an_authorization_without_pkce_s256_is_sent_back_refused(
    idp: TestClient[Any], changes: dict[str, str]
) -> None:
    response = idp.get("/authorize", params=authorization(VERIFIER, **changes))

    refused = parse_qs(urlsplit(response.headers["Location"]).query)
    assert response.headers["Location"].startswith(CALLBACK)
    assert refused["error"] == ["invalid_request"]
    assert refused["error_description"] == [
        "PKCE is required: send code_challenge with code_challenge_method=S256"
    ]
    assert refused["state"] == ["state-1"]


def test_a_confidential_client_with_the_wrong_secret_is_refused(idp: TestClient[Any]) -> None:
    code = code_from(choose(idp, "laerer-lia", VERIFIER))
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}

    response = idp.post("/token", data={**form, "code_verifier": VERIFIER}, auth=("x", "y"))
    no_secret = idp.post(
        "/token", data={**form, "code_verifier": VERIFIER, "client_id": WEB.client_id}
    )

    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    assert no_secret.json()["error"] == "invalid_client"


def test_a_public_client_redeems_its_code_with_the_verifier_alone(idp: TestClient[Any]) -> None:
    done = "http://127.0.0.1:9000/done"
    code = code_from(choose(idp, "tilsyn-1", VERIFIER, client_id="cli-tool", redirect_uri=done))

    response = idp.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": done,
            "client_id": "cli-tool",
            "code_verifier": VERIFIER,
        },
    )

    assert response.status_code == 200
    assert set(response.json()) >= {"access_token", "id_token", "expires_in"}


def test_cancelling_sends_the_person_back_with_access_denied(idp: TestClient[Any]) -> None:
    page = LoginPage(idp.get("/authorize", params=authorization(VERIFIER)).text)

    response = idp.post("/authorize", data={**page.hidden, "cancel": "1"})

    refused = parse_qs(urlsplit(response.headers["Location"]).query)
    assert response.headers["Location"].startswith(CALLBACK)
    assert (refused["error"], refused["state"]) == (["access_denied"], ["state-1"])


def test_the_login_page_lists_everyone_grouped_by_role_without_scripts(
    idp: TestClient[Any],
) -> None:
    response = idp.get("/authorize", params=authorization(VERIFIER))
    page = LoginPage(response.text)

    assert page.people == [p.person for p in sorted(demo_people().people, key=_role_order)]
    assert page.legends[:3] == ["Foresatte", "Barn og unge", "Ansatte"]
    assert page.scripts == 0
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "rektor-lia</span> &ndash; headteacher, Lia skole" in response.text
    assert '<html lang="nb">' in response.text
    assert '<span lang="en" class="en">/ Guardians</span>' in response.text


def _role_order(person: Any) -> int:
    order = [Role.GUARDIAN, Role.CHILD, Role.EMPLOYEE, Role.UNIT_LEADER, Role.AUDITOR]
    return [*order, Role.ADMINISTRATOR, Role.SYSTEM].index(person.role)


def test_someone_not_in_the_people_file_cannot_be_chosen(idp: TestClient[Any]) -> None:
    page = LoginPage(idp.get("/authorize", params=authorization(VERIFIER)).text)

    response = idp.post("/authorize", data={**page.hidden, "person": "mallory"})

    assert response.status_code == 400
    assert "not in the people file" in response.text


def test_a_broken_people_file_is_named_until_it_is_fixed(
    idp: TestClient[Any], settings: IdpSettings
) -> None:
    good = settings.people_file.read_text()
    broken = json.loads(good)
    broken["people"][0]["role"] = "guardian"  # a guardian acts for no service
    settings.people_file.write_text(json.dumps(broken))

    refused = idp.get("/authorize", params=authorization(VERIFIER))
    settings.people_file.write_text(good + " ")  # fixed (and changed, so read again)
    healed = idp.get("/authorize", params=authorization(VERIFIER))

    assert refused.status_code == 503
    assert "people[0] (styrer-solsikke)" in refused.text
    assert "role guardian must not name a service" in refused.text
    assert healed.status_code == 200


def test_logout_returns_to_a_registered_address_with_the_state(idp: TestClient[Any]) -> None:
    response = idp.get(
        "/logout",
        params={
            "client_id": WEB.client_id,
            "post_logout_redirect_uri": SIGNED_OUT,
            "state": "bye",
        },
    )

    assert response.headers["Location"] == f"{SIGNED_OUT}?state=bye"


def test_logout_to_an_unregistered_address_stays_on_the_provider(idp: TestClient[Any]) -> None:
    response = idp.get(
        "/logout",
        params={"client_id": WEB.client_id, "post_logout_redirect_uri": "https://evil.example"},
    )

    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "Du er logget ut" in response.text


def test_a_parameter_authlib_cannot_echo_is_a_400_not_a_500(idp: TestClient[Any]) -> None:
    response = idp.get("/authorize", params={"response_type": '"æ'})

    assert response.status_code == 400
    assert "Malformed request" in response.text


def test_userinfo_needs_the_providers_access_token(idp: TestClient[Any], tmp_path: Path) -> None:
    stranger = DevelopmentKey.load_or_create(tmp_path / "elsewhere" / "key.pem")
    token = stranger.mint(HEADTEACHER, issuer="http://127.0.0.1:8100")

    response = idp.get("/userinfo", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert "unknown key" in response.json()["detail"]


# --- settings and files ------------------------------------------------------------------------


def test_the_people_file_is_the_demo_municipality_readable_only_by_its_owner(
    tmp_path: Path,
) -> None:
    path = tmp_path / "people.json"

    write_people_if_missing(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    headteacher = People(path).find("rektor-lia")
    assert headteacher is not None
    assert (headteacher.actor, headteacher.unit) == (HEADTEACHER, "Lia skole")


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, "STAFETT_IDP_CLIENTS is not set"),
        ({"STAFETT_IDP_CLIENTS": '[{"client_id": "w"}]'}, "`redirect_uris`"),
        (
            {"STAFETT_IDP_CLIENTS": '[{"client_id": "w", "redirect_uris": ["/cb"]}]'},
            "'/cb' is not an absolute http(s) URL",
        ),
        (
            {
                "STAFETT_IDP_CLIENTS": '[{"client_id": "w", "redirect_uris": ["http://a/cb"]}]',
                "STAFETT_IDP_URL": "http://login.example",
            },
            "STAFETT_IDP_URL must be an https URL",
        ),
    ],
)
def test_settings_that_are_wrong_stop_the_provider_naming_what(
    environ: dict[str, str], names: str
) -> None:
    with pytest.raises(SettingsError, match=names.replace("(", r"\(").replace(")", r"\)")):
        IdpSettings.from_env(environ)


def test_the_web_apps_secret_is_made_once_per_data_folder(tmp_path: Path) -> None:
    first = web_client(tmp_path, CALLBACK, SIGNED_OUT)
    again = web_client(tmp_path, CALLBACK, SIGNED_OUT)

    assert first.client_secret == again.client_secret
    assert first.client_id == "stafett-web"
    assert stat.S_IMODE((tmp_path / "idp-client-secrets.json").stat().st_mode) == 0o600


def test_a_token_is_refused_by_services_that_do_not_trust_the_provider(
    settings: IdpSettings, tmp_path: Path
) -> None:
    key = DevelopmentKey.load_or_create(settings.key_file)
    token = key.mint(HEADTEACHER, issuer=settings.issuer)

    with pytest.raises(TokenError, match="unknown issuer"):
        asyncio.run(TokenVerifier.from_env({"STAFETT_DATA_DIR": str(tmp_path)}).verify(token))


def test_python_dash_m_without_clients_says_what_to_set(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("STAFETT_")}
    result = subprocess.run(
        [sys.executable, "-m", "stafett_cli.idp"],
        env={**environ, "STAFETT_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert "STAFETT_IDP_CLIENTS is not set" in result.stderr
