"""`stafett new-service NAME`: a minimal service, wired in everywhere a service must be.

It writes `services/NAME/` (one aggregate, one command, one event, one route, on the one service
skeleton: `stafett_runtime.skeleton`), the service's events in `contracts/`, and a Kubernetes
manifest, and adds one line to each of the lists that name the services:

- `pyproject.toml`: the workspace depends on the package, finds it in the workspace, and
  type-checks it;
- `stafett_cli.config.PROCESSES`: `stafett up` runs it, on the next port;
- `stafett_contracts.catalogue.BY_SERVICE` (and the AsyncAPI document's note on its stream): its
  events and its stream, which the projection follows as it follows every stream there;
- `stafett_runtime.natsaccess.ACCESS`: its NATS user, which owns its stream and appends to the
  access log;
- `deploy/k8s/base/kustomization.yaml`: its manifest and its stream's definition;
- `deploy/k8s/overlays/*/kustomization.yaml`: its image (and, in production, its replicas).

Then it writes what is made from those lists: the contracts' JSON Schemas and golden files
(`python -m stafett_contracts.export`) and deploy's NATS files (`python -m deploy.nats.access`).
What is left is said at the end: `uv lock` and `uv sync` (or `./dev up`) to install the new
package, and `stafett docs`. docs/services.md walks through the result.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from stafett_cli.config import PROCESSES

REPOSITORY = Path(__file__).resolve().parents[3]  # the checkout this command runs from
NAME = re.compile(r"^[a-z][a-z0-9]{1,29}$")
# Names a service may not take: packages and streams the platform already has.
TAKEN = {"runtime", "contracts", "cli", "audit", "web", "evidence", "checkpoints", "keys"}
TEMPLATE_MANIFEST = "meeting"  # the manifest a new service's is made from


class NewServiceError(RuntimeError):
    """The service cannot be made; the message says why, and nothing was written."""


@dataclass(frozen=True)
class Edit:
    """One line put into a file, before the line `before` matches (the first after `after`)."""

    path: str
    line: str
    before: Callable[[str], bool]
    after: Callable[[str], bool] = lambda _: True


def new_service(root: Path, name: str, say: Callable[[str], None] = print) -> None:
    """Scaffold the service `name` in the checkout at `root`; NewServiceError if it cannot be."""
    if not NAME.fullmatch(name):
        raise NewServiceError(
            f"{name!r}: a service's name is 2-30 lower-case letters and digits, a letter first"
        )
    if name in TAKEN or name in PROCESSES or (root / "services" / name).exists():
        raise NewServiceError(f"there is already a service or a part of the platform named {name}")
    words = {"name": name, "Name": name.capitalize(), "NAME": name.upper()}
    files = {path: _sorted(Template(text).substitute(words)) for path, text in _files(root).items()}
    files = {Template(path).substitute(words): text for path, text in files.items()}
    edited = _edited(root, _edits(**words))
    for path, text in {**files, **edited}.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
        say(f"{'edited' if path in edited else 'wrote '}  {path}")
    for module in ("stafett_contracts.export", "deploy.nats.access"):
        _generate(root, module, say)
    port = 8100 + len(PROCESSES) + 1
    say(
        f"\nThe {name} service is wired in. Next:\n"
        "  uv lock && uv sync        (or ./dev up) to install the new package\n"
        f"  .venv/bin/stafett up      runs it at http://127.0.0.1:{port} (with the default ports)\n"
        "  .venv/bin/stafett docs    writes its OpenAPI document and the AsyncAPI document\n"
        f"Then make it yours: services/{name}/src/stafett_{name}/domain.py (see docs/services.md)."
    )


def _sorted(text: str) -> str:
    """Each run of `from stafett_...` imports in order, wherever the service's name sorts."""
    lines = text.splitlines(keepends=True)
    runs = [i for i, line in enumerate(lines) if line.startswith("from stafett_")]
    if runs:
        lines[runs[0] : runs[-1] + 1] = sorted(lines[runs[0] : runs[-1] + 1])
    return "".join(lines)


def _edited(root: Path, edits: list[Edit]) -> dict[str, str]:
    """Each edited file's new text; NewServiceError, before anything is written, if a file no
    longer has the place its line goes."""
    texts: dict[str, list[str]] = {}
    for edit in edits:
        line = edit.line
        text = texts.setdefault(edit.path, (root / edit.path).read_text().splitlines(True))
        start = next((i for i, old in enumerate(text) if edit.after(old)), None)
        at = (
            None
            if start is None
            else next((i for i in range(start, len(text)) if edit.before(text[i])), None)
        )
        if at is None:
            raise NewServiceError(f"{edit.path}: no place found for {line.strip()!r}")
        text.insert(at, line)
    return {path: "".join(text) for path, text in texts.items()}


def _generate(root: Path, module: str, say: Callable[[str], None]) -> None:
    run = subprocess.run(
        [sys.executable, "-m", module], cwd=root, capture_output=True, text=True, timeout=300
    )
    if run.returncode == 0:
        say(f"made     what `python -m {module}` makes")
    else:
        say(f"could not run `python -m {module}` (run it once the tools are installed):")
        say(run.stderr.strip()[-1000:])


def _sorted_after(prefix: str, line: str) -> Callable[[str], bool]:
    """Before the first line starting with `prefix` that sorts after `line`, or else the first
    line after the run of such lines: a sorted list stays sorted."""
    return lambda old: not old.startswith(prefix) or old > line


def _edits(name: str, Name: str, NAME: str) -> list[Edit]:  # noqa: N803 (as the templates say)
    stream_file = f"      - streams/{NAME}.json\n"
    contracts = f"from stafett_contracts.{name} import {Name}Event\n"
    return [
        Edit(
            "pyproject.toml",
            f'    "stafett-{name}",\n',
            before=lambda line: line.startswith("]"),
            after=lambda line: line.startswith("dependencies = ["),
        ),
        Edit(
            "pyproject.toml",
            f"stafett-{name} = {{ workspace = true }}\n",
            before=lambda line: not line.startswith("stafett-"),
            after=lambda line: line.startswith("[tool.uv.sources]"),
        ),
        Edit(
            "pyproject.toml",
            f'    "services/{name}/src",\n',
            before=lambda line: line.startswith("]"),
            after=lambda line: line.startswith("mypy_path = ["),
        ),
        Edit(
            "cli/src/stafett_cli/config.py",
            f'    "{name}",\n',
            before=lambda line: line.startswith("]"),
            after=lambda line: line.startswith("PROCESSES = ["),
        ),
        Edit(
            "contracts/src/stafett_contracts/catalogue.py",
            contracts,
            before=_sorted_after("from stafett_contracts.", contracts),
            after=lambda line: line.startswith("from stafett_contracts."),
        ),
        Edit(
            "contracts/src/stafett_contracts/catalogue.py",
            f'    "{name}": tuple({Name}Event.__subclasses__()),\n',
            before=lambda line: line.startswith('    "audit":'),
            after=lambda line: line.startswith("BY_SERVICE"),
        ),
        Edit(
            "contracts/src/stafett_contracts/asyncapi.py",
            f'    "{name}": "a case\'s {name} entries (aggregate: {Name}, one per case)",\n',
            before=lambda line: line.startswith('    "audit":'),
            after=lambda line: line.startswith("STREAM_NOTES"),
        ),
        Edit(
            "runtime/src/stafett_runtime/natsaccess.py",
            f'    Access("{name}", owns="{NAME}", appends=("AUDIT",)),\n',
            before=lambda line: "`stafett new-service` adds" in line,
        ),
        Edit(
            "deploy/k8s/base/kustomization.yaml",
            f"  - {name}.yaml\n",
            before=lambda line: line.strip() == "- web.yaml",
            after=lambda line: line.startswith("resources:"),
        ),
        Edit(
            "deploy/k8s/base/kustomization.yaml",
            stream_file,
            before=_sorted_after("      - streams/", stream_file),
            after=lambda line: line.startswith("      - streams/"),
        ),
        Edit(
            "deploy/k8s/overlays/dev/kustomization.yaml",
            f"  - {{name: stafett/{name}, newTag: dev}}\n",
            before=lambda line: line.startswith("  - {name: stafett/web,"),
            after=lambda line: line.startswith("images:"),
        ),
        Edit(
            "deploy/k8s/overlays/prod/kustomization.yaml",
            f"  - {{name: stafett/{name}, newName: registry.example.org/stafett/{name}, "
            'newTag: "0.1.0"}\n',
            before=lambda line: line.startswith("  - {name: stafett/web,"),
            after=lambda line: line.startswith("images:"),
        ),
        Edit(  # a command service, as meeting: two replicas, after the others of its kind
            "deploy/k8s/overlays/prod/kustomization.yaml",
            f"  - {{name: stafett-{name}, count: 2}}\n",
            before=lambda line: not line.startswith(("replicas:", "  - {name: stafett-")),
            after=lambda line: line.startswith("replicas:"),
        ),
    ]


def _files(root: Path) -> dict[str, str]:
    """The new files, by path, as templates ($name, $Name, $NAME)."""
    # The manifest is the nearest service's, renamed, on the next port.
    manifest = (root / "deploy" / "k8s" / "base" / f"{TEMPLATE_MANIFEST}.yaml").read_text()
    body = manifest[manifest.index("apiVersion:") :].replace("$", "$$")
    body = re.sub(r"port: 81\d\d,", f"port: {8100 + len(PROCESSES) + 1},", body)
    return {
        "deploy/k8s/base/$name.yaml": MANIFEST_HEAD + body.replace(TEMPLATE_MANIFEST, "$name"),
        "contracts/src/stafett_contracts/$name.py": CONTRACTS,
        "services/$name/pyproject.toml": PYPROJECT,
        "services/$name/src/stafett_$name/__init__.py": INIT,
        "services/$name/src/stafett_$name/domain.py": DOMAIN,
        "services/$name/src/stafett_$name/api.py": API,
        "services/$name/src/stafett_$name/__main__.py": MAIN,
        "services/$name/tests/test_${name}_domain.py": TEST,
    }


MANIFEST_HEAD = """\
# The $name service: appends to $NAME and records each read of case data in AUDIT.
"""

CONTRACTS = '''\
"""The $name stream: a case's $name entries."""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from stafett_contracts.envelope import Event, Text


class ${Name}Event(Event, frozen=True, kw_only=True):
    CONTEXT: ClassVar[str] = "$name"


class ${Name}Recorded(${Name}Event, frozen=True, kw_only=True):
    """A $name entry was recorded about a case."""

    case_id: UUID
    label: Text  # what was recorded, in a few words: never a name or other personal data
'''

PYPROJECT = """\
[project]
name = "stafett-$name"
version = "0.1.0"
description = "Stafett $name service: a case's $name entries."
requires-python = ">=3.11"
dependencies = ["stafett-runtime", "stafett-contracts"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/stafett_$name"]
"""

INIT = '''\
"""The $name service: a case's $name entries (say here, in two lines, what it is for)."""
'''

DOMAIN = '''\
"""A case's $name entries: state, command, decide, evolve; pure (no clock, no network)."""

from uuid import UUID

import msgspec

from stafett_contracts.$name import ${Name}Recorded
from stafett_contracts.inputs import ShortText
from stafett_runtime.commands import AggregateType
from stafett_runtime.domain import Context, envelope


class $Name(msgspec.Struct, frozen=True):
    case_id: UUID
    recorded: int  # how many entries: the version of the aggregate


class Record$Name(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    case_id: UUID
    label: ShortText


def decide(
    state: $Name | None,
    command: Record$Name,
    context: Context,
) -> list[${Name}Recorded]:
    version = 1 if state is None else state.recorded + 1
    fields = envelope(context, command.case_id, version)
    return [${Name}Recorded(**fields, case_id=command.case_id, label=command.label)]


def evolve(state: $Name | None, event: ${Name}Recorded) -> $Name:
    return $Name(case_id=event.case_id, recorded=event.aggregate_version)


$NAME = AggregateType[$Name, Record$Name, Context](
    name="$name", evolve=evolve, decide=decide, creates=(Record$Name,)
)
'''

API = '''\
"""The HTTP API: one route per command, and who may give it."""

from typing import Any, Unpack

from litestar import Litestar, Request, post
from litestar.params import JSONBody

from stafett_$name.domain import Record$Name
from stafett_contracts.identity import STAFF, Actor
from stafett_runtime.auth import require_role
from stafett_runtime.health import Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.service import call, http_app
from stafett_runtime.skeleton import CommandApplication, Hooks, Written

MAY_RECORD = [require_role(*STAFF)]  # who may give the command: people of a unit, by their token


def create_app(app: CommandApplication, kernel: Kernel, **hooks: Unpack[Hooks]) -> Litestar:
    @post("/$name", summary="Record a $name entry about a case", guards=MAY_RECORD)
    async def record(data: JSONBody[Record$Name], request: Request[Actor, Any, Any]) -> Written:
        context = kernel.context(request.user)
        decision = await call(app.commands.handle, data.case_id, data, context)
        return Written(id=data.case_id, version=decision.version)

    return http_app(
        service="$name", kernel=kernel, route_handlers=[record], readiness=Readiness(), **hooks
    )
'''

MAIN = '''\
"""`python -m stafett_$name` runs the $name service on the one service skeleton
(`stafett_runtime.skeleton`); `... openapi` prints its OpenAPI document."""

import sys

from litestar import Litestar

from stafett_$name.api import create_app
from stafett_$name.domain import $NAME
from stafett_runtime.skeleton import CommandApplication, Service, run


def wire(service: Service) -> Litestar:
    app = service.application(CommandApplication($NAME, service.env))  # the $NAME stream
    return create_app(app, service.kernel, **service.hooks)


if __name__ == "__main__":
    sys.exit(run("$name", wire))
'''

TEST = '''\
"""A case's $name entries, decided: given an entry, when another is recorded, then the event
that says so, at the next version."""

from datetime import UTC, datetime
from uuid import uuid4

from stafett_$name.domain import Record$Name, decide, evolve
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import Context

TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service="skole-lia")


def test_a_second_entry_is_recorded_at_the_next_version() -> None:
    case_id = uuid4()
    context = Context(actor=TEACHER, now=datetime.now(UTC), correlation_id="c-1", stream="$NAME")
    [first] = decide(None, Record$Name(case_id=case_id, label="first"), context)

    [second] = decide(evolve(None, first), Record$Name(case_id=case_id, label="next"), context)

    assert (second.aggregate_id, second.aggregate_version) == (case_id, 2)
    assert (second.case_id, second.label, second.actor) == (case_id, "next", TEACHER)
'''
