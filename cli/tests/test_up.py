"""`stafett up` runs the embedded platform, stops cleanly, and continues on the same data.

No process may outlive it: each test notes the pids of its children (from /proc) and checks that
none is left, after Ctrl-C and after `stafett up` itself is killed. Its NATS, with the services
running, admits no anonymous client and holds only wrapped children's keys (test_up_nats.py
checks the rest of how `stafett up` runs NATS, without the services). A nats-server that dies is
started again on the same data (tests/test_platform_survives_nats_dying.py checks the services
through it).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import nats

from stafett_cli.config import PlatformConfig
from stafett_cli.platform import Platform
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.natsaccess import ADMIN_USER
from stafett_runtime.natsserver import free_port, free_ports, port_is_free

WRAPPED_KEY_BYTES = 12 + 32 + 16  # nonce, key, authentication tag


SERVICE_PORTS = 7  # the identity provider on the base, then the five services and the web app


def free_port_base(count: int = SERVICE_PORTS) -> int:
    """The first of `count` free ports in a row, for `STAFETT_PORT_BASE`."""
    return free_ports(count)


def start_up(
    data_dir: Path, port: int, *arguments: str, port_base: int | None = None
) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "stafett_cli.main", "up", *arguments],
        env={
            **os.environ,
            "STAFETT_DATA_DIR": str(data_dir),
            "STAFETT_NATS_PORT": str(port),
            "STAFETT_PORT_BASE": str(port_base or free_port_base()),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    screen = []
    for line in process.stdout:
        screen.append(line)
        if line.startswith("Press Ctrl-C"):
            return process, "".join(screen)
    raise AssertionError("stafett up ended before it was ready:\n" + "".join(screen))


def children(pid: int) -> dict[int, str]:
    """The live child processes of `pid` and their command lines, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue  # ended meanwhile
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found[int(entry.name)] = command
    return found


def alive(pid: int) -> bool:
    """Running, and not a zombie (a container's init may never reap an orphan)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def left_alive(pids: Iterable[int], within: float = 30.0) -> list[int]:
    """The pids still alive once they have had `within` seconds to end."""
    deadline = time.monotonic() + within
    while (running := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running


def stop_with_ctrl_c(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    return rest


def test_up_refuses_a_taken_port_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "stafett_cli.main", "up"],
            env={**os.environ, "STAFETT_DATA_DIR": str(tmp_path), "STAFETT_NATS_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"port {port} is taken" in result.stderr


def test_up_refuses_a_data_folder_it_cannot_write(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "stafett_cli.main", "up"],
        env={**os.environ, "STAFETT_DATA_DIR": str(not_a_folder / "data")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "is not writable" in result.stderr
    assert "STAFETT_DATA_DIR" in result.stderr


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} before stafett up ended:\n" + "\n".join(lines))


def test_up_with_the_demo_serves_restarts_a_crashed_service_stops_cleanly_and_continues(
    tmp_path: Path,
) -> None:
    # NATS too is started again on its port: the port after the services'
    base = free_port_base(SERVICE_PORTS + 1)
    data, port = tmp_path / "data", base + SERVICE_PORTS
    url = f"nats://127.0.0.1:{port}"
    # Given the platform started with the demo
    process, screen = start_up(data, port, "--demo", port_base=base)
    first = children(process.pid)
    assert any("nats-server" in command for command in first.values())
    # Then the screen says where everything is
    assert url in screen
    assert "fsync before every ack" in screen
    assert str(data / "logs") in screen
    assert f"http://127.0.0.1:{base + 2}/schema" in screen  # the case service's API docs
    assert str(data / "directory.toml") in screen
    assert str(data / "register.json") in screen
    assert "sync_interval: always" in (data / "nats" / "nats-server.conf").read_text()
    # And NATS admits nobody anonymously, and holds the children's keys only wrapped
    assert asyncio.run(anonymous_connection_refused(url))
    assert asyncio.run(stored_key_sizes(url, data)) == {WRAPPED_KEY_BYTES}
    # And the demo's cases stand at their levels, as the case service itself says
    assert "demo: loaded 6 cases" in screen
    cases = json.loads((data / "demo-loaded").read_text())["cases"]
    ella = read_case(base, data, cases["ella"], "rektor-lia", "skole-lia")
    assert (ella["level"], ella["closed"]) == (1, True)
    jonas = read_case(base, data, cases["jonas"], "rektor-fjell", "skole-fjell")
    assert jonas["level"] == 3
    assert set(jonas["services"]) == {"skole-fjell", "bup", "ppt"}
    # And jonas's responsibility group has met, decided, and heard from his mother
    (group,) = read_meetings(base, data, cases["jonas"], "koordinator-fjell", "skole-fjell")
    assert group["held_at"] is not None
    assert [d["kind"] for d in group["decisions"].values()] == ["continue"]
    assert group["feedback_from"] == ["mor-jonas"]
    # And the invitations to it arrive in the development outbox, with a calendar invitation
    assert str(data / "mail") in screen
    invitation = wait_for_invitation(data / "mail", "mor-jonas@", within=90)
    assert "BEGIN:VEVENT" in invitation
    # And all along, every service did only what its own NATS user may (nats-server logs each
    # publication or subscription it refuses as a "Publish/Subscription Violation")
    assert "Violation" not in (data / "logs" / "nats-server.log").read_text()

    # When the case service crashes
    (case_pid,) = [pid for pid, command in first.items() if "stafett_case" in command]
    os.kill(case_pid, signal.SIGKILL)
    # Then the platform says so, starts it again, and it serves the same data
    said = read_until(process, "case is ready again")
    assert "case exited with code -9; restarting it in 1 s" in "\n".join(said)
    assert read_case(base, data, cases["ella"], "rektor-lia", "skole-lia")["closed"]

    # When Ctrl-C is pressed, no process is left, and nothing listens
    restarted = children(process.pid)
    assert "stopped." in stop_with_ctrl_c(process)
    assert left_alive({**first, **restarted}, within=0) == []
    assert port_is_free("127.0.0.1", port)

    # When started again with --demo, it continues on the same data, loads no demo twice, and
    # lists the demo's cases again
    process, screen = start_up(data, port, "--demo", port_base=base)
    assert "demo: already loaded" in screen
    assert all(case_id in screen for case_id in cases.values())
    # And `stafett verify`, as the operator, finds the record sound
    verify = subprocess.run(
        [sys.executable, "-m", "stafett_cli.main", "verify"],
        env={**os.environ, "NATS_URL": url, "STAFETT_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "OK: " in verify.stdout

    # When stafett up itself is killed (SIGKILL: no chance to stop anything)
    started = children(process.pid)
    process.kill()
    process.wait()
    # Then its services and nats-server end too
    assert left_alive(started) == []


async def anonymous_connection_refused(url: str) -> bool:
    try:
        nc = await nats.connect(url, allow_reconnect=False, connect_timeout=5)
    except nats.errors.Error as error:
        return "authorization violation" in str(error).lower()
    await nc.close()
    return False


async def stored_key_sizes(url: str, data: Path) -> set[int]:
    """The sizes of the children's keys in the bucket, read as the operator."""
    password = json.loads((data / "nats-users.json").read_text())["admin"]
    nc = await nats.connect(url, user="admin", password=password, allow_reconnect=False)
    try:
        kv = await nc.jetstream().key_value("CHILD_KEYS")
        return {len((await kv.get(child)).value or b"") for child in await kv.keys()}
    finally:
        await nc.close()


def read_case(base: int, data: Path, case_id: str, leader: str, unit: str) -> dict[str, Any]:
    key = DevelopmentKey.load_or_create(data / "dev-signing-key.pem")
    token = key.mint(Actor(person=leader, role=Role.UNIT_LEADER, service=unit))
    answer = httpx.get(
        f"http://127.0.0.1:{base + 2}/cases/{case_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    case: dict[str, Any] = answer.json()["case"]
    return case


def wait_for_invitation(outbox: Path, to: str, within: float) -> str:
    """The calendar part of the first invitation to `to` in the outbox, once notify sent it."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for mail in sorted(outbox.glob(f"*{to}*.eml")):
            message = email.message_from_bytes(mail.read_bytes(), policy=email.policy.default)
            for part in message.walk():
                if part.get_content_type() == "text/calendar":
                    return str(part.get_content())
        time.sleep(0.5)
    raise AssertionError(f"no invitation to {to} in {outbox} within {within:g} s")


def read_meetings(
    base: int, data: Path, case_id: str, person: str, unit: str
) -> list[dict[str, Any]]:
    key = DevelopmentKey.load_or_create(data / "dev-signing-key.pem")
    token = key.mint(Actor(person=person, role=Role.EMPLOYEE, service=unit))
    answer = httpx.get(
        f"http://127.0.0.1:{base + 3}/cases/{case_id}/meetings",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    meetings: list[dict[str, Any]] = answer.json()
    return meetings


def test_up_refuses_a_taken_service_port_naming_the_setting(tmp_path: Path) -> None:
    base = free_port_base()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 2))  # the case service's port
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "stafett_cli.main", "up"],
            env={
                **os.environ,
                "STAFETT_DATA_DIR": str(tmp_path),
                "STAFETT_NATS_PORT": str(free_port()),
                "STAFETT_PORT_BASE": str(base),
            },
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"port {base + 2} is taken" in result.stderr
    assert "STAFETT_PORT_BASE" in result.stderr


def test_a_nats_server_that_dies_is_started_again_on_the_same_data_with_a_growing_pause(
    tmp_path: Path,
) -> None:
    # Given stafett up's nats-server, its streams made, under the platform's supervision
    said: list[str] = []
    platform = Platform(
        PlatformConfig(data_dir=tmp_path / "data", nats_port=free_port()), say=said.append
    )
    platform.start_nats()
    supervising = threading.Thread(target=platform.supervise)
    supervising.start()
    try:
        for crash, pause in ((1, "1 s"), (2, "2 s")):
            # When it dies (SIGKILL), twice in a row
            ours = str(platform.nats.config_file)  # other tests' servers may run beside it
            (server,) = [pid for pid, cmd in children(os.getpid()).items() if ours in cmd]
            os.kill(server, signal.SIGKILL)
            # Then the platform says so and starts it again, after a pause that doubles
            wait_for_said(said, "nats-server is back", times=crash)
            assert f"nats-server exited with code -9; restarting it in {pause}" in "\n".join(said)
        # And it serves the same data: the streams made before are there
        assert "CASE" in asyncio.run(stream_names(platform))
    finally:
        platform.request_stop()
        supervising.join(timeout=30)
        platform.stop()
    assert port_is_free("127.0.0.1", platform.config.nats_port)


def wait_for_said(said: list[str], line: str, times: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while sum(line in s for s in said) < times:
        assert time.monotonic() < deadline, f"{line!r} not said {times} times: {said}"
        time.sleep(0.1)


async def stream_names(platform: Platform) -> list[str]:
    nc = await nats.connect(
        platform.nats.url, **platform.login(ADMIN_USER).options(), allow_reconnect=False
    )
    try:
        return [info.config.name or "" for info in await nc.jetstream().streams_info()]
    finally:
        await nc.close()
