"""`python -m bench.cli`: how long the `stafett` command takes to start, which a new user feels
first.

Runs `stafett --help` and `stafett token ...` as a user does (a fresh Python process each time,
in a temporary data folder, so the token's key is made once and then read), `ROUNDS` times each,
and prints the median and the slowest beside the target (under 0.5 s), and beside a bare
`python -c pass` on the same machine. Then the modules each imports that cost the most, from
Python's own `-X importtime`, to say where the time goes.

This is a benchmark, not a test: a missed target is reported, not raised.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.5  # seconds
ROUNDS = 7
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "stafett --help": [sys.executable, "-m", "stafett_cli.main", "--help"],
    "stafett token": [
        sys.executable,
        "-m",
        "stafett_cli.main",
        "token",
        "--person",
        "p-1001",
        "--role",
        "guardian",
    ],
}


def timed(command: list[str], environ: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=environ, capture_output=True, check=True, timeout=60)
    return time.perf_counter() - started


def heaviest_imports(command: list[str], environ: dict[str, str], count: int) -> list[str]:
    """The top-level imports that took longest, as `-X importtime` reports them (cumulative)."""
    run = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    rows: list[tuple[int, str]] = []
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        depth_one = name.startswith(" ") and not name.startswith("  ")  # not an import's import
        if depth_one and cumulative.strip().isdigit():  # and not the header line
            rows.append((int(cumulative), name.strip()))
    rows.sort(reverse=True)
    return [f"{micros / 1e6:6.3f} s  {name}" for micros, name in rows[:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--imports", type=int, default=8, help="how many imports to list")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data:
        environ = {**os.environ, "STAFETT_DATA_DIR": data}
        environ.pop("STAFETT_CONFIG", None)
        cwd = Path(data)  # no stafett.toml of the checkout is read
        os.chdir(cwd)
        timed(COMMANDS["stafett token"], environ)  # makes the development key once
        print(f"{'command':<16} {'median':>8} {'slowest':>8}  target < {TARGET} s")
        for name, command in COMMANDS.items():
            times = [timed(command, environ) for _ in range(args.rounds)]
            median = statistics.median(times)
            verdict = "" if name.startswith("python") else ("ok" if median < TARGET else "MISSED")
            print(f"{name:<16} {median:8.3f} {max(times):8.3f}  {verdict}")
        for name in ("stafett --help", "stafett token"):
            print(f"\nwhere `{name}` spends its imports:")
            for row in heaviest_imports(COMMANDS[name], environ, args.imports):
                print(f"  {row}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
