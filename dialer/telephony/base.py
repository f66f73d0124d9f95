"""Voice backends behind one protocol: ``sandbox`` (the embedded default) and ``asterisk``.

A backend places one call for one attempt and reports how it ended. What the IVR did
during the call (verification, keys, actions the debtor asked for) comes back in the
``CallResult`` so the worker records it with the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from dialer.domain import Account, CallResult, IvrAction, Phone

__all__ = ["CallRequest", "CallResult", "IvrAction", "Telephony"]


@dataclass(frozen=True, slots=True)
class CallRequest:
    attempt_id: str
    campaign: str
    account: Account
    phone: Phone
    step_id: str
    language: str = "pt-BR"
    not_after: datetime | None = None  # the rules allow the call until then: not placed later


class Telephony(Protocol):
    """A voice backend. ``place_call`` returns when the call is over."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def place_call(self, request: CallRequest) -> CallResult:
        """Place the call and wait for its end. Raises ``TelephonyDown`` if it could not be
        placed at all (the attempt is then dropped and the step rescheduled)."""
        ...

    async def reconcile(self, attempt_id: str) -> CallResult | None:
        """After a crash: what became of a call placed by a worker that died (None: unknown)."""
        ...

    def health(self) -> dict[str, Any]: ...
