"""The garbage collector, tuned for a process that holds thousands of calls in flight.

CPython's cyclic collector runs a young collection every 700 net allocations and a full
one every 100 young ones. With 2,000 calls in flight a full collection walks every task,
future, account and AMI message the worker holds: measured in the live bench
(``bench/live_bench.py``, 2,000 calls) that was 1.5 s of a 5.7 s burst, in pauses of
0.2 s during which no AMI event is read and no Originate sent. After start-up we freeze
what exists (modules, settings, the holiday calendars: never garbage, never scanned
again) and let the young generation grow to 20,000 objects, the older ones keeping
CPython's ratios (a full collection every 100 young ones, and only when the long-lived
have grown by a quarter): 0.3–0.4 s of collection in the same burst, full ones ~60 ms.
"""

from __future__ import annotations

import gc

YOUNG = 20_000  # allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    """Call once, after start-up and before the work begins."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG, 10, 10)  # the older generations at CPython's own ratios
