"""Run every benchmark: ``python -m bench`` (or ``make bench``). Figures print beside their limits."""

from __future__ import annotations

import importlib
import sys

BENCHES = [
    "decide_bench",
    "dispatch_bench",
    "ami_bench",
    "sms_bench",
    "webhook_bench",
    "report_bench",
    "load_bench",
    "ha_bench",
    "live_bench",  # skipped, with the reason, without an `asterisk` binary on PATH
]


def main() -> int:
    names = sys.argv[1:] or BENCHES
    for name in names:
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
