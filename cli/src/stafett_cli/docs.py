"""`stafett docs`: the integrators' documents, written under docs/ and checked to be current.

- docs/asyncapi.json: every stream, subject and event schema, from contracts/;
- docs/openapi/<service>.json: each runnable service's HTTP API, from
  `python -m stafett_<service> openapi` (made without connecting to anything).

`--check` writes nothing and exits 1 when a document differs from what the code makes now, so a
test keeps them current.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from stafett_cli.config import SERVICES
from stafett_cli.platform import ServiceProcess
from stafett_contracts.asyncapi import render

REPOSITORY = Path(__file__).resolve().parents[3]


@cache  # one run makes them once; each costs a Python start per service
def documents() -> dict[str, str]:
    made = {"asyncapi.json": render()}
    runnable = [name for name in SERVICES if ServiceProcess.is_runnable(name)]
    with ThreadPoolExecutor() as pool:  # the services' start-ups overlap
        for name, text in zip(runnable, pool.map(_openapi, runnable), strict=True):
            made[f"openapi/{name}.json"] = text
    return made


def _openapi(name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", f"stafett_{name}", "openapi"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`python -m stafett_{name} openapi` failed ({result.returncode}):\n"
            f"{result.stderr[-2000:]}"
        )
    return result.stdout


def docs(check: bool, folder: str | None) -> int:
    root = Path(folder) if folder else REPOSITORY / "docs"
    made = documents()
    stale = [path for path, text in made.items() if _read(root / path) != text]
    if check:
        for path in stale:
            print(f"out of date: {root / path} (run `stafett docs`)", file=sys.stderr)
        if not stale:
            print(f"up to date: {len(made)} documents under {root}")
        return 1 if stale else 0
    for path in stale:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(made[path])
        print(f"wrote {root / path}")
    print(f"{len(made)} documents under {root}, {len(stale)} changed")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None
