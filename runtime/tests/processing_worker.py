"""A service process in miniature: runs the Tallies processing loop until killed.

Usage: python processing_worker.py NATS_URL
"""

from __future__ import annotations

import signal
import sys
import threading

from example_apps import Tallies
from stafett_runtime.processing import ProcessingLoop, Upstream


def main(nats_url: str) -> None:
    env = {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_url}
    loop = ProcessingLoop(Tallies(env), Upstream.named("orders", env))
    loop.start()
    print("started", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    loop.stop()


if __name__ == "__main__":
    main(sys.argv[1])
