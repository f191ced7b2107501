"""The `stafett` command."""

from __future__ import annotations

import argparse
import sys

from stafett_cli import platform


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
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "up":
        return platform.up()
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
