"""`stafett up` runs the embedded platform, stops cleanly, and continues on the same data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from uuid import UUID

from example_apps import Orders
from stafett_runtime.natsserver import free_port, port_is_free


def free_port_base(count: int = 5) -> int:
    """A port after which `count` ports are free, for the services' HTTP ports."""
    for _ in range(100):
        base = free_port()
        if all(port_is_free("127.0.0.1", base + i) for i in range(1, count + 1)):
            return base
    raise AssertionError("no run of free ports found")


def start_up(data_dir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "stafett_cli.main", "up"],
        env={
            **os.environ,
            "STAFETT_DATA_DIR": str(data_dir),
            "STAFETT_NATS_PORT": str(port),
            "STAFETT_PORT_BASE": str(free_port_base()),
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


def stop_with_ctrl_c(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, rest
    return rest


def save_an_order(nats_url: str) -> UUID:
    app = Orders({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_url})
    try:
        return app.place(lines=3)
    finally:
        app.close()


def order_lines(nats_url: str, order_id: UUID) -> int:
    app = Orders({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_url})
    try:
        lines: int = app.repository.get(order_id).lines
        return lines
    finally:
        app.close()


def test_up_serves_jetstream_then_stops_cleanly_and_continues_on_the_same_data(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    # Given the platform started
    process, screen = start_up(tmp_path / "data", port)
    # Then the screen says where everything is
    assert url in screen
    assert "fsync before every ack" in screen
    assert str(tmp_path / "data" / "logs") in screen
    config = (tmp_path / "data" / "nats" / "nats-server.conf").read_text()
    assert "sync_interval: always" in config
    # And events can be stored through it
    order_id = save_an_order(url)
    # When Ctrl-C is pressed
    assert "stopped." in stop_with_ctrl_c(process)
    # Then nothing is left listening
    assert port_is_free("127.0.0.1", port)
    # And started again, it continues on the same data
    process, _ = start_up(tmp_path / "data", port)
    try:
        assert order_lines(url, order_id) == 3
    finally:
        stop_with_ctrl_c(process)


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
