"""``/metrics`` in the Prometheus text format (prometheus-client), read from Redis on scrape."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class _Snapshot:
    def __init__(
        self, statuses: list[dict[str, Any]], redis_up: bool, voice: dict[str, Any], sms: dict[str, Any]
    ) -> None:
        self.statuses, self.redis_up, self.voice, self.sms = statuses, redis_up, voice, sms

    def collect(self) -> Any:
        up = GaugeMetricFamily("regua_redis_up", "1 when Redis answers")
        up.add_metric([], 1.0 if self.redis_up else 0.0)
        yield up
        voice = GaugeMetricFamily(
            "regua_voice_up", "1 when the voice backend can place calls", labels=["backend"]
        )
        voice.add_metric(
            [str(self.voice.get("backend", "?"))], 1.0 if self.voice.get("state") == "connected" else 0.0
        )
        yield voice
        for server in self.voice.get("servers", []):
            g = GaugeMetricFamily(
                "regua_asterisk_up", "1 when this Asterisk server is connected", labels=["server"]
            )
            g.add_metric([server["name"]], 1.0 if server.get("state") == "connected" else 0.0)
            yield g
        ratio = self.voice.get("short_call_ratio")
        if ratio is not None:
            g = GaugeMetricFamily("regua_short_call_ratio", "share of today's answered calls <= 6 s")
            g.add_metric([], float(ratio))
            yield g
        gauges = {
            k: GaugeMetricFamily(f"regua_campaign_{k}", f"campaign {k}", labels=["campaign", "state"])
            for k in ("accounts", "contacts", "scheduled", "queued", "in_flight")
        }
        outcomes = CounterMetricFamily(
            "regua_outcomes", "attempts by outcome", labels=["campaign", "outcome"]
        )
        blocked = CounterMetricFamily(
            "regua_blocked", "decisions held back, by reason", labels=["campaign", "reason"]
        )
        for s in self.statuses:
            for k, g in gauges.items():
                g.add_metric([s["name"], str(s["state"])], float(s[k]))
            for key, value in s["counters"].items():
                kind, _, label = key.partition(":")
                if kind == "outcome":
                    outcomes.add_metric([s["name"], label], float(value))
                elif kind == "blocked":
                    blocked.add_metric([s["name"], label], float(value))
        yield from gauges.values()
        yield outcomes
        yield blocked


async def render_metrics(services: Any) -> tuple[bytes, str]:
    store = services.store
    redis_up = await store.ping()
    statuses = []
    if redis_up:
        for name in await store.campaign_names():
            statuses.append(await store.status(name))
    voice = services.telephony.health() if services.telephony is not None else {}
    sms = services.sms.health() if services.sms is not None else {}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(statuses, redis_up, voice, sms))
    return generate_latest(registry), CONTENT_TYPE_LATEST
