"""Resilience around real gateways: idempotency, rate limit, retries, circuit breaker, fail-over.

``ResilientSms(primary, secondary, ledger=store)`` is itself an ``SmsGateway``. For each send:

1. **Idempotency** (the ledger: a Redis hash, one field per idempotency key). Before
   any provider is called the key is claimed with a ``sending:<epoch ms>:<token>``
   marker (set only if the field is absent, atomically); after the provider accepts,
   the marker becomes ``<provider>:<message id>``. A key already sent returns that
   result with ``duplicate=True`` and nothing goes out. A key marked ``sending`` by
   someone else less than ``sending_timeout`` ago is being sent right now: the caller
   gets ``SmsRetryable`` (``retry_after`` = the time left). A marker older than that
   belongs to a worker that died between claiming and recording: the message may or
   may not have left, and texting a debtor twice is worse than a missing reminder, so
   it is **not** resent — the result is ``duplicate=True`` with provider and
   ``message_id`` ``"unknown"`` (the timeline shows it; a supervisor can resend).
   A definite failure (``SmsRetryable``/``SmsPermanent`` from the provider) releases
   the claim so a later attempt may send; a cancelled send keeps it (in doubt).
2. **Choice of provider**: the primary while its circuit is closed and it has failed
   fewer than ``failover_after`` times for this message, else the secondary.
3. **Rate limit**: a token bucket per provider (``rate`` messages/second, ``burst``), kept
   in Redis so every worker process shares it (in memory when there is no Redis).
4. **Retries**: on ``SmsRetryable``, up to ``max_attempts`` in all, waiting an
   exponential back-off with full jitter (never less than the provider's
   ``retry_after``; a ``retry_after`` beyond ``max_delay`` goes back to the caller).
5. **Circuit breaker** per provider: ``failures`` consecutive retryable failures open
   it; after ``cool_down`` seconds one trial message is let through (half-open); its
   success closes the circuit, its failure opens it again. A permanent refusal of one
   message (bad number) says the provider is up.

Rate limits and circuits are per process. Time is read through ``Timing`` so tests
can drive it; the markers use the wall clock, shared by every worker.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dialer.errors import SmsPermanent, SmsRetryable
from sms_gateway.base import SendResult, SmsGateway, SmsLedger, SmsMessage
from sms_gateway.encoding import analyse

log = logging.getLogger("regua.sms.resilient")

SENDING = "sending:"
UNKNOWN = "unknown"


class Timing(Protocol):
    def monotonic(self) -> float: ...

    def wall(self) -> float:
        """Seconds since the epoch, comparable between processes."""
        ...

    def sleep(self, seconds: float) -> Awaitable[None]: ...


class RealTiming:
    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class LanePolicy:
    """Per provider: messages per second (0: no limit) and the bucket's depth."""

    rate: float = 0.0
    burst: float = 1.0


@dataclass(frozen=True, slots=True)
class ResiliencePolicy:
    max_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 30.0
    failover_after: int = 2  # primary failures for one message before trying the secondary
    circuit_failures: int = 5
    circuit_cool_down: float = 30.0
    sending_timeout: float = 300.0
    idempotency: bool = True
    shared_rate: bool = True  # with Redis: one rate per provider across every process


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved; waiters are served in arrival order."""

    def __init__(self, rate: float, burst: float, timing: Timing) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.timing = timing
        self._tokens = self.burst
        self._stamp = timing.monotonic()

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        now = self.timing.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        self._tokens -= 1  # reserve now: a negative balance is the queue ahead
        if self._tokens < 0:
            await self.timing.sleep(-self._tokens / self.rate)


class SharedTokenBucket:
    """The same bucket, kept in the ledger (Redis): every worker process sending through
    this provider shares its ``rate`` (a provider's limit is per account, not per process).
    The balance may go negative — the queue ahead — and never refills backwards when
    another host's clock ran ahead."""

    def __init__(
        self, ledger: SmsLedger, lane: str, provider: str, rate: float, burst: float, timing: Timing
    ) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self.lane, self.provider = lane, provider
        self.timing = timing
        self.ledger = ledger

    async def acquire(self) -> None:
        if self.rate <= 0:
            return
        try:
            wait_ms = await self.ledger.rate_reserve(
                self.lane, self.provider, self.rate, self.burst, int(self.timing.wall() * 1000)
            )
        except Exception as exc:
            raise SmsRetryable("sms: the rate limiter (Redis) is unavailable; nothing was sent") from exc
        if int(wait_ms) > 0:
            await self.timing.sleep(int(wait_ms) / 1000)


CircuitState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(self, failures: int, cool_down: float, timing: Timing) -> None:
        self.threshold = max(1, failures)
        self.cool_down = cool_down
        self.timing = timing
        self.state: CircuitState = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self._trial = False

    def available(self) -> bool:
        """Whether a message could go through now (does not take the half-open trial)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            return self.timing.monotonic() - self.opened_at >= self.cool_down
        return not self._trial

    def allow(self) -> bool:
        """Whether this message may go through; takes the half-open trial when it is free."""
        if self.state == "closed":
            return True
        if self.state == "open" and self.timing.monotonic() - self.opened_at >= self.cool_down:
            self.state = "half_open"
            self._trial = False
        if self.state == "half_open" and not self._trial:
            self._trial = True
            return True
        return False

    def retry_in(self) -> float:
        if self.state == "open":
            return max(0.0, self.cool_down - (self.timing.monotonic() - self.opened_at))
        return 0.0 if self.state == "closed" else 1.0

    def release_trial(self) -> None:
        self._trial = False

    def success(self) -> None:
        self.state = "closed"
        self.failures = 0
        self._trial = False

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            if self.state != "open":
                log.warning("sms circuit opened after %d failures", self.failures)
            self.state = "open"
            self.opened_at = self.timing.monotonic()
            self._trial = False


@dataclass
class Lane:
    gateway: SmsGateway
    bucket: TokenBucket | SharedTokenBucket
    breaker: CircuitBreaker


def split_value(value: str) -> tuple[str, str]:
    """``provider:message_id`` (as recorded) into its two halves."""
    provider, sep, message_id = value.partition(":")
    return (provider, message_id) if sep else (UNKNOWN, value)


class ResilientSms:
    """An ``SmsGateway`` that sends each idempotency key at most once, through a primary
    and an optional secondary gateway."""

    def __init__(
        self,
        primary: SmsGateway,
        secondary: SmsGateway | None = None,
        *,
        ledger: SmsLedger | None,
        policy: ResiliencePolicy = ResiliencePolicy(),
        primary_lane: LanePolicy = LanePolicy(),
        secondary_lane: LanePolicy = LanePolicy(),
        timing: Timing | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if policy.idempotency and ledger is None:
            raise ValueError("idempotency needs a ledger (the store)")
        self.timing = timing or RealTiming()
        self.policy = policy
        self.ledger = ledger
        self.rng = rng or random.Random()
        self.primary = self._lane(primary, primary_lane, "primary")
        self.secondary = self._lane(secondary, secondary_lane, "secondary") if secondary is not None else None
        self.name = primary.name if secondary is None else f"{primary.name}|{secondary.name}"
        self.sent = 0
        self.duplicates = 0
        self.retries = 0
        self.failovers = 0

    def _lane(self, gateway: SmsGateway, lane: LanePolicy, role: str) -> Lane:
        bucket: TokenBucket | SharedTokenBucket
        if self.ledger is not None and self.policy.shared_rate:
            bucket = SharedTokenBucket(self.ledger, role, gateway.name, lane.rate, lane.burst, self.timing)
        else:
            bucket = TokenBucket(lane.rate, lane.burst, self.timing)
        return Lane(
            gateway,
            bucket,
            CircuitBreaker(self.policy.circuit_failures, self.policy.circuit_cool_down, self.timing),
        )

    # ------------------------------------------------------------ idempotency

    async def _claim_key(self, message: SmsMessage) -> tuple[str | None, SendResult | None]:
        """Our marker when the key is ours to send, else the result to return instead."""
        assert self.ledger is not None
        marker = f"{SENDING}{int(self.timing.wall() * 1000)}:{uuid.uuid4().hex}"
        try:
            existing = await self.ledger.sms_claim(message.idempotency_key, marker)
        except Exception as exc:
            raise SmsRetryable("sms: the idempotency store (Redis) is unavailable; nothing was sent") from exc
        if existing is None:
            return marker, None
        value = existing
        info = analyse(message.text)
        if value.startswith(SENDING):
            try:
                claimed_ms = int(value[len(SENDING) :].split(":", 1)[0])
            except ValueError:
                claimed_ms = 0
            age = self.timing.wall() - claimed_ms / 1000
            if age < self.policy.sending_timeout:
                raise SmsRetryable(
                    "sms: this message is being sent by another worker",
                    retry_after=self.policy.sending_timeout - age,
                )
            log.warning(
                "sms %s: claimed %.0fs ago and never recorded (a worker died mid-send?): "
                "not resent, reported as a duplicate of unknown outcome",
                message.idempotency_key,
                age,
            )
            self.duplicates += 1
            return None, SendResult(UNKNOWN, UNKNOWN, info.segments, info.encoding, 0.0, duplicate=True)
        provider, message_id = split_value(value)
        self.duplicates += 1
        return None, SendResult(provider, message_id, info.segments, info.encoding, 0.0, duplicate=True)

    async def _record_result(self, key: str, marker: str, result: SendResult) -> None:
        assert self.ledger is not None
        try:
            await self.ledger.sms_record(key, marker, f"{result.provider}:{result.message_id}")
        except Exception:  # sent all the same; the stale marker will read as "unknown", never resent
            log.exception("sms %s: sent as %s but not recorded", key, result.message_id)

    async def _release_key(self, key: str, marker: str) -> None:
        assert self.ledger is not None
        try:
            await self.ledger.sms_release(key, marker)
        except Exception:
            log.exception("sms %s: could not release the claim", key)

    # ------------------------------------------------------------ sending

    async def send(self, message: SmsMessage) -> SendResult:
        marker = None
        if self.policy.idempotency:
            marker, duplicate = await self._claim_key(message)
            if duplicate is not None:
                return duplicate
        try:
            result = await self._send_with_retries(message)
        except (SmsRetryable, SmsPermanent):
            if marker is not None:
                await self._release_key(message.idempotency_key, marker)
            raise
        except Exception as exc:
            log.exception("sms %s: gateway error", message.idempotency_key)
            if marker is not None:
                await self._release_key(message.idempotency_key, marker)
            raise SmsRetryable(f"sms: gateway error ({type(exc).__name__})") from exc
        if marker is not None:
            await self._record_result(message.idempotency_key, marker, result)
        self.sent += 1
        return result

    def _pick(self, primary_failures: int) -> Lane | None:
        primary, secondary = self.primary, self.secondary
        prefer_primary = secondary is None or primary_failures < self.policy.failover_after
        if prefer_primary and primary.breaker.allow():
            return primary
        if secondary is not None and secondary.breaker.allow():
            return secondary
        if not prefer_primary and primary.breaker.allow():
            return primary
        return None

    def _would_pick(self, primary_failures: int) -> Lane | None:
        primary, secondary = self.primary, self.secondary
        prefer_primary = secondary is None or primary_failures < self.policy.failover_after
        if prefer_primary and primary.breaker.available():
            return primary
        if secondary is not None and secondary.breaker.available():
            return secondary
        return primary if primary.breaker.available() else None

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1))
        delay = self.rng.uniform(0, ceiling)
        return max(delay, retry_after or 0.0)

    async def _send_with_retries(self, message: SmsMessage) -> SendResult:
        attempt = 0
        primary_failures = 0
        last: SmsRetryable | None = None
        while True:
            lane = self._pick(primary_failures)
            if lane is None:
                waits = [self.primary.breaker.retry_in()]
                if self.secondary is not None:
                    waits.append(self.secondary.breaker.retry_in())
                raise SmsRetryable(
                    f"sms: every provider's circuit is open ({last or 'no attempt made'})",
                    retry_after=min(waits),
                ) from last
            if lane is self.secondary:
                self.failovers += 1
                if attempt > 0:
                    log.warning("sms %s: failing over to %s", message.idempotency_key, lane.gateway.name)
            try:
                await lane.bucket.acquire()
            except BaseException:
                lane.breaker.release_trial()  # nothing was tried on this provider
                raise
            try:
                result = await lane.gateway.send(message)
            except SmsRetryable as exc:
                lane.breaker.failure()
                last = exc
                attempt += 1
                if lane is self.primary:
                    primary_failures += 1
                if attempt >= self.policy.max_attempts:
                    raise
                delay = self._backoff(attempt, exc.retry_after)
                if delay > self.policy.max_delay:
                    raise  # the caller requeues; waiting here would hold a worker slot
                self.retries += 1
                if self._would_pick(primary_failures) not in (lane, None):
                    continue  # another provider can take it now
                await self.timing.sleep(delay)
                continue
            except SmsPermanent:
                lane.breaker.success()  # it answered: the message is at fault, not the provider
                raise
            except BaseException:
                lane.breaker.release_trial()  # a cancelled call proves nothing either way
                raise
            lane.breaker.success()
            return result

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        gateways = [self.primary.gateway] + ([self.secondary.gateway] if self.secondary else [])
        await asyncio.gather(*(g.close() for g in gateways), return_exceptions=True)

    def _lane_health(self, lane: Lane) -> dict[str, Any]:
        return {
            **lane.gateway.health(),
            "circuit": lane.breaker.state,
            "consecutive_failures": lane.breaker.failures,
            "rate_per_s": lane.bucket.rate or None,
        }

    def health(self) -> dict[str, Any]:
        primary = self._lane_health(self.primary)
        secondary = self._lane_health(self.secondary) if self.secondary else None
        up = self.primary.breaker.state != "open" or (
            self.secondary is not None and self.secondary.breaker.state != "open"
        )
        return {
            "provider": self.name,
            "state": "up" if up else "down",
            "primary": primary,
            "secondary": secondary,
            "sent": self.sent,
            "duplicates": self.duplicates,
            "retries": self.retries,
            "failovers": self.failovers,
            "idempotency": self.policy.idempotency,
        }
