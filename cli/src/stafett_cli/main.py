"""The `stafett` command.

Each command imports what it needs when it runs, not before: `stafett --help` and the
argument parsing of every command import nothing of the platform, the store or the web
framework (the benchmark `python -m bench.cli` measures them).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from stafett_contracts.erasure import ErasureReason
from stafett_contracts.identity import Role

if TYPE_CHECKING:
    from stafett_cli.datafolder import Login
    from stafett_cli.streams import Store

DESCRIPTION = """\
Stafett: coordinated early help for children at risk, on NATS JetStream.

Run everything locally with `stafett up` (add --demo for a demo municipality), then look at it
with `stafett status`, `stafett tail` and `stafett verify`. Every command that reads the streams
connects to NATS_URL, or by default to the server `stafett up` runs (port STAFETT_NATS_PORT,
default 14222), as NATS_USER, or else as the operator user of that server (its password is in
the data folder, STAFETT_DATA_DIR)."""

EPILOG = """\
configuration: environment variables, or one file (stafett.toml in the current folder, or the
file named by STAFETT_CONFIG); see docs/cli.md. Run `stafett COMMAND --help` for each command."""


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="stafett",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run the whole system locally (embedded NATS JetStream and every service)",
        description=(
            "Start a local nats-server with JetStream (data in STAFETT_DATA_DIR, default ./var; "
            "port STAFETT_NATS_PORT, default 14222) and every service (ports from "
            "STAFETT_PORT_BASE + 1, default 8101), wait until all are ready, and keep them "
            "running until Ctrl-C. NATS has a user per service, as in production, and no "
            "anonymous access; the passwords and the children's key-encryption key are made "
            "once in the data folder, beside the municipality directory and the development "
            "register. A service that crashes is restarted. Starting again continues on the "
            "same data."
        ),
    )
    up.add_argument(
        "--demo",
        action="store_true",
        help="load a demo municipality through the services' APIs (once per data folder)",
    )
    up.add_argument(
        "--trace",
        action="store_true",
        help="write every span of every service to STAFETT_DATA_DIR/logs/traces.jsonl, one "
        "JSON line each (for a look at traces without a collector)",
    )

    token = commands.add_parser(
        "token",
        help="print a development bearer token that the local services accept",
        description=(
            "Print a bearer token (JWT) for calling the services' HTTP APIs, signed with the "
            "development key the services read from the same environment: STAFETT_DEV_KEY_FILE, "
            "default STAFETT_DATA_DIR/dev-signing-key.pem, created if missing."
        ),
        epilog=(
            "Roles: employee and unit_leader need --service; guardian, child and auditor take "
            "none; administrator and system may name one. "
            "Example: stafett token --person p-1001 --role employee --service solbakken-skole"
        ),
    )
    token.add_argument("--person", required=True, help="the person id the token names (sub)")
    token.add_argument(
        "--role",
        required=True,
        choices=[str(role) for role in Role],
        metavar="ROLE",
        help=f"the person's role: {', '.join(Role)}",
    )
    token.add_argument("--service", help="the unit or helper service the person acts for")
    token.add_argument(
        "--ttl-minutes",
        type=_positive_int,
        default=480,
        help="how long the token is valid (default: 480, a working day)",
    )

    tail = commands.add_parser(
        "tail",
        help="follow events live, one readable line each (or raw JSON)",
        description=(
            "Follow the events of every stream as they are stored, until Ctrl-C. Streams that "
            "appear later are followed too."
        ),
        epilog=(
            "Examples: stafett tail --type ConcernRaised --type Escalated;  "
            "stafett tail --subject 'case.events.<case id>.*' --json"
        ),
    )
    _nats_option(tail)
    tail.add_argument(
        "--subject",
        default="*.events.>",
        help="only subjects matching this NATS wildcard (default: every event, '*.events.>')",
    )
    tail.add_argument(
        "--type",
        action="append",
        default=[],
        dest="types",
        metavar="TYPE",
        help="only this event type, by name (ConcernRaised) or topic (case.ConcernRaised@1); "
        "repeat for several",
    )
    tail.add_argument("--json", action="store_true", help="print each event as one JSON line")
    tail.add_argument(
        "--from-start", action="store_true", help="show the stored history first, then follow"
    )
    tail.add_argument("--count", type=_positive_int, help="stop after this many events")

    replay = commands.add_parser(
        "replay",
        help="rebuild the read models from the streams, with progress and rate",
        description=(
            "Run the projection service's rebuild (python -m stafett_projection rebuild): build "
            "the read models again from every stream beside the ones in use, then swap them in; "
            "a running projection service switches to them without a restart and answers "
            "queries throughout. Shows a progress bar and the rate in events per second."
        ),
    )
    _nats_option(replay)

    verify = commands.add_parser(
        "verify",
        help="check the streams are a sound, untampered record; non-zero on a fault",
        description=(
            "Check every event stream: every stream the platform keeps is there and denies "
            "deletion; every event decodes against its contract; each aggregate's versions are "
            "1, 2, 3, ... with none missing; no sequence is missing or deleted; every tracking "
            "position points to an event that exists; every message is signed by a published "
            "key of a service that may write it and follows the one before it on its chain; "
            "every signed checkpoint matches its stream (none cut back or altered). Prints a "
            "summary and every fault; exit status 1 if anything is wrong."
        ),
    )
    _nats_option(verify)
    verify.add_argument(
        "--stream", action="append", default=[], help="only this stream (repeat for several)"
    )
    verify.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="unsigned messages written before a stream's first signed one (a store older than "
        "signing) are notes, not faults",
    )
    verify.add_argument(
        "--checkpoints",
        metavar="FILE",
        type=Path,
        help="also compare with the checkpoints kept off-site in FILE (--export-checkpoints)",
    )
    verify.add_argument(
        "--export-checkpoints",
        metavar="FILE",
        type=Path,
        help="write every signed checkpoint and public key to FILE, to keep off-site",
    )

    export = commands.add_parser(
        "export",
        help="one case's history as JSON lines, or its archive document",
        description=(
            "Write one case's history: by default as JSON lines read directly from the streams "
            "(the case's own events, and its consents, meetings, notifications and accesses), "
            "with --archive as the readable relay log the projection renders for the archive."
        ),
    )
    _nats_option(export)
    export.add_argument("case_id", type=UUID, help="the case's id")
    export.add_argument("--output", "-o", help="write to this file instead of standard output")
    export.add_argument(
        "--archive",
        action="store_true",
        help="the archive document from the projection's query API (STAFETT_PROJECTION_URL)",
    )
    export.add_argument(
        "--purpose",
        default="archive",
        help="why you read the case; recorded in its access log (default: archive)",
    )

    status = commands.add_parser(
        "status",
        help="streams, consumers and their lag, parked events, what retention has due",
        description=(
            "Show every stream with its message count and sequences, every consumer with how "
            "many messages it has yet to take (its lag), and how far each service has "
            "processed the streams it follows; the events services parked; and what "
            "retention has due: closed cases awaiting archive delivery, and children due for "
            "shredding, and when."
        ),
    )
    _nats_option(status)

    retry = commands.add_parser(
        "retry",
        help="process a service's parked events again, after a fix",
        description=(
            "Ask the running service to process again the upstream events its policies parked "
            "(those `stafett status` lists): every one, those of one upstream stream, or the one "
            "at POSITION. Each retry is recorded in the service's stream and happens once; an "
            "event that fails again stays parked. Exit status 1 if any is still parked."
        ),
        epilog="Example: stafett retry notify 1234 --upstream case",
    )
    retry.add_argument("service", metavar="SERVICE", help="case or notify")
    retry.add_argument(
        "position",
        type=_positive_int,
        nargs="?",
        help="only the event at this sequence of its upstream stream",
    )
    retry.add_argument(
        "--upstream", help="only events of this service's stream (consent, case, meeting)"
    )
    retry.add_argument(
        "--url",
        help="the service (default: the URL `stafett up` gives it, from STAFETT_PORT_BASE)",
    )

    erase = commands.add_parser(
        "erase",
        help="erase a child's personal data in every case, for good",
        description=(
            "Ask the running case service, as an administrator, to erase the child (by the "
            "population register's pseudonymous id): ChildErased is recorded, without personal "
            "data, and the child's key is deleted, so every piece of the child's personal data "
            "reads as erased everywhere. Erasing a child erased already changes nothing. Exit "
            "status 2 if no case names the child."
        ),
        epilog="Example: stafett erase 6f1c0b52-... --reason erasure_requested --reference 2025/17",
    )
    erase.add_argument("child_id", type=UUID, metavar="CHILD_ID", help="the child's id")
    erase.add_argument(
        "--reason",
        required=True,
        choices=[reason.value for reason in ErasureReason],
        help="why, in one of these words (never free text: the record outlives the child's data)",
    )
    erase.add_argument(
        "--reference", help="a journal or case number in the municipality's records, if any"
    )
    erase.add_argument("--url", help="the case service (default: the URL `stafett up` gives it)")

    docs = commands.add_parser(
        "docs",
        help="write the AsyncAPI and OpenAPI documents under docs/",
        description=(
            "Write docs/asyncapi.json (every stream, subject and event schema, from contracts/) "
            "and docs/openapi/<service>.json (from `python -m stafett_<service> openapi`)."
        ),
    )
    docs.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    docs.add_argument("--dir", help="the docs folder (default: docs/ of this checkout)")

    new_service = commands.add_parser(
        "new-service",
        help="scaffold a new service, wired into the workspace, `up`, NATS and deploy/",
        description=(
            "Write services/NAME (one aggregate, one command, one event, one route, on the "
            "service skeleton), its events in contracts/ and its Kubernetes manifest, and add it "
            "to the lists that name the services: the workspace, `stafett up`, the contracts' "
            "catalogue (which the projection follows), the NATS users and deploy/. "
            "docs/services.md walks through what it made."
        ),
        epilog="Example: stafett new-service feedback",
    )
    new_service.add_argument("name", metavar="NAME", help="lower-case letters and digits")
    new_service.add_argument("--root", help="the checkout (default: this one)")
    return root


def _nats_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--nats",
        help="the NATS server (default: NATS_URL, or the one `stafett up` runs: "
        "nats://127.0.0.1:STAFETT_NATS_PORT)",
    )


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    # nats-py logs each failed connection attempt with a traceback; the command says it once.
    logging.getLogger("nats").addHandler(logging.NullHandler())
    args = parser().parse_args(argv)  # before the configuration: `--help` needs none of it
    from stafett_cli.config import PlatformError

    try:
        _read_config_file()
    except PlatformError as error:
        print(f"stafett: error: {error}", file=sys.stderr)
        return 2
    if "nats" in args and args.nats is None:
        from stafett_cli.streams import default_nats_url

        args.nats = default_nats_url()  # the port may come from the configuration file
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except CommandError as error:
        print(f"stafett {args.command}: error: {error}", file=sys.stderr)
        return 2


def _read_config_file() -> None:
    """Settings from stafett.toml (or STAFETT_CONFIG) count for every command, not only `up`:
    `token` must sign with the key in the configured data folder, `tail` find its NATS port.
    The environment still wins."""
    from stafett_cli.config import PlatformConfig

    config = PlatformConfig.from_env()
    if config.source is None:
        return
    os.environ.setdefault("STAFETT_DATA_DIR", str(config.data_dir))
    os.environ.setdefault("STAFETT_NATS_PORT", str(config.nats_port))
    for name, value in config.service_env.items():
        os.environ.setdefault(name, value)


class CommandError(RuntimeError):
    pass


def _run(args: argparse.Namespace) -> int:
    if args.command == "up":
        from stafett_cli.up import up

        return up(demo=args.demo, trace=args.trace)
    if args.command == "token":
        from stafett_cli.token import development_token, signed_with
        from stafett_runtime.tokens import TokenError

        ttl = timedelta(minutes=args.ttl_minutes)
        try:
            print(development_token(args.person, args.role, args.service, ttl))
            print(signed_with(), file=sys.stderr)
        except TokenError as error:
            raise CommandError(str(error)) from error
        return 0
    if args.command == "tail":
        return _tail(args)
    if args.command == "docs":
        from stafett_cli.docs import docs

        return docs(check=args.check, folder=args.dir)
    if args.command == "replay":
        return _replay(args)
    if args.command == "new-service":
        from stafett_cli.new_service import REPOSITORY, NewServiceError, new_service

        try:
            new_service(Path(args.root) if args.root else REPOSITORY, args.name)
        except NewServiceError as error:
            raise CommandError(str(error)) from error
        return 0
    if args.command == "retry":
        return _retry(args)
    if args.command == "erase":
        return _erase(args)
    return _with_store(args)


def _retry(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stafett_cli.config import SERVICES, PlatformConfig
    from stafett_cli.retry import RetryError, print_outcomes, retry_parked
    from stafett_cli.token import development_token
    from stafett_runtime.tokens import TokenError

    if args.service not in SERVICES:
        raise CommandError(f"no service {args.service!r}: one of {', '.join(SERVICES)}")
    url = args.url or PlatformConfig.from_env().service_url(args.service)
    try:
        administrator = development_token(
            "stafett-cli", "administrator", None, timedelta(minutes=10)
        )
        retried = retry_parked(args.service, url, administrator, args.upstream, args.position)
    except (TokenError, RetryError) as error:
        raise CommandError(str(error)) from error
    return print_outcomes(args.service, retried, Console())


def _erase(args: argparse.Namespace) -> int:
    from stafett_cli.config import PlatformConfig
    from stafett_cli.erase import EraseError, erase_child, said
    from stafett_cli.token import development_token
    from stafett_runtime.tokens import TokenError

    url = args.url or PlatformConfig.from_env().service_url("case")
    try:
        administrator = development_token(
            "stafett-cli", "administrator", None, timedelta(minutes=10)
        )
        erased = erase_child(url, administrator, str(args.child_id), args.reason, args.reference)
    except (TokenError, EraseError) as error:
        raise CommandError(str(error)) from error
    print(said(erased))
    return 0


def _tail(args: argparse.Namespace) -> int:
    import asyncio

    from rich.console import Console

    from stafett_cli.tail import Filter, NotReachableError, Tail

    err = Console(stderr=True)
    login = _login()
    tail = Tail(
        args.nats,
        Filter(subject=args.subject, types=frozenset(args.types)),
        raw_json=args.json,
        from_start=args.from_start,
        count=args.count,
        login=login,
    )
    try:
        asyncio.run(tail.run(lambda line: err.print(line, style="dim", highlight=False)))
    except NotReachableError as error:
        raise _not_reached(args.nats, login) from error
    return 0


def _replay(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stafett_cli.datafolder import service_login
    from stafett_cli.replay import ReplayError, replay

    console = Console(stderr=True)
    environ = {**os.environ, "NATS_URL": args.nats}
    # The rebuild is the projection's own work: on `stafett up`'s server, as the projection.
    projection = None if os.environ.get("NATS_USER") else service_login(_data_dir(), "projection")
    if projection is not None:
        environ.update(projection.env())
    try:
        total = _count_events(args.nats)
        return replay(console, total, environ=environ)
    except ReplayError as error:
        raise CommandError(str(error)) from error


def _count_events(url: str) -> int:
    with _open_store(url) as store:
        return sum(info.state.messages for info in store.event_streams())


def _data_dir() -> Path:
    from stafett_cli.config import PlatformConfig

    return PlatformConfig.from_env().data_dir


def _login() -> Login | None:
    from stafett_cli.datafolder import operator_login

    return operator_login(_data_dir())


def _open_store(url: str) -> Store:
    from eventsourcing.persistence import OperationalError

    from stafett_cli.streams import Store

    login = _login()
    try:
        return Store(url, login)
    except OperationalError as error:
        raise _not_reached(url, login) from error


def _not_reached(url: str, login: Login | None) -> CommandError:
    """Why a command could not use NATS, and what to do about it."""
    import asyncio

    if asyncio.run(_refuses(url, login)):
        who = f"as {login.user}" if login else "without a user"
        return CommandError(
            f"NATS at {url} refused the connection {who}: set NATS_USER and NATS_PASSWORD, "
            "or STAFETT_DATA_DIR to the data folder of `stafett up`"
        )
    return CommandError(
        f"cannot reach NATS at {url}: is `stafett up` running? (or set NATS_URL / --nats)"
    )


async def _refuses(url: str, login: Login | None) -> bool:
    """Whether the server is there but refuses this login: one attempt, no retries (a command
    retries until its timeout, and then knows only that it did not connect)."""
    import asyncio

    import nats

    async def quiet(_: Exception) -> None:
        pass

    try:
        # nats-py tries a server it cannot reach again and again, even told not to reconnect.
        nc = await asyncio.wait_for(
            nats.connect(
                url, allow_reconnect=False, error_cb=quiet, **(login.options() if login else {})
            ),
            2,
        )
    except nats.errors.Error as error:
        return "authorization violation" in str(error).lower()
    except (OSError, TimeoutError):
        return False
    await nc.close()
    return False


def _with_store(args: argparse.Namespace) -> int:
    from rich.console import Console

    from stafett_cli.config import QUERY_SERVICE, PlatformConfig
    from stafett_cli.export import ArchiveError, archive_document, case_history
    from stafett_cli.status import print_status, unwrapped
    from stafett_cli.token import development_token
    from stafett_cli.verify import export_checkpoints, print_verification, verify

    if args.command == "export" and args.archive:
        base = os.environ.get("STAFETT_PROJECTION_URL") or (
            PlatformConfig.from_env().service_url(QUERY_SERVICE)
        )
        auditor = development_token("stafett-cli", "auditor", None, timedelta(minutes=10))
        try:
            _write(args.output, archive_document(base, args.case_id, auditor, args.purpose))
        except ArchiveError as error:
            raise CommandError(str(error)) from error
        return 0
    with _open_store(args.nats) as store:
        if args.command == "status":
            print_status(store, unwrapped())
            return 0
        if args.command == "verify":
            result = verify(
                store,
                set(args.stream) or None,
                allow_unsigned=args.allow_unsigned,
                off_site=args.checkpoints,
            )
            print_verification(result, Console())
            if args.export_checkpoints is not None:
                count = export_checkpoints(store, args.export_checkpoints)
                print(f"{count} checkpoint(s) written to {args.export_checkpoints}")
            return 0 if result.sound else 1
        if args.command == "export":
            lines = case_history(store, args.case_id)
            if not lines:
                raise CommandError(f"no events of case {args.case_id} in any stream")
            _write(args.output, "".join(line.json() + "\n" for line in lines))
            return 0
    raise AssertionError(f"unhandled command {args.command}")


def _write(output: str | None, text: str) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        with open(output, "w") as file:
            file.write(text)


if __name__ == "__main__":
    sys.exit(main())
