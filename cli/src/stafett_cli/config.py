"""Where `stafett up` keeps its data and which ports its processes listen on: the platform's
configuration, read by every command (`stafett token` signs with the key of the configured data
folder), so it imports nothing but the standard library.

`PROCESSES` is the one list of what `stafett up` runs, in port order; `stafett new-service`
adds to it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What `stafett up` runs, in start order; each listens on STAFETT_PORT_BASE + its position
# (consent 8101, ..., web 8106); the development identity provider on the base itself (8100).
# A new service goes at the end, so no port that people know moves.
PROCESSES = [
    "consent",
    "case",
    "meeting",
    "notify",
    "projection",
    "web",
]
WEB = "web"  # the web app, which has no stream: it calls the services' APIs
SERVICES = [name for name in PROCESSES if name != WEB]  # each with its stream and OpenAPI
QUERY_SERVICE = "projection"  # the one that serves queries (read models)
CONFIG_FILE = "stafett.toml"


class PlatformError(RuntimeError):
    """The platform cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class PlatformConfig:
    """Where the platform keeps its data and listens; from the environment, then stafett.toml.

    The file is STAFETT_CONFIG, or stafett.toml in the current folder if there is one. Its keys
    are the variables' names in lower case without the prefix (`data_dir`, `nats_port`,
    `port_base`, `ready_timeout`), and an `[env]` table passed on to every service (for example
    `STAFETT_LOG_LEVEL = "DEBUG"`). A variable set in the environment wins over the file.
    """

    data_dir: Path
    nats_host: str = "127.0.0.1"
    nats_port: int = 14222  # not 4222, which a system NATS may already use
    port_base: int = 8100
    ready_timeout: float = 60.0
    service_env: Mapping[str, str] = field(default_factory=dict)
    source: Path | None = None  # the configuration file read, if any

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PlatformConfig:
        env = os.environ if environ is None else environ
        source, file = _read_config_file(env)
        settings = {f"STAFETT_{key.upper()}": str(value) for key, value in file.items()}
        settings.pop("STAFETT_ENV", None)
        settings.update({k: v for k, v in env.items() if k.startswith("STAFETT_") and v})
        extra = file.get("env", {})
        if not isinstance(extra, dict):
            raise PlatformError(f"{source}: [env] must be a table of variables")
        return cls(
            data_dir=Path(settings.get("STAFETT_DATA_DIR", "var")).resolve(),
            nats_port=_port(settings, "STAFETT_NATS_PORT", "14222"),
            port_base=_port(settings, "STAFETT_PORT_BASE", "8100", room=len(PROCESSES)),
            ready_timeout=_seconds(settings, "STAFETT_READY_TIMEOUT", "60"),
            service_env={str(k): str(v) for k, v in extra.items()},
            source=source,
        )

    def service_port(self, name: str) -> int:
        return self.port_base + PROCESSES.index(name) + 1

    def service_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.service_port(name)}"

    @property
    def provider_url(self) -> str:
        """The development identity provider, on the port base itself."""
        return f"http://127.0.0.1:{self.port_base}"


def _read_config_file(env: Mapping[str, str]) -> tuple[Path | None, dict[str, Any]]:
    named = env.get("STAFETT_CONFIG")
    path = Path(named) if named else Path(CONFIG_FILE)
    if not path.exists():
        if named:
            raise PlatformError(f"STAFETT_CONFIG={named!r}: no such file")
        return None, {}
    try:
        return path.resolve(), tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PlatformError(f"cannot read {path}: {error}") from error


def _port(env: Mapping[str, str], name: str, default: str, room: int = 0) -> int:
    value = env.get(name, default)
    if not value.isdigit() or not 0 < int(value) < 65536 - room:
        raise PlatformError(f"{name}={value!r} is not a port number (1-{65535 - room})")
    return int(value)


def _seconds(env: Mapping[str, str], name: str, default: str) -> float:
    value = env.get(name, default)
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if seconds <= 0:
        raise PlatformError(f"{name}={value!r} is not a positive number of seconds")
    return seconds
