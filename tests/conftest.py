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


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """A clean database on the session's redis-server (we started it: flushing is ours)."""
    import redis

    client = redis.Redis(port=redis_server.port)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def tmp_config(tmp_path: Path):
    def write(text: str) -> Path:
        path = tmp_path / "company.toml"
        path.write_text(text)
        return path

    return write
