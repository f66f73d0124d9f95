"""The values the store takes and gives: plain dataclasses, no Redis in sight."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dialer.domain import Account, Attempt, Phone
from dialer.rules.settle import Effects, Finish

__all__ = [
    "TRANSITIONS",
    "AccountState",
    "CampaignInfo",
    "Claim",
    "Effects",
    "Finish",
    "WorkItem",
]

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


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    name: str
    state: str
    created_at: str
    meta: dict[str, str]
