"""The `stafett` command."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from stafett_cli import platform
from stafett_cli.token import development_token
from stafett_contracts.identity import Role
from stafett_runtime.auth import TokenError


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="stafett",
        description="Stafett: coordinated early help for children at risk, on NATS JetStream.",
    )
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "up",
        help="run the whole system locally (embedded NATS JetStream and every service)",
        description=(
            "Start a local nats-server with JetStream (data in STAFETT_DATA_DIR, default ./var; "
            "port STAFETT_NATS_PORT, default 14222) and every service, until Ctrl-C."
        ),
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
    return root


def _positive_int(value: str) -> int:
    if not value.isdigit() or int(value) == 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "up":
        return platform.up()
    if args.command == "token":
        ttl = timedelta(minutes=args.ttl_minutes)
        try:
            print(development_token(args.person, args.role, args.service, ttl))
        except TokenError as error:
            print(f"stafett token: error: {error}", file=sys.stderr)
            return 2
        return 0
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
