"""A new user's first minutes: `stafett --help` answers at once, importing nothing it does not
need, and `stafett status` written to a file or pipe keeps its tables whole."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest
from rich.table import Table

from stafett_cli import status
from stafett_cli.main import parser


def test_help_and_argument_parsing_import_neither_the_platform_nor_the_web_framework() -> None:
    program = textwrap.dedent(
        """
        import sys
        from stafett_cli.main import main
        try:
            main(["--help"])
        except SystemExit:
            pass
        heavy = ("litestar", "nats", "eventsourcing", "httpx", "stafett_cli.platform", "rich")
        imported = [m for m in sys.modules if m.split(".")[0] in heavy or m in heavy]
        print("imported:" + ",".join(sorted(imported)))
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )

    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "imported:"


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
