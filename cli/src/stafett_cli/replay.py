"""`stafett replay`: rebuild the read models from the streams, with a progress bar and the rate.

The rebuild itself belongs to the projection service (`python -m stafett_projection rebuild`);
this runs it as a child process and shows its progress. It runs while the platform serves: the
read models are built beside the ones in use and swapped in when complete, and a running
projection service switches to them by itself (docs/projection.md, "Rebuilding while it
serves"). Progress is read from the rebuild's stdout: lines of JSON, `{"done": <events>,
"total": <messages>}`, or `  CASE: 10000 events (...)` per stream; `rebuilt <n> events ...`
completes the bar; other lines are passed on. The bar counts against the number of messages in
the streams when the rebuild does not say its total.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

PROJECTION = "stafett_projection"
# The projection's own progress lines: "  CASE: 10000 events (25,000/s)".
REBUILT = re.compile(r"^rebuilt (?P<events>\d+) events")
STREAM_PROGRESS = re.compile(r"^\s*(?P<stream>[A-Z][A-Z0-9_]*): (?P<events>\d+) events\b")


class ReplayError(RuntimeError):
    pass


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} events/s")


def rebuild_command() -> list[str]:
    try:
        runnable = importlib.util.find_spec(f"{PROJECTION}.__main__") is not None
    except ModuleNotFoundError:  # not even the package
        runnable = False
    if not runnable:
        raise ReplayError(
            "the projection service is not installed, or cannot be run yet "
            f"(no `python -m {PROJECTION}`): there are no read models to rebuild"
        )
    return [sys.executable, "-m", PROJECTION, "rebuild"]


def replay(
    console: Console,
    total: int,
    command: Sequence[str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Run the rebuild (by default the projection's) and show its progress; 0 when it is done."""
    command = list(command or rebuild_command())
    columns = (
        TextColumn("rebuilding"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("rebuild", total=total or None)
        process = subprocess.Popen(
            command, env=dict(environ), stdout=subprocess.PIPE, text=True, bufsize=1
        )
        assert process.stdout is not None
        per_stream: dict[str, int] = {}
        for line in process.stdout:
            report = _progress(line)
            counted = STREAM_PROGRESS.match(line)
            if report is not None:
                done, reported_total = report
                progress.update(task, completed=done, total=reported_total or total or None)
                continue
            finished = REBUILT.match(line)
            if finished is not None:
                events = int(finished["events"])
                progress.update(task, completed=events, total=events)
            elif counted is not None:  # "  CASE: 10000 events (...)": that stream so far
                per_stream[counted["stream"]] = int(counted["events"])
                progress.update(task, completed=sum(per_stream.values()))
            progress.console.print(line.rstrip("\n"), highlight=False, markup=False)
        code = process.wait()
    if code != 0:
        raise ReplayError(f"the rebuild failed (exit code {code}); see its output above")
    return 0


def _progress(line: str) -> tuple[int, int | None] | None:
    if not line.startswith("{"):
        return None
    try:
        report = json.loads(line)
    except ValueError:
        return None
    if not isinstance(report, dict) or not isinstance(report.get("done"), int):
        return None
    total = report.get("total")
    return report["done"], total if isinstance(total, int) else None
