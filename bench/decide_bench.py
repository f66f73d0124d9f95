"""decide() over a synthetic 100,000-contact set, on one core.

The limit beside it: the same loop doing only what every decision must do at the very
least — build its Decision value — so the ratio shows what the rules cost.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from dialer.domain import Account, Attempt, Channel, Consent, Contact, Decision, Outcome, Phone
from dialer.formats.config_file import load_settings
from dialer.rules.local_time import BR_DDD
from dialer.rules.policy import Policy, decide

N = 100_000


def synthetic(n: int, seed: int = 7) -> list[tuple[Contact, list[Attempt], datetime]]:
    rng = random.Random(seed)
    ddds = sorted(BR_DDD)
    us = ["212", "310", "850", "312", "713", "907", "808"]
    base = datetime(2026, 11, 23, 13, tzinfo=UTC)
    out = []
    for i in range(n):
        if rng.random() < 0.9:
            number = f"+55{rng.choice(ddds)}9{rng.randrange(10**8):08d}"
        else:
            number = f"+1{rng.choice(us)}{rng.randrange(2, 10)}{rng.randrange(10**6):06d}"
        now = base + timedelta(minutes=rng.randrange(0, 7 * 24 * 60))
        account = Account(
            f"A{i}", "Maria", now.date() - timedelta(days=rng.randrange(-10, 60)), Decimal("100.00")
        )
        phone = Phone(number, consent=Consent(voice=rng.random() < 0.95, sms=True))
        channel = Channel.VOICE if rng.random() < 0.7 else Channel.SMS
        history = [
            Attempt(
                f"A{i}",
                number,
                channel,
                now - timedelta(minutes=rng.randrange(1, 10 * 24 * 60)),
                rng.choice(list(Outcome)),
            )
            for _ in range(rng.choice([0, 0, 0, 1, 1, 2, 3, 4]))
        ]
        out.append((Contact(account, phone, channel), history, now))
    return out


def run() -> dict[str, float]:
    policy = Policy.from_settings(load_settings(env={}))
    data = synthetic(N)
    for contact, history, now in data[:2000]:  # warm the caches as a running worker would
        decide(contact, history, now, policy)
    timings = []
    for _ in range(3):  # best of three: this shared machine's speed varies
        t0 = time.perf_counter()
        allowed = 0
        for contact, history, now in data:
            allowed += decide(contact, history, now, policy).allowed
        timings.append(time.perf_counter() - t0)
    elapsed = min(timings)
    t0 = time.perf_counter()
    for contact, _history, now in data:
        Decision(True, contact.channel, (), now, ("America/Sao_Paulo",))
    floor = time.perf_counter() - t0
    rate, floor_rate = N / elapsed, N / floor
    print(
        f"decide(): {N:,} contacts in {elapsed:.2f}s = {rate:,.0f} decisions/s on one core "
        f"({allowed / N:.0%} allowed); target >= 50,000/s"
    )
    print(
        f"  limit: building the Decision alone = {floor_rate:,.0f}/s; decide() costs "
        f"{floor_rate / rate:.1f}x that"
    )
    return {"decide_per_s": rate, "floor_per_s": floor_rate}


if __name__ == "__main__":
    run()
