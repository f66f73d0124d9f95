"""Shared fixtures. Redis is real: one redis-server per test session, started by us on a
free loopback port with its own temporary directory; every test gets a clean database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dialer.domain import Account, Channel, Consent, Contact, Phone, PhoneType
from dialer.formats.config_file import load_settings
from dialer.rules.policy import Policy
from dialer.settings import Settings
from dialer.store.embedded import EmbeddedRedis

# Tests never read the developer's environment overrides.
for _name in list(os.environ):
    if _name.startswith("DIALER") or _name == "REDIS_URL":
        del os.environ[_name]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(env={})


@pytest.fixture(scope="session")
def policy(settings: Settings) -> Policy:
    return Policy.from_settings(settings)


def make_contact(
    number: str = "+5511987654321",
    channel: Channel = Channel.VOICE,
    *,
    due: date = date(2026, 11, 1),
    region: str | None = None,
    timezone: str | None = None,
    consent: Consent = Consent(voice=True, sms=True),
    phone_type: PhoneType = PhoneType.MOBILE,
    provided_by_debtor: bool = True,
    account_id: str = "ACC-1",
    **account_fields: object,
) -> Contact:
    account = Account(
        account_id=account_id,
        name="Maria Silva",
        due_date=due,
        amount=Decimal("1234.56"),
        region=region,
        timezone=timezone,
        **account_fields,  # type: ignore[arg-type]
    )
    phone = Phone(number, phone_type, provided_by_debtor, consent)
    return Contact(account, phone, channel)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


TOPOLOGY = os.environ.get("REGUA_TEST_REDIS", "single")  # single | sentinel | cluster


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The session's Redis: one redis-server, or (``REGUA_TEST_REDIS``) a primary + replica
    + three sentinels, or a three-master cluster — the runtime suite runs on each in CI."""
    root = tmp_path_factory.mktemp("redis")
    if TOPOLOGY == "sentinel":
        from tests.redis_topologies import SentinelSet

        found: object = SentinelSet(root)
    elif TOPOLOGY == "cluster":
        from tests.redis_topologies import Cluster

        found = Cluster(root)
    else:
        found = EmbeddedRedis(root, appendonly=False)
        found.start()  # type: ignore[attr-defined]
    yield found
    found.stop()  # type: ignore[attr-defined]


@pytest.fixture
def redis_url(redis_server: object) -> str:
    """A clean database on the session's Redis (we started it: flushing is ours)."""
    import redis

    if TOPOLOGY == "sentinel":
        redis_server.primary.client.flushall()  # type: ignore[attr-defined]
        return str(redis_server.url)  # type: ignore[attr-defined]
    if TOPOLOGY == "cluster":
        for node in redis_server.nodes:  # type: ignore[attr-defined]
            node.client.flushall()
        return str(redis_server.url)  # type: ignore[attr-defined]
    client = redis.Redis(port=redis_server.port)  # type: ignore[attr-defined]
    client.flushall()
    client.close()
    return str(redis_server.url)  # type: ignore[attr-defined]


@pytest.fixture
def tmp_config(tmp_path: Path):
    def write(text: str) -> Path:
        path = tmp_path / "company.toml"
        path.write_text(text)
        return path

    return write
