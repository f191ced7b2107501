"""The projection: rebuild rate beside the raw pull-fetch rate of the same streams, and the
latency from an HTTP command to the change being visible in a query, at 100 commands/s.

    python -m bench.projection [--quick] [--events N]

Only public entry points: the rebuild is `python -m stafett_projection rebuild` (it prints its
own rate, which is what is compared, so the process's start is not counted), the latency is
measured over the services' HTTP APIs, each service its own process.

Targets: rebuild >= 30% of raw fetch (SQLite); p99 command-to-visible <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import nats

from bench import raw, services
from bench.history import ensure_streams, history, publish
from bench.stats import Rate, latency_of
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.natsserver import NatsServer

REBUILD_RATIO_TARGET = 0.30
P99_MS_TARGET = 100.0
STREAMS = ("CASE", "CONSENT", "MEETING", "NOTIFY")
UNIT = "barnehage-solsikke"
EMPLOYEE = Actor(person="ansatt-1", role=Role.EMPLOYEE, service=UNIT)


async def _rebuild_vs_raw(url: str, events: int, tmp: Path) -> dict[str, Any]:
    nc = await nats.connect(url)
    try:
        await ensure_streams(nc)
        generated = list(history(events // 13 + 1))[:events]
        await publish(nc, generated, in_flight=1000)
        counts = {s: (await nc.jetstream().stream_info(s)).state.messages for s in STREAMS}
    finally:
        await nc.close()
    raw_rates = [
        await raw.fetch_replay(url, s, f"{s.lower()}.events.>", counts[s]) for s in STREAMS
    ]
    raw_rate = Rate(sum(r.events for r in raw_rates), sum(r.seconds for r in raw_rates))
    rebuilt = await asyncio.to_thread(_rebuild, url, tmp)
    ratio = rebuilt.per_second / raw_rate.per_second
    return {
        "events": len(generated),
        "raw_fetch": raw_rate.as_json(),
        "rebuild_sqlite": rebuilt.as_json(),
        "ratio": round(ratio, 3),
        "target": {"at_least": REBUILD_RATIO_TARGET, "met": ratio >= REBUILD_RATIO_TARGET},
    }


_REBUILT = re.compile(r"rebuilt (\d+) events in ([\d.]+) s")


def _rebuild(url: str, tmp: Path) -> Rate:
    """`python -m stafett_projection rebuild` into a fresh SQLite database: the rate it reports
    (its own clock, from its first read to the swap, without the process's start)."""
    data_dir = tmp / "rebuild"
    data_dir.mkdir()
    services.municipality(data_dir, 0)
    done = subprocess.run(
        [sys.executable, "-m", "stafett_projection", "rebuild"],
        env=services.service_environment(url, data_dir),
        capture_output=True,
        text=True,
        timeout=900,
    )
    found = _REBUILT.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"rebuild failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return Rate(int(found[1]), float(found[2]))


async def _latency(
    case_url: str,
    projection_url: str,
    key: DevelopmentKey,
    children: list[str],
    seconds: float,
    rate: float = 100.0,
) -> dict[str, Any]:
    # aiohttp, not httpx: at 200 requests/s httpx took most of a core here, and a load generator
    # that falls behind measures itself, not the services.
    headers = {"Authorization": f"Bearer {key.mint(EMPLOYEE)}"}
    connector = aiohttp.TCPConnector(limit=200)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(headers=headers, connector=connector, timeout=timeout) as http:
        cases = []
        for child_id in children:  # many cases, each with a modest history, as in a municipality
            body = {"child_id": child_id, "concern": "Trekker seg unna i lek."}
            async with http.post(f"{case_url}/cases", json=body) as answer:
                answer.raise_for_status()
                cases.append((await answer.json())["id"])
        samples: list[float] = []
        commands: list[float] = []
        after: list[float] = []
        failures = 0

        async def one(case_id: str) -> None:
            nonlocal failures
            started = time.perf_counter()
            try:
                await _command_then_query(started, case_id)
            except (aiohttp.ClientError, TimeoutError):
                failures += 1

        async def _command_then_query(started: float, case_id: str) -> None:
            nonlocal failures
            url = f"{case_url}/cases/{case_id}/note-bright-spot"
            async with http.post(url, json={"note": "Lo i dag."}) as answer:
                if answer.status != 201:
                    failures += 1
                    return
                version = (await answer.json())["version"]
            answered = time.perf_counter()
            url = f"{projection_url}/cases/{case_id}/relay-log"
            async with http.get(url, params={"min_version": str(version)}) as seen:
                log = await seen.json() if seen.status == 200 else {}
            entries = log.get("entries", [])
            if not any(
                e["stream"] == "CASE" and e["event"]["aggregate_version"] == version
                for e in entries
            ):
                failures += 1
                return
            visible = time.perf_counter()
            commands.append(answered - started)
            after.append(visible - answered)
            samples.append(visible - started)

        tasks = []
        total = int(seconds * rate)
        begin = time.perf_counter()
        for i in range(total):
            # Each case gets one command at a time, so the case service never sees a conflict.
            await asyncio.sleep(max(0.0, begin + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(cases[i % len(cases)])))
            if len(tasks) >= len(cases):
                await tasks[-len(cases)]
        await asyncio.gather(*tasks)
        achieved = total / (time.perf_counter() - begin)
    latency = latency_of(samples)
    return {
        **latency.as_json(),
        "commands_per_second": round(achieved, 1),
        # Samples in the order they completed: a drift from first to last quarter means the
        # services fell behind the offered rate, not that single commands were slow.
        "first_quarter": latency_of(samples[: len(samples) // 4]).as_json(),
        "last_quarter": latency_of(samples[-len(samples) // 4 :]).as_json(),
        "command_alone": latency_of(commands).as_json(),
        "answered_to_visible": latency_of(after).as_json(),
        "failures": failures,
        "target": {"p99_ms_at_most": P99_MS_TARGET, "met": latency.p99_ms <= P99_MS_TARGET},
    }


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_projection(
    quick: bool = False,
    events: int | None = None,
    rate: float = 100.0,
    skip_rebuild: bool = False,
    sync_always: bool = True,
) -> dict[str, Any]:
    events = events or (5_000 if quick else 50_000)
    with tempfile.TemporaryDirectory(prefix="stafett-bench-projection-") as name:
        tmp = Path(name)
        rebuild_figures: dict[str, Any] = {}
        if not skip_rebuild:
            server = NatsServer(tmp / "nats-rebuild")
            server.start()
            try:
                rebuild_figures = asyncio.run(_rebuild_vs_raw(server.url, events, tmp))
            finally:
                server.stop()
            print(f"rebuild: {rebuild_figures}", file=sys.stderr, flush=True)
        server = NatsServer(tmp / "nats-latency", sync_always=sync_always)
        server.start()
        processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        cpu: dict[str, float] = {}  # each service's CPU time over the run, start-up included
        try:
            key = DevelopmentKey.load_or_create(tmp / "dev-signing-key.pem")
            children = services.municipality(tmp, 200)
            # The case service follows the consent stream, which the consent service makes.
            processes.append(("consent", services.start("consent", server.url, tmp)[0]))
            case, case_url = services.start("case", server.url, tmp)
            processes.append(("case", case))
            projection, projection_url = services.start("projection", server.url, tmp)
            processes.append(("projection", projection))
            latency = asyncio.run(
                _latency(
                    case_url, projection_url, key, children, seconds=3 if quick else 20, rate=rate
                )
            )
        finally:
            for name, process in processes:
                cpu[name] = round(_cpu_seconds(process.pid), 1)
                if process.poll() is not None:  # it died: say why
                    print(f"{process.args!r} exited with {process.returncode}:", file=sys.stderr)
                    for log in tmp.glob("*.log"):
                        print(log.read_text()[-3000:], file=sys.stderr)
                services.stop(process)
            server.stop()
    return {
        "rebuild": rebuild_figures,
        "command_to_query_latency": latency,
        # The machine is shared: how busy it was says how far to trust the latency.
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpu_seconds": cpu,
    }


def describe(figures: dict[str, Any]) -> str:
    r, lat = figures["rebuild"], figures["command_to_query_latency"]
    alone = lat["command_alone"]
    return "\n".join(
        [
            f"projection rebuild (SQLite): {r['rebuild_sqlite']['per_second']:,.0f} events/s vs"
            f" raw pull fetch {r['raw_fetch']['per_second']:,.0f}/s = {r['ratio']:.0%}"
            f" (target >= {REBUILD_RATIO_TARGET:.0%}: {_met(r)}) over {r['events']:,} events",
            f"command -> visible in query at {lat['commands_per_second']} commands/s:"
            f" median {lat['median_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms"
            f" (target p99 <= {P99_MS_TARGET:.0f} ms: {_met(lat)}), {lat['samples']} samples,"
            f" {lat['failures']} failures; the command alone: median {alone['median_ms']:.1f} ms,"
            f" p99 {alone['p99_ms']:.1f} ms; from its answer to visible: median"
            f" {lat['answered_to_visible']['median_ms']:.1f} ms, p99"
            f" {lat['answered_to_visible']['p99_ms']:.1f} ms; first quarter of the run: median"
            f" {lat['first_quarter']['median_ms']:.1f} ms, p99 {lat['first_quarter']['p99_ms']:.1f}"
            f" ms; last quarter: median {lat['last_quarter']['median_ms']:.1f} ms, p99"
            f" {lat['last_quarter']['p99_ms']:.1f} ms; load average {figures['load_average']};"
            f" CPU seconds {figures['cpu_seconds']}",
        ]
    )


def _met(figures: dict[str, Any]) -> str:
    return "met" if figures["target"]["met"] else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.projection", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--events", type=int)
    parser.add_argument("--rate", type=float, default=100.0, help="commands per second")
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--lazy", action="store_true", help="nats-server without fsync-always")
    args = parser.parse_args(argv)
    figures = bench_projection(
        args.quick, args.events, args.rate, args.latency_only, sync_always=not args.lazy
    )
    print(describe(figures) if figures["rebuild"] else figures["command_to_query_latency"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
