"""The values the store takes and gives: plain dataclasses, no Redis in sight."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dialer.domain import Account, Attempt, Phone, Suppression

TRANSITIONS: Mapping[str, tuple[frozenset[str], str]] = {
    # action: (from states, to state)
    "start": (frozenset({"created"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "stop": (frozenset({"running", "paused", "created"}), "stopped"),
    "archive": (frozenset({"stopped", "created"}), "archived"),
}


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as the worker sees it: its data, phones, history and flags."""

    account: Account
    phones: tuple[Phone, ...]
    history: tuple[Attempt, ...]
    hv: int
    lock: str | None = None
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class WorkItem:
    campaign: str
    entry_id: str
    account_id: str


@dataclass(frozen=True, slots=True)
class Claim:
    status: str  # new | exists | stale | locked
    existing: Attempt | None = None


@dataclass(slots=True)
class Finish:
    """Everything one worked entry writes at the end, in one script."""

    campaign: str
    account_id: str
    entry_id: str = ""
    attempt: Attempt | None = None
    next_at: datetime | None = None
    drop_attempt: bool = False  # forget the claimed attempt: no contact was made
    fallback: str = ""  # "" keep, "-" clear, "<step>" set
    stats: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Effects:
    """Side writes of a batch (suppressions, audit, callbacks, links), flushed in one pipeline."""

    suppressions: list[Suppression] = field(default_factory=list)
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, data)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (link, campaign, account)
    sms: list[tuple[str, str, str, str, str]] = field(
        default_factory=list
    )  # provider, id, campaign, account, attempt

    def __bool__(self) -> bool:
        return bool(self.suppressions or self.audit or self.callbacks or self.links or self.sms)


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    name: str
    state: str
    created_at: str
    meta: dict[str, str]
