"""`stafett up`: the platform in the foreground, with the demo municipality if asked for.

Here rather than in `platform`, which the demo uses: so neither imports the other's importer.
"""

from __future__ import annotations

import os
import signal
import sys

import httpx

from stafett_cli.config import PlatformConfig, PlatformError
from stafett_cli.platform import Platform


def up(demo: bool = False, trace: bool = False) -> int:
    """Run the platform in the foreground until Ctrl-C (SIGINT) or SIGTERM; with `trace`, every
    service writes its spans to logs/traces.jsonl (`stafett_runtime.tracing`)."""
    try:
        config = PlatformConfig.from_env()
        if trace:
            traces = config.data_dir / "logs" / "traces.jsonl"
            os.environ["STAFETT_TRACE_FILE"] = str(traces)  # every service inherits it
            print(f"spans go to {traces}", flush=True)
        platform = Platform(config, say=lambda line: print(line, flush=True))
    except PlatformError as error:
        print(f"stafett: cannot start: {error}", file=sys.stderr)
        return 1
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: platform.request_stop())
    try:
        print("starting nats-server and the services...", flush=True)
        platform.start()
        if demo:
            from stafett_cli.demo import DemoError, load_demo

            try:
                load_demo(platform, say=lambda line: print(line, flush=True))
            except (DemoError, httpx.HTTPError) as error:
                # The platform is still useful without the demo: say why, and keep running.
                print(f"stafett: the demo could not be loaded: {error}", file=sys.stderr)
        print(platform.screen(), flush=True)
        platform.supervise()
    except PlatformError as error:
        if platform.stopping:  # Ctrl-C while starting: not an error
            return 0
        print(f"stafett: {error}", file=sys.stderr)
        return 1
    finally:
        print("stopping...", flush=True)
        platform.stop()
        print("stopped.", flush=True)
    return 0
