"""A new user's first minutes: `stafett --help` answers at once, importing nothing it does not
need, and `stafett status` written to a file or pipe keeps its tables whole."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.table import Table

from stafett_cli import status
from stafett_cli.main import parser

HEAVY = ("litestar", "nats", "eventsourcing", "httpx", "uvicorn", "stafett_cli.platform", "rich")


def imported_by(*arguments: str, environ: dict[str, str] | None = None) -> list[str]:
    """The heavy modules `stafett ARGUMENTS` imports, run in a fresh interpreter."""
    program = textwrap.dedent(
        f"""
        import sys
        from stafett_cli.main import main
        try:
            main({list(arguments)!r})
        except SystemExit:
            pass
        heavy = {HEAVY!r}
        imported = [m for m in sys.modules if m.split(".")[0] in heavy or m in heavy]
        print("imported:" + ",".join(sorted(imported)))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(environ or {})},
    )
    assert run.returncode == 0, run.stderr
    last = run.stdout.strip().splitlines()[-1]
    return [name for name in last.removeprefix("imported:").split(",") if name]


def test_help_and_argument_parsing_import_neither_the_platform_nor_the_web_framework() -> None:
    assert imported_by("--help") == []


def test_a_token_is_minted_without_the_web_framework_nats_or_the_platform(
    tmp_path: Path,
) -> None:
    # The rule: `stafett token` answers at once (issue 19: under 0.5 s), so it imports only the
    # token minting (`stafett_runtime.tokens`) and the configuration, never the services' stack.
    data_folder = {"STAFETT_DATA_DIR": str(tmp_path)}
    imported = imported_by("token", "--person", "p-1", "--role", "guardian", environ=data_folder)

    assert imported == []
    assert (tmp_path / "dev-signing-key.pem").exists()  # and it did mint


def test_status_tables_written_to_a_file_are_not_cut_at_80_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given stdout that is not a terminal (a pipe, a file, a CI log)
    written_to = io.StringIO()
    monkeypatch.setattr(sys, "stdout", written_to)
    console = status.unwrapped()
    table = Table(title="consumers")
    for column in ("stream", "consumer", "filter"):
        table.add_column(column)
    table.add_row("MEETING", "projection-meeting", "meeting.events.>" + ".x" * 60)

    # When a table wider than 80 columns is printed
    console.print(table)

    # Then every cell is whole: nothing wrapped, nothing cut with an ellipsis
    written = written_to.getvalue()
    assert "meeting.events.>" + ".x" * 60 in written
    assert "…" not in written
    assert max(len(line) for line in written.splitlines()) > 80


def test_up_takes_trace_to_write_every_span_to_a_file() -> None:
    args = parser().parse_args(["up", "--demo", "--trace"])

    assert (args.demo, args.trace) == (True, True)
