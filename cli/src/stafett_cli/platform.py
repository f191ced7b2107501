"""The embedded platform: a local nats-server and every service, as separate processes.

Data lives in one folder (default `./var`): the JetStream store under `nats/`, logs under `logs/`,
and the files of `datafolder` (NATS passwords, the key-encryption key, the directory, the
register). Starting again continues on the same data. A service that exits unexpectedly is
started again, after a pause that doubles with each crash in a row (1 s up to 30 s), and the
screen says so. So is nats-server, on the same data; the services are not restarted for it:
they answer 503 while it is away and reconnect by themselves when it is back.

NATS runs as in production (`stafett_runtime.natsaccess`): every service connects as its own
user with its own permissions, the CLI's tools as the operator user, and nobody anonymously.
Before any service starts, the operator user creates the streams (as deploy's Job does) and wraps
any child's key stored before there was a key-encryption key.

Every child process is asked by the kernel to stop (SIGTERM) when `stafett up` itself dies, even
by SIGKILL (Linux `PR_SET_PDEATHSIG`), so no service or nats-server is left behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats

from stafett_cli.config import (
    PROCESSES,
    QUERY_SERVICE,
    SERVICES,
    WEB,
    PlatformConfig,
    PlatformError,
)
from stafett_cli.datafolder import (
    KEY_ENCRYPTION_KEY_FILE,
    USERS_FILE,
    Login,
    key_encryption_key,
    nats_passwords,
    write_directory_if_missing,
    write_register_if_missing,
)
from stafett_cli.idp.settings import Client, DevelopmentProvider, web_client
from stafett_cli.outbox import Outbox
from stafett_runtime import directory, register
from stafett_runtime.keystore import ChildKeys, KeyStoreError
from stafett_runtime.natsaccess import ADMIN_USER, authorization_block, create_missing_streams
from stafett_runtime.natsserver import NatsServer, NatsServerError, port_is_free

FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 30.0  # a service that ran this long before it died starts a fresh backoff
LIVENESS_EVERY = 5.0  # seconds between two liveness checks of a running service
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass
class Backoff:
    """How long a process that died waits to start again: 1 s, doubling with each crash in a row
    up to 30 s; one that ran STABLE_AFTER seconds before it died starts a fresh count."""

    crashes_in_a_row: int = 0

    def delay_after(self, ran: float) -> float:
        """The pause before the next start, for a process that died after running `ran` s."""
        self.crashes_in_a_row = 1 if ran >= STABLE_AFTER else self.crashes_in_a_row + 1
        return min(FIRST_RESTART_DELAY * 2.0 ** (self.crashes_in_a_row - 1), MAX_RESTART_DELAY)


def die_with_parent() -> None:
    """Run in the child before exec: the kernel sends SIGTERM when the parent thread dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class ServiceProcess:
    """One service, run as `python -m stafett_<name>`, restarted when it dies."""

    name: str
    env: dict[str, str]
    log_file: Path
    url: str
    command: tuple[str, ...] = ()  # `python -m stafett_<name>` unless given
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    started_at: float = 0.0
    restart_at: float | None = None  # when a crashed service is due to start again
    awaiting_ready: bool = False
    live_checked_at: float = 0.0

    @staticmethod
    def is_runnable(name: str) -> bool:
        try:
            return importlib.util.find_spec(f"stafett_{name}.__main__") is not None
        except ModuleNotFoundError:  # not even the package
            return False

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                list(self.command or (sys.executable, "-m", f"stafett_{self.name}")),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the platform, which stops us in order
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        self.started_at = time.monotonic()
        self.restart_at = None
        self.awaiting_ready = True

    def exited(self) -> int | None:
        """The exit code if the process has ended (and is not already due to restart)."""
        if self.process is None or self.restart_at is not None:
            return None
        return self.process.poll()

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def failure(self) -> str | None:
        """Why the service says it cannot recover (its liveness check fails), if it does.

        A service that does not answer is starting or stopping: that is no failure of its own.
        """
        try:
            answer = httpx.get(f"{self.url}/health/live", timeout=2)
        except httpx.HTTPError:
            return None
        return None if answer.status_code != 503 else answer.text[:300]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Platform:
    def __init__(self, config: PlatformConfig, say: Callable[[str], None] = print) -> None:
        self.config = config
        self.say = say
        self.logs = config.data_dir / "logs"
        self.nats = NatsServer(
            store_dir=config.data_dir / "nats",
            host=config.nats_host,
            port=config.nats_port,
            log_file=self.logs / "nats-server.log",
            preexec=die_with_parent if sys.platform == "linux" else None,
        )
        self.services: list[ServiceProcess] = []
        self._nats_backoff = Backoff()
        self._nats_started_at = 0.0
        self._nats_restart_at: float | None = None  # when nats-server, having exited, starts again
        self._stopping = threading.Event()
        settings = {**os.environ, **config.service_env}
        # Mail stays on this machine unless a real SMTP server is configured for notify.
        configured = any(
            k in settings for k in ("STAFETT_NOTIFY_SMTP_HOST", "STAFETT_NOTIFY_SMTP_PORT")
        )
        self.outbox = None if configured else Outbox(config.data_dir / "mail")
        # Where the services find the directory and the register: the data folder's own files,
        # unless the configuration names others (or the register's gateway).
        self.directory_file = Path(
            settings.get("STAFETT_DIRECTORY_FILE") or config.data_dir / directory.FILE_NAME
        ).resolve()
        self.register_url = settings.get("STAFETT_REGISTER_URL") or None
        self.register_file = (
            None
            if self.register_url
            else Path(
                settings.get("STAFETT_REGISTER_FILE") or config.data_dir / register.FILE_NAME
            ).resolve()
        )
        self._passwords: dict[str, str] = {}
        self._key_encryption: dict[str, str] = {}

    @property
    def runnable(self) -> list[str]:
        return [name for name in PROCESSES if ServiceProcess.is_runnable(name)]

    def start(self) -> None:
        self._check_data_dir()
        self._check_port(self.config.nats_port, "STAFETT_NATS_PORT")
        self._check_port(self.config.port_base, "STAFETT_PORT_BASE")  # the identity provider
        for name in self.runnable:
            self._check_port(self.config.service_port(name), "STAFETT_PORT_BASE")
        self.start_nats()
        self._start_services()
        self._wait_until_ready()

    def start_nats(self) -> None:
        """nats-server with the access table's users, the streams made and the stored keys
        wrapped: everything the services need before the first of them starts."""
        data = self.config.data_dir
        self.logs.mkdir(parents=True, exist_ok=True)
        self._passwords = nats_passwords(data)
        self._key_encryption = key_encryption_key(data)
        self.nats.extra_config = authorization_block(self._passwords)
        write_directory_if_missing(self.directory_file)
        if self.register_file is not None:
            write_register_if_missing(self.register_file)
        try:
            self.nats.start()
            self._nats_started_at = time.monotonic()
            asyncio.run(self._make_streams_and_wrap_keys())
        except (NatsServerError, KeyStoreError, nats.errors.Error) as error:
            raise PlatformError(str(error)) from error

    def login(self, user: str) -> Login:
        """A NATS user's login on this platform's server (once it has started)."""
        return Login(user, self._passwords[user])

    async def _make_streams_and_wrap_keys(self) -> None:
        nc = await nats.connect(
            self.nats.url, **self.login(ADMIN_USER).options(), allow_reconnect=False
        )
        try:
            await create_missing_streams(nc)
            keys = await ChildKeys.bind(nc, environ=self._key_encryption)
            await keys.wrap_stored_keys()
        finally:
            await nc.close()

    def _start_services(self) -> None:
        env = {
            **os.environ,
            **self.config.service_env,
            "NATS_URL": self.nats.url,
            "STAFETT_DATA_DIR": str(self.config.data_dir),
            "STAFETT_DIRECTORY_FILE": str(self.directory_file),
            **self._key_encryption,
        }
        if self.register_file is not None:
            env["STAFETT_REGISTER_FILE"] = str(self.register_file)
        if self.outbox is not None:
            self.outbox.start()
            env.update(STAFETT_NOTIFY_SMTP_HOST=self.outbox.host)
            env.update(STAFETT_NOTIFY_SMTP_PORT=str(self.outbox.port))
        # People sign in at the development provider; the services trust it as a real one.
        web_url = self.config.service_url(WEB)
        client = web_client(self.config.data_dir, f"{web_url}/auth/callback", f"{web_url}/")
        provider = DevelopmentProvider(self.config.provider_url, (client,))
        env.update(provider.trusted_by_services(env))
        env["STAFETT_NOTIFY_LINK_BASE"] = web_url  # every notification's link lands in the web app
        self._start(
            ServiceProcess(
                "identity-provider",
                {**env, **provider.environment()},
                self.logs / "identity-provider.log",
                self.config.provider_url,
                command=provider.command,
            )
        )
        for name in self.runnable:
            process_env = {**env, "STAFETT_HTTP_PORT": str(self.config.service_port(name))}
            if name == WEB:
                process_env.update(self._web_env(web_url, client))
            else:
                process_env.update(self.login(name).env())
            self._start(
                ServiceProcess(
                    name, process_env, self.logs / f"{name}.log", self.config.service_url(name)
                )
            )

    def _start(self, process: ServiceProcess) -> None:
        process.start()
        self.services.append(process)

    def _web_env(self, web_url: str, client: Client) -> dict[str, str]:
        """The web app signs people in at the provider and talks to the services' APIs."""
        urls = {f"STAFETT_{s.upper()}_URL": self.config.service_url(s) for s in SERVICES}
        return {
            **urls,
            "STAFETT_WEB_URL": web_url,
            "STAFETT_OIDC_ISSUER": self.config.provider_url,
            "STAFETT_OIDC_CLIENT_ID": client.client_id,
            "STAFETT_OIDC_CLIENT_SECRET": client.client_secret or "",
        }

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.config.ready_timeout
        waiting = list(self.services)
        while waiting:
            if self._stopping.is_set():
                raise PlatformError("stopped while starting")
            for service in list(waiting):
                code = service.process.poll() if service.process else None
                if code is not None:
                    raise PlatformError(
                        f"{service.name} exited with {code} while starting; "
                        f"the end of {service.log_file}:\n{service.log_tail()}"
                    )
                if service.ready():
                    service.awaiting_ready = False
                    waiting.remove(service)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(s.name for s in waiting)
                raise PlatformError(
                    f"not ready within {self.config.ready_timeout:g} s: {names} "
                    f"(see {self.logs}; more time with STAFETT_READY_TIMEOUT)"
                )
            if waiting:
                self._stopping.wait(0.2)

    def _check_port(self, port: int, setting: str) -> None:
        if not port_is_free(self.config.nats_host, port):
            raise PlatformError(
                f"port {port} is taken: stop what uses it, or choose another with {setting}"
            )

    def _check_data_dir(self) -> None:
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.config.data_dir):
                pass
        except OSError as error:
            raise PlatformError(
                f"the data folder {self.config.data_dir} is not writable ({error.strerror}); "
                "choose another with STAFETT_DATA_DIR"
            ) from error

    def screen(self) -> str:
        running = {s.name: s for s in self.services}
        query = (
            f"{self.config.service_url(QUERY_SERVICE)}"
            if QUERY_SERVICE in running
            else "not built yet (the projection service)"
        )
        data = self.config.data_dir
        register_source = (
            f"{self.register_url}  (the register's gateway)"
            if self.register_url
            else f"{self.register_file}  (development population register)"
        )
        web = running.get(WEB)
        lines = [
            "Stafett is running (embedded).",
            "",
            f"  open            {web.url if web else 'the web app is not built'}  "
            "(sign in as any demo person)",
            f"  sign-in         {self.config.provider_url}  (development OpenID Connect provider)",
            "",
            f"  NATS JetStream  {self.nats.url}  (a user per service; the CLI connects as admin)",
            f"  event store     {self.nats.store_dir / 'jetstream'} (fsync before every ack)",
            f"  query API       {query}",
            f"  logs            {self.logs}  (one file per service, JSON lines)",
            f"  directory       {self.directory_file}  (units and their leaders)",
            f"  register        {register_source}",
            f"  secrets         {data / USERS_FILE}, {data / KEY_ENCRYPTION_KEY_FILE}",
        ]
        if self.outbox is not None:
            lines.append(
                f"  mail            {self.outbox.folder}  (development outbox, .eml files)"
            )
        if self.config.source is not None:
            lines.append(f"  configuration   {self.config.source}")
        lines += ["", "  services        API docs (OpenAPI)"]
        for name in SERVICES:
            service = running.get(name)
            if service is None:
                lines.append(f"    {name:<12}  not built yet")
            else:
                lines.append(f"    {name:<12}  {service.url}/schema  (pid {service.pid})")
        lines += [
            "",
            "  try it          .venv/bin/stafett token --person laerer-lia --role employee "
            "--service skole-lia",
            "                  .venv/bin/stafett tail | status | verify   "
            "(or: source .venv/bin/activate)",
            "",
            f"Press Ctrl-C to stop (or kill {os.getpid()}). "
            "Starting again continues on the same data.",
        ]
        return "\n".join(lines)

    def supervise(self) -> None:
        """Wait until asked to stop; start again, with backoff, nats-server or any service that
        died."""
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            self._look_after_nats(now)
            for service in self.services:
                self._look_after(service, now)

    def _look_after_nats(self, now: float) -> None:
        """nats-server starts again on the same data; the services reconnect by themselves."""
        if self._nats_restart_at is None:
            code = self.nats.exit_code
            if code is None:
                return
            delay = self._nats_backoff.delay_after(now - self._nats_started_at)
            self._nats_restart_at = now + delay
            self.say(
                f"nats-server exited with code {code}; restarting it in {delay:g} s "
                f"(see {self.nats.log_file})"
            )
        elif now >= self._nats_restart_at:
            self._nats_started_at = now
            try:
                self.nats.start()
            except NatsServerError as error:
                self.nats.kill()  # one that never became ready is not left half started
                delay = self._nats_backoff.delay_after(0)
                self._nats_restart_at = time.monotonic() + delay
                self.say(f"nats-server did not start again ({error}); retrying in {delay:g} s")
                return
            self._nats_restart_at = None
            self.say("nats-server is back; the services reconnect by themselves")

    def _look_after(self, service: ServiceProcess, now: float) -> None:
        code = service.exited()
        if code is not None:
            delay = service.backoff.delay_after(now - service.started_at)
            service.restart_at = now + delay
            self.say(
                f"{service.name} exited with code {code}; restarting it in {delay:g} s "
                f"(see {service.log_file})"
            )
        elif service.restart_at is not None and now >= service.restart_at:
            service.restarts += 1
            service.start()
            self.say(f"{service.name} restarted (pid {service.pid}, restart {service.restarts})")
        elif service.awaiting_ready and service.restart_at is None and service.ready():
            service.awaiting_ready = False
            if service.restarts:
                self.say(f"{service.name} is ready again")
        elif service.restart_at is None and now - service.live_checked_at >= LIVENESS_EVERY:
            # As Kubernetes does: a service whose liveness fails cannot recover by itself.
            service.live_checked_at = now
            failure = service.failure()
            if failure is not None:
                self.say(f"{service.name} failed its liveness check ({failure}); stopping it")
                service.stop()  # the next look finds it exited, and starts it again

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.nats.stop()
        if self.outbox is not None:
            self.outbox.stop()
