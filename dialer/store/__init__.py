"""The store: the only code that touches Redis (``Store``), and the values it takes and gives.

``keys`` names every key, ``scripts`` holds every Lua script, ``codec`` the text forms of
records, ``values`` the dataclasses; ``embedded`` runs a ``redis-server`` of our own.
"""

from dialer.store.accounts import StatusChange
from dialer.store.campaigns import WakeListener
from dialer.store.embedded import EmbeddedRedis, embedded_redis
from dialer.store.payments import ChargeRecord, PaymentApply
from dialer.store.store import Store
from dialer.store.values import (
    TRANSITIONS,
    AccountState,
    CampaignInfo,
    Claim,
    Effects,
    Finish,
    WorkItem,
)

__all__ = [
    "TRANSITIONS",
    "AccountState",
    "CampaignInfo",
    "ChargeRecord",
    "Claim",
    "Effects",
    "EmbeddedRedis",
    "Finish",
    "PaymentApply",
    "StatusChange",
    "Store",
    "WakeListener",
    "WorkItem",
    "embedded_redis",
]
