"""`stafett replay` shows the projection's rebuild progress, and swaps the rebuilt read models in;
`stafett docs` documents are current; `stafett up` reads its one configuration file."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import msgspec
import nats
import pytest
from rich.console import Console

from bench.history import ensure_streams, history, publish
from stafett_cli import replay as replay_module
from stafett_cli.config import PlatformConfig, PlatformError
from stafett_cli.docs import docs
from stafett_cli.replay import ReplayError, replay
from stafett_contracts.asyncapi import document
from stafett_contracts.catalogue import BY_SERVICE, EVENTS
from stafett_contracts.envelope import topic_of, type_name
from stafett_projection.store import Database
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer

FAKE_REBUILD = """
import json
print("dropping the read models")
for done in (0, 500, 1000):
    print(json.dumps({"done": done, "total": 1000}), flush=True)
print("rebuilt")
"""


def test_replay_shows_the_rebuilds_progress_and_passes_its_other_lines_on() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120)

    code = replay(console, total=1000, command=[sys.executable, "-c", FAKE_REBUILD])

    assert code == 0
    text = out.getvalue()
    assert "dropping the read models" in text
    assert "rebuilt" in text
    assert "1000/1000" in text
    assert '{"done"' not in text  # progress lines become the bar, not text


PROJECTION_STYLE_REBUILD = """
for stream, n in (("CASE", 1000), ("CASE", 2000), ("CONSENT", 500)):
    print(f"  {stream}: {n} events (12,345/s)", flush=True)
print("rebuilt 2500 events in 0.20 s (12,500 events/s)")
"""


def test_replay_counts_the_projections_per_stream_progress_lines() -> None:
    out = io.StringIO()
    messages = 3000  # in the streams: events, and tracking records that are no events

    code = replay(
        Console(file=out, width=120), messages, [sys.executable, "-c", PROJECTION_STYLE_REBUILD]
    )

    assert code == 0
    assert "2500/2500" in out.getvalue()
    assert "rebuilt 2500 events" in out.getvalue()


def test_replay_rebuilds_the_projections_read_models_beside_those_in_use_and_swaps_them_in(
    nats_server: NatsTestServer, tmp_path: Path
) -> None:
    # Given events in the streams, and read models in the data folder built from them before
    events = list(history(20))

    async def published() -> None:
        nc = await nats.connect(nats_server.url)
        try:
            await ensure_streams(nc)
            await publish(nc, events)
        finally:
            await nc.close()

    asyncio.run(published())
    (tmp_path / "directory.json").write_bytes(msgspec.json.encode(TEST_DIRECTORY))
    environ = {
        **{k: v for k, v in os.environ.items() if k != "STAFETT_PROJECTION_DATABASE_URL"},
        "NATS_URL": nats_server.url,
        "STAFETT_DATA_DIR": str(tmp_path),
        "STAFETT_DIRECTORY_FILE": str(tmp_path / "directory.json"),
    }
    database = Database.from_env(environ)
    database.open_writer()
    database.close()
    out = io.StringIO()

    # When `stafett replay` runs the projection's own rebuild
    code = replay(Console(file=out, width=120), total=0, environ=environ)

    # Then the bar counted every event, and the rebuilt read models are the ones in use
    assert code == 0
    assert f"{len(events)}/{len(events)}" in out.getvalue()
    assert "swapped in" in out.getvalue()
    assert database.current() == 1
    assert database.generations() == [1]


def test_replay_of_a_failing_rebuild_says_it_failed() -> None:
    with pytest.raises(ReplayError, match="exit code 3"):
        replay(Console(file=io.StringIO()), 10, [sys.executable, "-c", "raise SystemExit(3)"])


def test_replay_without_a_runnable_projection_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_module, "PROJECTION", "stafett_no_such_projection")

    with pytest.raises(ReplayError, match="projection service is not installed"):
        replay_module.rebuild_command()


def test_the_committed_asyncapi_and_openapi_documents_are_current() -> None:
    assert docs(check=True, folder=None) == 0


def test_docs_check_fails_when_a_document_is_stale(tmp_path: Path) -> None:
    assert docs(check=False, folder=str(tmp_path)) == 0
    (tmp_path / "asyncapi.json").write_text("{}\n")

    assert docs(check=True, folder=str(tmp_path)) == 1


def test_asyncapi_has_a_channel_and_a_decodable_example_for_every_event() -> None:
    doc = document()

    assert doc["asyncapi"] == "3.0.0"
    # Each event in the stream of every service that records it (a parked event: in several)
    in_streams = [(service, cls) for service, events in BY_SERVICE.items() for cls in events]
    assert {topic_of(cls) for _, cls in in_streams} == set(EVENTS)
    for service, cls in in_streams:
        name = type_name(cls)
        channel = doc["channels"][f"{service}.{name}"]
        assert channel["address"] == f"{service}.events.{{aggregate_id}}.{name}"
        message = doc["components"]["messages"][f"{service}.{name}"]
        example = message["examples"][0]
        assert example["headers"]["Es-Topic"] == topic_of(cls)
        assert isinstance(msgspec.convert(example["payload"], cls), cls)


def test_the_configuration_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "stafett.toml"
    config.write_text(
        'data_dir = "/srv/stafett"\nnats_port = 15222\nport_base = 9100\n'
        '[env]\nSTAFETT_LOG_LEVEL = "DEBUG"\n'
    )

    read = PlatformConfig.from_env({"STAFETT_CONFIG": str(config), "STAFETT_PORT_BASE": "9200"})

    assert read.data_dir == Path("/srv/stafett")
    assert read.nats_port == 15222
    assert read.service_port("case") == 9202
    assert read.service_env == {"STAFETT_LOG_LEVEL": "DEBUG"}
    assert read.source == config


def test_a_configuration_file_that_is_named_but_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="no such file"):
        PlatformConfig.from_env({"STAFETT_CONFIG": str(tmp_path / "nope.toml")})
