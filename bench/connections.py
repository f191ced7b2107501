"""`python -m bench.connections`: the NATS connections each service process holds.

Starts a nats-server with its monitoring endpoint, then each service as its own process
(`python -m stafett_<name>`), one after the other, each left running, and counts what the
server's /connz lists once the service is ready and has settled: the connections that came with
it are its own. The target is one per process (issue 15): every application, policy loop and
the kernel of a process share one connection (`stafett_runtime.jetstream.client`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench import services

# In the order `stafett up` starts them: case follows CONSENT, so consent makes it first.
SERVICES = ("consent", "case", "meeting", "notify", "projection")
TARGET = 1  # connections per service process
SETTLE = 1.0  # seconds the count must stay the same before it is taken


def _settled(server: services.Monitored) -> list[Mapping[str, Any]]:
    """The connections once their number has stayed the same for SETTLE seconds (a service may
    connect a policy's loop after it answers ready)."""
    seen = server.connections()
    deadline = time.monotonic() + 10 * SETTLE
    while time.monotonic() < deadline:
        time.sleep(SETTLE)
        now = server.connections()
        if len(now) == len(seen):
            return now
        seen = now
    return seen


def count(tmp: Path) -> dict[str, Any]:
    """Each service's connections (how many, and their names)."""
    found: dict[str, Any] = {}
    processes: list[subprocess.Popen[bytes]] = []
    with services.monitored_server(tmp / "nats-connections") as server:
        services.municipality(tmp, 1)
        try:
            for name in SERVICES:
                before = {c["cid"] for c in server.connections()}
                process, _ = services.start(name, server.url, tmp)
                processes.append(process)
                new = [c for c in _settled(server) if c["cid"] not in before]
                found[name] = {
                    "connections": len(new),
                    "names": sorted(str(c.get("name", "")) for c in new),
                }
        finally:
            for process in reversed(processes):
                services.stop(process)
    most = max((f["connections"] for f in found.values()), default=0)
    return {
        "per_process": found,
        "target": {"at_most": TARGET, "met": bool(found) and most <= TARGET},
    }


def describe(figures: Mapping[str, Any]) -> str:
    counted = ", ".join(f"{name} {f['connections']}" for name, f in figures["per_process"].items())
    verdict = "met" if figures["target"]["met"] else "MISSED"
    return f"NATS connections per service process: {counted} (target {TARGET}: {verdict})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.connections", description=__doc__)
    parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stafett-bench-connections-") as name:
        figures = count(Path(name))
    print(describe(figures))
    for service, f in figures["per_process"].items():
        print(f"  {service}: {', '.join(f['names']) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
