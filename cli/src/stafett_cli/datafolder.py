"""What `stafett up` keeps in its data folder besides the event store, made once and kept:

| file | what | mode |
|---|---|---|
| `nats-users.json` | a password for each NATS user of the access table (`natsaccess`) | 0600 |
| `key-encryption-key` | 32 random bytes, base64: wraps each child's key in the key bucket | 0600 |
| `directory.toml` | the municipality directory (the demo municipality, unless you edit it) | |
| `register.json` | the development population register (empty; the demo fills it) | 0600 |

The passwords and the key are secrets, which in production live in the secret store: here only
their owner may read them, and `stafett up` hands each service its own. The CLI's own tools
connect as the operator user (`admin`) with the password from `nats-users.json`, unless
NATS_USER says otherwise (`operator_login`).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from stafett_cli.municipality import directory_toml
from stafett_runtime.keystore import KEY_ENCRYPTION_KEY_VARIABLE
from stafett_runtime.natsaccess import ADMIN_USER, generate_passwords, users
from stafett_runtime.register import RegisterFile

USERS_FILE = "nats-users.json"
KEY_ENCRYPTION_KEY_FILE = "key-encryption-key"


@dataclass(frozen=True)
class Login:
    """A NATS user and password; replies come to the user's own inbox prefix."""

    user: str
    password: str

    @property
    def inbox_prefix(self) -> str:
        return f"_INBOX.{self.user}"

    def env(self) -> dict[str, str]:
        """The variables a service (or the projection's rebuild) connects with."""
        return {
            "NATS_USER": self.user,
            "NATS_PASSWORD": self.password,
            "NATS_INBOX_PREFIX": self.inbox_prefix,
        }

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `nats.connect`."""
        return {"user": self.user, "password": self.password, "inbox_prefix": self.inbox_prefix}


def nats_passwords(data_dir: Path) -> dict[str, str]:
    """Every NATS user's password: those made before, and new ones for users the table added."""
    path = data_dir / USERS_FILE
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted = {user for user, _ in users()}
    if not wanted <= set(known):
        fresh = generate_passwords()
        known = {user: known.get(user) or fresh[user] for user in sorted(wanted | set(known))}
        write_private(path, json.dumps(known, indent=2) + "\n")
    return known


def operator_login(data_dir: Path, environ: Mapping[str, str] = os.environ) -> Login | None:
    """How the CLI's tools log in to NATS: as NATS_USER if set, else as `stafett up`'s operator
    user when the data folder has its passwords, else anonymously (None)."""
    if environ.get("NATS_USER"):
        return Login(environ["NATS_USER"], environ.get("NATS_PASSWORD") or "")
    path = data_dir / USERS_FILE
    if not path.exists():
        return None
    return Login(ADMIN_USER, json.loads(path.read_text())[ADMIN_USER])


def service_login(data_dir: Path, service: str) -> Login | None:
    """A service's own login, when `stafett up` made the data folder's passwords."""
    path = data_dir / USERS_FILE
    if not path.exists():
        return None
    password = json.loads(path.read_text()).get(service)
    return None if password is None else Login(service, password)


def key_encryption_key(data_dir: Path) -> dict[str, str]:
    """The key-encryption key, made on first use, as the variable the services read."""
    path = data_dir / KEY_ENCRYPTION_KEY_FILE
    if not path.exists():
        write_private(path, base64.b64encode(os.urandom(32)).decode("ascii") + "\n")
    return {KEY_ENCRYPTION_KEY_VARIABLE: path.read_text().strip()}


def write_directory_if_missing(path: Path) -> None:
    """The demo municipality's directory, where there is no directory yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(directory_toml())


def write_register_if_missing(path: Path) -> None:
    """An empty development register, where there is none yet (it names children: 0600)."""
    if not path.exists():
        write_private(path, msgspec.json.encode(RegisterFile()).decode() + "\n")


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(descriptor, "w") as file:  # mkstemp makes it 0600
        file.write(text)
    os.replace(temporary, path)
