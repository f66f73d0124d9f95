"""A worker process for the live tests: ``serve --role worker`` with its Asterisk voice
backend and FastAGI server, on a simulated clock that starts at a fixed moment and runs
at real speed.

That is the one thing the CLI refuses (``--clock-start`` is for the sandbox: real calls
run on real time); the live tests need it so that what they dial does not depend on
today's date and hour. ``python -m tests.live_worker CONFIG START``: CONFIG a TOML file,
START an ISO 8601 moment; the environment (``REDIS_URL``, ``DIALER_AGI_PORT``, …) as for
``serve``. SIGTERM stops it as it stops ``serve``.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime

from dialer.clock import SimulatedClock
from dialer.formats.config_file import load_settings
from dialer.runtime.serve import ServeOptions, serve
from dialer.runtime.wiring import run_async


def main(argv: list[str]) -> int:
    config, start = argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(config)
    options = ServeOptions(role="worker", api=False, progress=False, grace_s=5.0, config_path=config)
    return run_async(serve(settings, options, clock=SimulatedClock(datetime.fromisoformat(start), 1.0)))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
